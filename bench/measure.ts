/**
 * Timing and statistics shared by the benchmarks, the regression guards and the browser page.
 * No Node APIs here: bench/browser-entry.ts bundles this file for Chromium.
 */

/** The median of `values` (the mean of the middle two for an even count); NaN when empty. */
export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/** The p-th percentile (0–100) by linear interpolation between the closest ranks; NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p / 100) * (sorted.length - 1);
  const low = Math.floor(rank);
  const high = Math.ceil(rank);
  const lowValue = sorted[low] as number;
  return lowValue + ((sorted[high] as number) - lowValue) * (rank - low);
}

/** One side of a comparison: runs `calls` calls, one after the other. */
export type Batch = (calls: number) => Promise<void>;

/** Options for {@link compareInterleaved}. */
export interface InterleaveOptions {
  /** Timed rounds; each runs both sides once, the order alternating between rounds. */
  rounds: number;
  /** Calls per side per round. Short rounds, many of them, resist bursts of load best. */
  callsPerRound: number;
  /** Untimed rounds first (JIT, connections, caches). Default: a tenth of `rounds`, at least 1. */
  warmupRounds?: number | undefined;
}

/** What {@link compareInterleaved} found. */
export interface Comparison {
  /** The median over rounds of (time of `candidate`) / (time of `baseline`) in the same round. */
  ratio: number;
  /** A 95% confidence interval for that median (distribution-free, from order statistics). */
  ratioLow: number;
  ratioHigh: number;
  /** Median calls per second of each side over the rounds. */
  baselineOpsPerSec: number;
  candidateOpsPerSec: number;
  rounds: number;
  callsPerRound: number;
}

/**
 * Times `baseline` and `candidate` in interleaved rounds (A B, B A, A B, …) and compares them
 * round by round, so that drift on a shared machine (another process starting, the CPU clocking
 * down) hits both sides of a round alike, and the median throws out rounds that a burst disturbed.
 */
export async function compareInterleaved(
  baseline: Batch,
  candidate: Batch,
  options: InterleaveOptions,
): Promise<Comparison> {
  const { rounds, callsPerRound } = options;
  const warmupRounds = options.warmupRounds ?? Math.max(1, Math.round(rounds / 10));
  const timeOf = async (batch: Batch): Promise<number> => {
    const start = performance.now();
    await batch(callsPerRound);
    return performance.now() - start;
  };
  const ratios: number[] = [];
  const baselineOps: number[] = [];
  const candidateOps: number[] = [];
  for (let round = -warmupRounds; round < rounds; round++) {
    let baseMs: number;
    let candMs: number;
    if (round % 2 === 0) {
      baseMs = await timeOf(baseline);
      candMs = await timeOf(candidate);
    } else {
      candMs = await timeOf(candidate);
      baseMs = await timeOf(baseline);
    }
    if (round < 0) continue;
    ratios.push(candMs / baseMs);
    baselineOps.push((callsPerRound * 1000) / baseMs);
    candidateOps.push((callsPerRound * 1000) / candMs);
  }
  const [ratioLow, ratioHigh] = medianInterval(ratios);
  return {
    ratio: median(ratios),
    ratioLow,
    ratioHigh,
    baselineOpsPerSec: median(baselineOps),
    candidateOpsPerSec: median(candidateOps),
    rounds,
    callsPerRound,
  };
}

/**
 * A 95% confidence interval for the median of `values`: the order statistics n/2 ± 0.98·√n
 * (the normal approximation to the binomial), which assumes nothing about the distribution.
 */
export function medianInterval(values: readonly number[]): [number, number] {
  const sorted = [...values].sort((a, b) => a - b);
  const n = sorted.length;
  if (n === 0) return [Number.NaN, Number.NaN];
  const spread = 0.98 * Math.sqrt(n);
  // Ranks counted from 1, as the textbook has them; the array counts from 0.
  const low = Math.max(1, Math.floor(n / 2 - spread)) - 1;
  const high = Math.min(n, Math.ceil(1 + n / 2 + spread)) - 1;
  return [sorted[low] as number, sorted[high] as number];
}

/** Runs `call` `calls` times, one after the other: a {@link Batch}. */
export function sequential(call: () => Promise<unknown>): Batch {
  return async (calls) => {
    for (let i = 0; i < calls; i++) await call();
  };
}

/** Drains a server stream, returning how many messages it delivered. */
export async function drain(stream: AsyncIterable<unknown>): Promise<number> {
  let count = 0;
  for await (const _ of stream) count++;
  return count;
}
