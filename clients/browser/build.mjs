// Builds the ESM package (dist/index.js + types) and the one-file script
// the router serves (dist/switchyard.min.js), then checks the script
// against its size budget (BUDGET, minified and gzipped).
import { build } from "esbuild";
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";

// 3.5 KB: the client confirms stale signals, keys its loop guard on the pin,
// undoes its patches and learns its pin without Server-Timing (round 8).
const BUDGET = 3.5 * 1024;
const common = { bundle: true, target: "es2020", legalComments: "none" };

await build({ ...common, entryPoints: ["src/index.ts"], format: "esm", outfile: "dist/index.js" });
await build({
  ...common,
  entryPoints: ["src/script.ts"],
  format: "iife",
  minify: true,
  outfile: "dist/switchyard.min.js",
});
execFileSync("npx", ["tsc", "-p", "."], { stdio: "inherit" });

const script = readFileSync("dist/switchyard.min.js");
const gz = gzipSync(script, { level: 9 }).length;
const report = { minified: script.length, gzipped: gz, budget: BUDGET };
writeFileSync("dist/size.json", JSON.stringify(report, null, 2) + "\n");
console.log(`switchyard.min.js: ${script.length} B minified, ${gz} B gzipped (budget ${BUDGET} B)`);
if (gz > BUDGET) {
  console.error("over the size budget");
  process.exit(1);
}
