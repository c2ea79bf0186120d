/**
 * Makes sure the browser tests have a Chromium: reports the one found (same search as
 * playwright.config.ts), or installs Debian's `chromium` with apt-get when running as root on
 * Debian/Ubuntu, or exits 1 saying how to get one.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { findChromium, HOW_TO_GET_CHROMIUM } from "./find-browser.mjs";

const log = (line) => process.stdout.write(`ensure-browser: ${line}\n`);
const fail = (message) => {
  process.stderr.write(`ensure-browser: ${message}\n`);
  process.exit(1);
};

let found;
try {
  found = findChromium();
} catch (e) {
  fail(e instanceof Error ? e.message : String(e));
}
if (found !== undefined) {
  log(`using ${found.path} (${found.source}); nothing to install`);
  process.exit(0);
}

const hasAptGet = ["/usr/bin/apt-get", "/bin/apt-get"].some((path) => existsSync(path));
const isRoot = process.getuid?.() === 0;
if (process.platform !== "linux" || !hasAptGet || !isRoot) {
  const why = !hasAptGet ? "apt-get is not available" : !isRoot ? "not running as root" : "";
  fail(`${HOW_TO_GET_CHROMIUM}\n(Not installing it myself: ${why || process.platform}.)`);
}

log(
  "no Chromium found; installing Debian's chromium package: apt-get update && apt-get install -y chromium",
);
const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
for (const args of [["update"], ["install", "-y", "chromium"]]) {
  log(`running apt-get ${args.join(" ")}`);
  const result = spawnSync("apt-get", args, { stdio: "inherit", env });
  if (result.status !== 0) {
    fail(
      `apt-get ${args.join(" ")} failed (exit ${result.status ?? result.signal})\n${HOW_TO_GET_CHROMIUM}`,
    );
  }
}

found = findChromium();
if (found === undefined)
  fail(`apt-get installed chromium, but it is still not found.\n${HOW_TO_GET_CHROMIUM}`);
log(`installed ${found.path}`);
