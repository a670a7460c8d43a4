// The committed console (app/static/console/, served at /console without Node) is exactly
// what these sources build.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), "..");
const COMMITTED = resolve(ROOT, "..", "app", "static", "console");

test("the committed build is what the sources build", () => {
  const out = mkdtempSync(join(tmpdir(), "console-build-"));
  try {
    execFileSync(process.execPath, ["build.mjs", "--outdir", out], { cwd: ROOT, stdio: "pipe" });
    assert.deepEqual(readdirSync(out).sort(), readdirSync(COMMITTED).sort());
    for (const name of readdirSync(out)) {
      assert.ok(readFileSync(join(out, name)).equals(readFileSync(join(COMMITTED, name))),
        `app/static/console/${name} is stale: run \`npm run build\` in console/ and commit it`);
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
