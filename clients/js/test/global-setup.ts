// Builds the lobbyd binary the tests start (skipped when LOBBYD_BIN names
// one), and checks that the committed static/app.js, which lobbyd compiles
// in, is what page/ builds.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
// @ts-expect-error: a plain .mjs build script without types
import { checkPage } from "../page/build.mjs";
import { lobbydBin, repoRoot } from "./harness.js";

export default async function setup() {
  await checkPage();
  if (!process.env.LOBBYD_BIN) {
    execFileSync("cargo", ["build", "--bin", "lobbyd"], { cwd: repoRoot, stdio: "inherit" });
  }
  if (!existsSync(lobbydBin)) throw new Error(`no lobbyd binary at ${lobbydBin}`);
}
