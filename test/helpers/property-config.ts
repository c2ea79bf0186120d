import type { Parameters } from "fast-check";

/**
 * fast-check settings for the property suites: a fixed seed, so every run of
 * the suite checks the same cases (override with `FC_SEED` to explore, and
 * `FC_RUNS` to run more); on failure fast-check prints the seed and the path of
 * the shrunk counterexample, which reproduce it with `FC_SEED`/`FC_PATH`.
 */
export function propertyConfig<Ts>(numRuns: number): Parameters<Ts> {
  const seed = Number(process.env.FC_SEED ?? 20_251_124);
  const path = process.env.FC_PATH;
  return {
    seed,
    numRuns: Number(process.env.FC_RUNS ?? numRuns),
    ...(path === undefined ? {} : { path }),
    // One line per run that failed while shrinking is enough to follow what happened.
    verbose: 1,
  };
}
