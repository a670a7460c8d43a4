// @vitest-environment node
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";

const ROOT = join(__dirname, "..", "..");
const fresh = mkdtempSync(join(tmpdir(), "referral-widget-"));
afterAll(() => rmSync(fresh, { recursive: true, force: true }));

function files(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name).slice(dir.length + 1))
    .sort();
}

describe("the committed bundle", () => {
  it("is exactly what the sources build to (run `npm run build` and commit dist/)", () => {
    const output = execFileSync("node", ["build.mjs", "--outdir", fresh], { cwd: ROOT, encoding: "utf8" });
    execFileSync(process.execPath, [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.json", "--outDir", join(fresh, "types")], { cwd: ROOT });
    expect(output).toMatch(/referral\.js +[\d.]+ KB raw, [\d.]+ KB gzipped \(budget 12 KB\)/);
    const committed = join(ROOT, "dist");
    expect(files(fresh)).toEqual(files(committed));
    for (const name of files(committed)) {
      expect(readFileSync(join(fresh, name), "utf8"), name).toBe(readFileSync(join(committed, name), "utf8"));
    }
  }, 120_000);

  it("stays within 12 KB gzipped", () => {
    for (const name of ["referral.js", "referral.mjs"]) {
      expect(gzipSync(readFileSync(join(ROOT, "dist", name)), { level: 9 }).length).toBeLessThanOrEqual(12 * 1024);
    }
  });

  it("has no runtime dependencies", () => {
    const manifest = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
    expect(manifest.dependencies ?? {}).toEqual({});
  });
});
