/** A Chromium executable and where it was found. */
export interface FoundChromium {
  path: string;
  /** `$CHROMIUM_PATH`, `$PLAYWRIGHT_CHROMIUM_EXECUTABLE_PATH`, `Playwright's download` or `system`. */
  source: string;
}

export const CHROMIUM_ARGS: string[];
export const SYSTEM_CHROMIUM_PATHS: string[];
export const HOW_TO_GET_CHROMIUM: string;
export function findChromium(env?: NodeJS.ProcessEnv): FoundChromium | undefined;
export function requireChromium(env?: NodeJS.ProcessEnv): FoundChromium;
