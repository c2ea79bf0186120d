/** The bundle sizes as table rows, per-file breakdowns and JSON, for `npm run bench` and `bench:bundles`. */
import {
  dpopModules,
  FETCH_TOKEN_APP_BUDGET_BYTES,
  FETCH_TOKEN_APP_GOAL_BYTES,
  kyModules,
} from "./budget.js";
import { type BundleSize, DPOP_APP, FETCH_TOKEN_APP, PASSWORD_GRANT_APP } from "./bundle-size.js";
import { count, type Row } from "./report.js";

/**
 * One row per bundle, gzipped and minified; usage (a) against its goal with its ky and DPoP checks,
 * (b)'s refresh-token module, and what DPoP adds to (b).
 */
export function bundleRows(bundles: readonly BundleSize[]): Row[] {
  return bundles.flatMap((b): Row[] => {
    const row: Row = {
      measure: `bundle ${b.name}: gzip -9 (minified)`,
      value: `${count(b.gzipBytes)} B (${count(b.minBytes)} B)`,
      goal: "",
      ok: undefined,
    };
    if (b.entry === FETCH_TOKEN_APP.entry) {
      const ky = kyModules(b);
      const dpop = dpopModules(b);
      return [
        {
          ...row,
          goal: `≤ ${count(FETCH_TOKEN_APP_GOAL_BYTES)} B`,
          ok: b.gzipBytes <= FETCH_TOKEN_APP_GOAL_BYTES,
        },
        {
          measure: "bundle (a): ky modules in it",
          value: ky.length === 0 ? "none" : ky.join(", "),
          goal: "none",
          ok: ky.length === 0,
        },
        {
          measure: "bundle (a): DPoP modules in it (src/dpop/)",
          value: dpop.length === 0 ? "none" : dpop.join(", "),
          goal: "none",
          ok: dpop.length === 0,
        },
      ];
    }
    if (b.entry === PASSWORD_GRANT_APP.entry) {
      return [
        row,
        {
          measure: `bundle (b): its refresh-token module (${REFRESH_MODULE}), minified`,
          value: `${count(refreshModuleBytes(b))} B`,
          goal: "",
          ok: undefined,
        },
      ];
    }
    if (b.entry === DPOP_APP.entry) {
      const added = dpopAdds(bundles);
      if (added === undefined) return [row];
      return [
        row,
        {
          measure: "bundle (e) − (b): what dpopProofs adds, gzip -9 (minified)",
          value: `${count(added.gzipBytes)} B (${count(added.minBytes)} B)`,
          goal: "",
          ok: undefined,
        },
      ];
    }
    return [row];
  });
}

/** The module passwordGrant and refreshTokenGrant share for refreshing. */
const REFRESH_MODULE = "src/grants/refresh.ts";

function refreshModuleBytes(b: BundleSize): number {
  return b.files.find((f) => f.path === REFRESH_MODULE)?.minBytes ?? 0;
}

/** Usage (e) minus usage (b), when both were measured. */
function dpopAdds(bundles: readonly BundleSize[]) {
  const withDpop = bundles.find((b) => b.entry === DPOP_APP.entry);
  const without = bundles.find((b) => b.entry === PASSWORD_GRANT_APP.entry);
  if (withDpop === undefined || without === undefined) return undefined;
  return {
    gzipBytes: withDpop.gzipBytes - without.gzipBytes,
    minBytes: withDpop.minBytes - without.minBytes,
  };
}

/** Each bundle's files by minified bytes, largest first (gzip compresses the whole, not each file). */
export function bundleBreakdowns(bundles: readonly BundleSize[]): string {
  return bundles
    .map((b) => {
      const width = Math.max(...b.files.map((f) => f.path.length));
      const lines = b.files.map(
        (f) =>
          `    ${f.path.padEnd(width)}  ${count(f.minBytes).padStart(6)} B  ${String(Math.round((100 * f.minBytes) / b.minBytes)).padStart(3)}%`,
      );
      return [`  ${b.name} (${b.entry}): ${count(b.minBytes)} B minified`, ...lines].join("\n");
    })
    .join("\n");
}

/** How the bundles were made, for the notes under the table. */
export function bundleNote(bundles: readonly BundleSize[]): string {
  const externals = bundles.map((b) => `${b.name}: ${b.external.join(", ")}`).join("; ");
  return (
    "Bundles: each usage is a small app in bench/apps/ importing from src/, bundled with esbuild " +
    "--bundle --minify --format=esm (browser platform) and gzipped at level 9; tree-shaking (with " +
    '"sideEffects": false) decides what is in it. Left out, as the app has them: ' +
    `${externals} (wonka is a dependency of @urql/core, so every urql app has it). ky is bundled ` +
    "wherever it is used. passwordGrant always carries refresh-token support (there is no (b) " +
    `without it): the row under (b) gives its refresh module, ${REFRESH_MODULE}, a lower bound ` +
    "(passwordGrant's own refresh branches are in src/grants/password.ts); (f) is refreshTokenGrant " +
    "alone. (e) − (b) is what dpopProofs() adds (gzip of the whole, so not a sum of files). " +
    `CI guard for (a): FETCH_TOKEN_APP_BUDGET_BYTES = ${count(FETCH_TOKEN_APP_BUDGET_BYTES)} B ` +
    "and no ky or DPoP module among its inputs (bench/budget.ts, test/bench-guards.test.ts)."
  );
}

/** The bundles for bench/results.json. */
export function bundlesJson(bundles: readonly BundleSize[]) {
  return {
    fetchTokenAppGoalBytes: FETCH_TOKEN_APP_GOAL_BYTES,
    fetchTokenAppBudgetBytes: FETCH_TOKEN_APP_BUDGET_BYTES,
    fetchTokenAppChecks: fetchTokenAppChecks(bundles),
    passwordGrantRefreshModuleMinBytes: passwordGrantRefreshBytes(bundles),
    dpopAddsToPasswordGrant: dpopAdds(bundles) ?? null,
    entries: bundles.map((b) => ({
      name: b.name,
      entry: b.entry,
      external: b.external,
      minBytes: b.minBytes,
      gzipBytes: b.gzipBytes,
      files: b.files,
    })),
  };
}

function fetchTokenAppChecks(bundles: readonly BundleSize[]) {
  const a = bundles.find((b) => b.entry === FETCH_TOKEN_APP.entry);
  if (a === undefined) return null;
  const ky = kyModules(a);
  const dpop = dpopModules(a);
  return { kyModules: ky, dpopModules: dpop, ok: ky.length === 0 && dpop.length === 0 };
}

function passwordGrantRefreshBytes(bundles: readonly BundleSize[]): number | null {
  const b = bundles.find((size) => size.entry === PASSWORD_GRANT_APP.entry);
  return b === undefined ? null : refreshModuleBytes(b);
}
