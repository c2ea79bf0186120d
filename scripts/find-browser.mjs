/**
 * Finds the Chromium the browser tests run in; shared by playwright.config.ts and
 * scripts/ensure-browser.mjs so both search the same places in the same order.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";

/** Flags for a headless Chromium in a container or on a CI machine. */
export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-quic",
  "--no-first-run",
];

/** Where a system Chrome or Chromium usually is, in the order they are tried. */
export const SYSTEM_CHROMIUM_PATHS = [
  "/usr/bin/chromium",
  "/usr/bin/chromium-browser",
  "/usr/bin/google-chrome",
  "/usr/bin/google-chrome-stable",
  "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
  "/Applications/Chromium.app/Contents/MacOS/Chromium",
];

/** How to get a browser, for error messages. */
export const HOW_TO_GET_CHROMIUM = `No Chromium found for the browser tests. Get one of:
  - Debian/Ubuntu:        sudo apt-get install chromium
  - where downloads work: npx playwright install chromium
  - any Chrome/Chromium:  CHROMIUM_PATH=/path/to/chrome npm run test:browser
Searched: $CHROMIUM_PATH, $PLAYWRIGHT_CHROMIUM_EXECUTABLE_PATH, Playwright's own download, ${SYSTEM_CHROMIUM_PATHS.join(", ")}.`;

/**
 * The first Chromium found: `CHROMIUM_PATH` (or `PLAYWRIGHT_CHROMIUM_EXECUTABLE_PATH`), Playwright's
 * own download, then the system paths. Undefined when there is none. Throws when a variable names a
 * file that does not exist, rather than silently testing another browser.
 *
 * @param {NodeJS.ProcessEnv} [env]
 * @returns {{ path: string, source: string } | undefined}
 */
export function findChromium(env = process.env) {
  for (const name of ["CHROMIUM_PATH", "PLAYWRIGHT_CHROMIUM_EXECUTABLE_PATH"]) {
    const path = env[name];
    if (path === undefined || path === "") continue;
    if (!existsSync(path)) throw new Error(`${name}=${path}, but there is no such file`);
    return { path, source: `$${name}` };
  }
  const downloaded = playwrightChromium();
  if (downloaded !== undefined) return { path: downloaded, source: "Playwright's download" };
  const system = SYSTEM_CHROMIUM_PATHS.find((path) => existsSync(path));
  return system === undefined ? undefined : { path: system, source: "system" };
}

/** Like {@link findChromium}, but throws the how-to message when there is none. */
export function requireChromium(env = process.env) {
  const found = findChromium(env);
  if (found === undefined) throw new Error(HOW_TO_GET_CHROMIUM);
  return found;
}

function playwrightChromium() {
  try {
    const { chromium } = createRequire(import.meta.url)("playwright-core");
    const path = chromium.executablePath();
    return path && existsSync(path) ? path : undefined;
  } catch {
    // playwright-core missing or unaware of this platform: there is no download to use.
    return undefined;
  }
}
