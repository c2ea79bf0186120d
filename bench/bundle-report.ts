/** The bundle sizes as table rows, per-file breakdowns and JSON, for `npm run bench` and `bench:bundles`. */
import { FETCH_TOKEN_APP_BUDGET_BYTES, FETCH_TOKEN_APP_GOAL_BYTES, kyModules } from "./budget.js";
import { type BundleSize, FETCH_TOKEN_APP } from "./bundle-size.js";
import { count, type Row } from "./report.js";

/** One row per bundle, gzipped and minified; usage (a) against its goal, and its ky check. */
export function bundleRows(bundles: readonly BundleSize[]): Row[] {
  return bundles.flatMap((b): Row[] => {
    const row: Row = {
      measure: `bundle ${b.name}: gzip -9 (minified)`,
      value: `${count(b.gzipBytes)} B (${count(b.minBytes)} B)`,
      goal: "",
      ok: undefined,
    };
    if (b.entry !== FETCH_TOKEN_APP.entry) return [row];
    const ky = kyModules(b);
    return [
      {
        ...row,
        goal: `≤ ${count(FETCH_TOKEN_APP_GOAL_BYTES)} B`,
        ok: b.gzipBytes <= FETCH_TOKEN_APP_GOAL_BYTES,
      },
      {
        measure: "bundle (a): ky modules in it",
        value: ky.length === 0 ? "none" : `${ky.length}`,
        goal: "none",
        ok: ky.length === 0,
      },
    ];
  });
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
    `wherever it is used. CI guard for (a): FETCH_TOKEN_APP_BUDGET_BYTES = ${count(FETCH_TOKEN_APP_BUDGET_BYTES)} B ` +
    "and no ky module in it (bench/budget.ts, test/bench-guards.test.ts)."
  );
}

/** The bundles for bench/results.json. */
export function bundlesJson(bundles: readonly BundleSize[]) {
  return {
    fetchTokenAppGoalBytes: FETCH_TOKEN_APP_GOAL_BYTES,
    fetchTokenAppBudgetBytes: FETCH_TOKEN_APP_BUDGET_BYTES,
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
