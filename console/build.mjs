// Builds the console into app/static/console/ (committed, so `make run` needs no Node):
// index.html, console.js (one ES module with uPlot) and console.css.
//   node build.mjs [--outdir DIR]
import { build } from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";

const outdir = process.argv.includes("--outdir")
  ? process.argv[process.argv.indexOf("--outdir") + 1]
  : new URL("../app/static/console/", import.meta.url).pathname;
const common = { bundle: true, minify: true, legalComments: "none", logLevel: "warning" };

mkdirSync(outdir, { recursive: true });
await build({ ...common, entryPoints: ["src/main.js"], format: "esm", target: "es2020", outfile: `${outdir}/console.js` });
await build({ ...common, entryPoints: ["src/console.css"], outfile: `${outdir}/console.css` });
copyFileSync("src/index.html", `${outdir}/index.html`);
