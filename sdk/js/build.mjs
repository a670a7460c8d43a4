// Builds the widget with esbuild into dist/: referral.js (script tag, IIFE) and referral.mjs
// (ES module). Prints each bundle's size and fails above the budget of 12 KB gzipped.
//   node build.mjs [--outdir DIR]
import { build } from "esbuild";
import { mkdirSync, readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";

const BUDGET = 12 * 1024; // bytes, gzipped, per bundle
const outdir = process.argv.includes("--outdir") ? process.argv[process.argv.indexOf("--outdir") + 1] : "dist";
const { version } = JSON.parse(readFileSync(new URL("package.json", import.meta.url), "utf8"));

const common = {
  bundle: true,
  minify: true,
  target: "es2020",
  legalComments: "none",
  banner: { js: `/*! @referral/widget ${version} */` },
  logLevel: "warning",
};

mkdirSync(outdir, { recursive: true });
await build({ ...common, entryPoints: ["src/script.ts"], format: "iife", outfile: `${outdir}/referral.js` });
await build({ ...common, entryPoints: ["src/index.ts"], format: "esm", outfile: `${outdir}/referral.mjs` });

let over = false;
for (const name of ["referral.js", "referral.mjs"]) {
  const bytes = readFileSync(`${outdir}/${name}`);
  const gzipped = gzipSync(bytes, { level: 9 }).length;
  over ||= gzipped > BUDGET;
  console.log(`${name.padEnd(13)} ${(bytes.length / 1024).toFixed(1)} KB raw, ${(gzipped / 1024).toFixed(1)} KB gzipped (budget ${BUDGET / 1024} KB)`);
}
if (over) {
  console.error("widget bundle over budget: keep the gzipped size at or below 12 KB");
  process.exit(1);
}
