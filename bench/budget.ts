/**
 * Byte budgets for usage (a) of bench/bundle-size.ts: an app with its own `fetchToken` and the
 * Connect interceptor, bundled with esbuild, minified and gzipped at level 9, peers left out.
 * Sizes are in bytes. Beside the bytes, what (a) must not contain: ky (only the grants use it) and
 * DPoP (only `dpopProofs()` brings it).
 */
import type { BundleSize } from "./bundle-size.js";

/** The goal for usage (a). `npm run bench` reports it as met or not. */
export const FETCH_TOKEN_APP_GOAL_BYTES = 3_000;

/**
 * What `npm test` enforces (test/bench-guards.test.ts): usage (a) must not grow past this. A
 * regression guard a little above the goal, so that a bundle that meets the goal keeps meeting it
 * give or take a small change.
 */
export const FETCH_TOKEN_APP_BUDGET_BYTES = 3_500;

/** The files of a bundle that come from ky: usage (a) must have none. */
export function kyModules(size: Pick<BundleSize, "bundled">): string[] {
  return size.bundled.filter((path) => /(^|\/)node_modules\/ky\//.test(path));
}

/** The library's DPoP modules in a bundle (`src/dpop.ts`, `src/dpop-key-store.ts`): usage (a) must have none. */
export function dpopModules(size: Pick<BundleSize, "bundled">): string[] {
  return size.bundled.filter((path) => /(^|\/)src\/dpop[^/]*\.ts$/.test(path));
}
