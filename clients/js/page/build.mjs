// Bundles the chat page (page/main.ts and the client library) into static/app.js.
//   node page/build.mjs          writes static/app.js
//   node page/build.mjs --check  fails when static/app.js is not what page/ builds
import { build } from "esbuild";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
export const outfile = here("../../../static/app.js");

/** The bundle's text; written to static/app.js when `write`. */
export async function bundlePage(write) {
  const result = await build({
    entryPoints: [here("./main.ts")],
    outfile,
    bundle: true,
    format: "iife",
    target: "es2020",
    legalComments: "none",
    banner: { js: "// Built from clients/js/page/main.ts by `npm run build:page`; do not edit." },
    write,
    logLevel: write ? "info" : "warning",
  });
  return write ? readFileSync(outfile, "utf8") : result.outputFiles[0].text;
}

/** Throws when the committed static/app.js is stale. */
export async function checkPage() {
  const built = await bundlePage(false);
  if (readFileSync(outfile, "utf8") !== built) {
    throw new Error("static/app.js is not what clients/js/page builds: run `npm run build:page` and commit it");
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv.includes("--check")) await checkPage();
  else await bundlePage(true);
}
