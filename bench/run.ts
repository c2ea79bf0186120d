/**
 * `npm run bench`: every benchmark of issue 6 in one run, on this machine. Prints a table (figure,
 * goal, whether it is met) and writes bench/results.json. Figures are reported, never asserted:
 * the loose regression guards live in test/bench-guards.test.ts.
 */
import { writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import type { DemoServer } from "../demo/server/server.js";
import { startBenchServer } from "./backend.js";
import { type BrowserResult, type DpopResult, runBrowserBench } from "./browser.js";
import { bundleBreakdowns, bundleNote, bundleRows, bundlesJson } from "./bundle-report.js";
import { measureAllBundles } from "./bundle-size.js";
import { type Overhead, STREAM_MESSAGES } from "./compare-clients.js";
import { loadPackage } from "./library.js";
import type { Comparison } from "./measure.js";
import {
  measureHttpOverhead,
  measureMemoryDpopOverhead,
  measureMemoryOverhead,
} from "./overhead.js";
import { PROOF_PLAN, proofJson, proofRows } from "./proof-cost.js";
import {
  count,
  describeMachine,
  formatTable,
  loadAverage,
  machineLine,
  ms,
  type Row,
  round,
} from "./report.js";
import { runSteadyState, type SteadyResult } from "./steady.js";
import { runColdStorm, runRevocationStorm, type StormResult } from "./storms.js";

/** How much each benchmark does: sized for about two minutes on a busy 2-core machine. */
const PLAN = {
  // Many short rounds: a burst of load spoils a few rounds, which the median then ignores.
  memory: { rounds: 1_500, unaryCallsPerRound: 10, streamCallsPerRound: 4 },
  http: { rounds: 600, unaryCallsPerRound: 5, streamCallsPerRound: 4 },
  browser: { rounds: 200, unaryCallsPerRound: 5, streamCallsPerRound: 3 },
  stormCalls: 1_000,
  steady: { durationMs: 10_000, unaryCallers: 3, streamCallers: 1, tokenTtlSeconds: 2 },
};

/** DPoP's goals are DPoP / Bearer (both intercepted), in Chromium against the demo backend. */
const GOALS = { memoryUnary: 1.03, memoryStreaming: 1.05, http: 1.02, browserDpop: 1.1 };
/** How far the steady state's token requests may stray from the expected number and count as ok. */
const STEADY_TOLERANCE = 0.15;

const RESULTS_FILE = fileURLToPath(new URL("results.json", import.meta.url));

async function main(): Promise<void> {
  const machine = describeMachine();
  const started = performance.now();
  const timestamp = new Date().toISOString();
  const log = (line: string) => process.stderr.write(`bench: ${line}\n`);
  log(
    `Node ${machine.node}, ${machine.cores} cores, load average ${machine.loadAverageStart.join(" ")}`,
  );

  const section = async <T>(name: string, run: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    log(`${name}…`);
    const result = await run();
    log(`${name}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    return result;
  };

  const lib = await loadPackage();
  const bundles = await section("bundle sizes", measureAllBundles);
  const memory = await section("overhead in memory", () => measureMemoryOverhead(lib, PLAN.memory));
  const memoryDpop = await section("DPoP against Bearer in memory", () =>
    measureMemoryDpopOverhead(lib, PLAN.memory),
  );

  let http: Overhead;
  let cold: StormResult;
  let revocation: StormResult;
  let server: DemoServer = await startBenchServer({ tokenTtlSeconds: 3_600 });
  try {
    http = await section("overhead over HTTP", () => measureHttpOverhead(lib, server, PLAN.http));
    cold = await section("cold storm", () => runColdStorm(lib, server, PLAN.stormCalls));
    revocation = await section("revocation storm", () =>
      runRevocationStorm(lib, server, PLAN.stormCalls),
    );
  } finally {
    await server.close();
  }

  let steady: SteadyResult;
  server = await startBenchServer({ tokenTtlSeconds: PLAN.steady.tokenTtlSeconds });
  try {
    steady = await section("steady state", () => runSteadyState(lib, server, PLAN.steady));
  } finally {
    await server.close();
  }

  const browser = await section("browser", () => runBrowserBench(PLAN.browser, PROOF_PLAN));
  if (browser.status !== "ran") {
    process.stdout.write(`browser: ${browser.status} (${browser.reason})\n`);
  }

  machine.loadAverageEnd = loadAverage();
  const durationSeconds = round((performance.now() - started) / 1000, 1);

  const rows: Row[] = [
    ...overheadRows("in memory", memory, GOALS.memoryUnary, GOALS.memoryStreaming),
    ...dpopRows("in memory", memoryDpop, undefined),
    ...overheadRows("gRPC-Web over HTTP", http, GOALS.http, GOALS.http),
    ...stormRows("cold storm", cold),
    ...stormRows("revocation storm", revocation),
    ...steadyRows(steady),
    ...bundleRows(bundles),
    ...browserRows(browser),
  ];
  const notes = [
    `Overhead: the median over interleaved rounds (alternating order) of (time intercepted) / (time bare), [its 95% confidence interval], and the median calls/s of each side (intercepted vs bare). Streaming calls deliver ${STREAM_MESSAGES} messages each. ok? compares the median with the goal; an interval that straddles the goal means this run cannot tell.`,
    "DPoP / Bearer: the same comparison between two intercepted clients, one on a Bearer source and one on a source with dpop: dpopProofs(), which signs a fresh ECDSA P-256 proof per call; + µs per call is the difference of the two median call times. In memory nothing checks the proof (the client's cost alone); in Chromium the demo backend verifies every proof (jose) and its DPoP-bound token, so the ratio is the whole cost of DPoP per call on loopback.",
    `HTTP "bare" sets a token fetched beforehand with a one-line interceptor (the server requires one).`,
    `Storm latency: from the moment all calls are started to each answer. "Warm storm": the same number of concurrent calls with a valid cached token, so the difference is the wait for the token (or the refresh and replay); most of either is ${count(PLAN.stormCalls)} HTTP calls queueing in one process. "One warm call": warm calls made one at a time.`,
    steadyNote(steady),
    bundleNote(bundles),
  ];

  process.stdout.write(
    [
      `grpc-web-auth benchmarks, ${timestamp} (${durationSeconds} s)`,
      `machine: ${machineLine(machine)}`,
      "",
      formatTable(rows),
      "",
      ...notes.map((note) => `- ${note}`),
      "",
      "Bundles, minified bytes per file:",
      bundleBreakdowns(bundles),
      "",
    ].join("\n"),
  );

  const results = {
    timestamp,
    durationSeconds,
    machine,
    overheadInMemory: {
      unary: comparisonJson(memory.unary, GOALS.memoryUnary),
      streaming: comparisonJson(memory.streaming, GOALS.memoryStreaming),
    },
    dpopInMemory: dpopJson(memoryDpop, undefined),
    overheadHttp: {
      unary: comparisonJson(http.unary, GOALS.http),
      streaming: comparisonJson(http.streaming, GOALS.http),
    },
    coldStorm: stormJson(cold),
    revocationStorm: stormJson(revocation),
    steadyState: steadyJson(steady),
    bundles: bundlesJson(bundles),
    browser: browserJson(browser),
    table: rows,
  };
  await writeFile(RESULTS_FILE, `${JSON.stringify(results, null, 2)}\n`);
  log(`wrote ${RESULTS_FILE}`);
}

function overheadRows(
  where: string,
  overhead: Overhead,
  unaryGoal: number | undefined,
  streamingGoal: number | undefined,
): Row[] {
  const row = (kind: string, c: Comparison, goal: number | undefined): Row => ({
    measure: `overhead ${where}, ${kind}: intercepted / bare`,
    value: `${c.ratio.toFixed(3)} [${c.ratioLow.toFixed(3)}–${c.ratioHigh.toFixed(3)}] (${count(c.candidateOpsPerSec)} vs ${count(c.baselineOpsPerSec)} calls/s)`,
    goal: goal === undefined ? "" : `≤ ${goal.toFixed(2)}`,
    ok: goal === undefined ? undefined : c.ratio <= goal,
  });
  return [
    row("unary", overhead.unary, unaryGoal),
    row(`streaming (${STREAM_MESSAGES} msgs)`, overhead.streaming, streamingGoal),
  ];
}

/** Bearer vs DPoP rows: DPoP / Bearer, and what DPoP adds to a call in microseconds. */
function dpopRows(where: string, overhead: Overhead, goal: number | undefined): Row[] {
  const row = (kind: string, c: Comparison): Row => ({
    measure: `DPoP ${where}, ${kind}: DPoP / Bearer`,
    value: `${c.ratio.toFixed(3)} [${c.ratioLow.toFixed(3)}–${c.ratioHigh.toFixed(3)}] (${count(c.candidateOpsPerSec)} vs ${count(c.baselineOpsPerSec)} calls/s; +${count(addedMicroseconds(c))} µs per call)`,
    goal: goal === undefined ? "" : `≤ ${goal.toFixed(2)}`,
    ok: goal === undefined ? undefined : c.ratio <= goal,
  });
  return [
    row("unary", overhead.unary),
    row(`streaming (${STREAM_MESSAGES} msgs)`, overhead.streaming),
  ];
}

/** The candidate's median call time minus the baseline's, in microseconds. */
function addedMicroseconds(c: Comparison): number {
  return 1e6 / c.candidateOpsPerSec - 1e6 / c.baselineOpsPerSec;
}

function stormRows(name: string, storm: StormResult): Row[] {
  const label = `${name}, ${count(storm.calls)} concurrent calls`;
  const rows: Row[] = [
    {
      measure: `${label}: token requests`,
      value: count(storm.tokenRequests),
      goal: "= 1",
      ok: storm.tokenRequests === 1,
    },
  ];
  if (name === "revocation storm") {
    rows.push({
      measure: `${label}: replays`,
      value: count(storm.replays),
      goal: `= ${count(storm.calls)}`,
      ok: storm.replays === storm.calls,
    });
  }
  rows.push(
    {
      measure: `${label}: failed calls`,
      value: count(storm.failed),
      goal: "= 0",
      ok: storm.failed === 0,
    },
    {
      measure: `${label}: latency p50 / p99`,
      value: `${ms(storm.latency.p50)} / ${ms(storm.latency.p99)} (warm storm: ${ms(storm.warmLatency.p50)} / ${ms(storm.warmLatency.p99)}; one warm call: ${ms(storm.singleCallLatency.p50)} / ${ms(storm.singleCallLatency.p99)})`,
      goal: "",
      ok: undefined,
    },
  );
  return rows;
}

function steadyOk(steady: SteadyResult): boolean {
  const { tokenRequests, expectedTokenRequests } = steady;
  return (
    Math.abs(tokenRequests - expectedTokenRequests) <= expectedTokenRequests * STEADY_TOLERANCE
  );
}

function steadyRows(steady: SteadyResult): Row[] {
  const label = `steady state, ${round(steady.durationMs / 1000, 1)} s, ${steady.tokenTtlSeconds} s tokens`;
  return [
    {
      measure: `${label}: Unauthenticated answers`,
      value: count(steady.unauthenticated),
      goal: "= 0",
      ok: steady.unauthenticated === 0,
    },
    {
      measure: `${label}: token requests`,
      value: count(steady.tokenRequests),
      goal: `≈ ${steady.expectedTokenRequests} (±${STEADY_TOLERANCE * 100}%)`,
      ok: steadyOk(steady),
    },
    {
      measure: `${label}: calls (failed)`,
      value: `${count(steady.calls)} (${count(steady.failed)} failed)`,
      goal: "0 failed",
      ok: steady.failed === 0,
    },
  ];
}

function steadyNote(steady: SteadyResult): string {
  return (
    `Steady state: tokens live ${steady.tokenTtlSeconds} s, but the server announces expires_in as the whole seconds left ` +
    `(${steady.tokenTtlSeconds} s minus the part of the current second already gone, rounded down), so the library ` +
    `sees a lifetime of ${ms(steady.announcedLifetimeMs)} and refreshes at half of it (the 30 s refresh margin is capped ` +
    `at half the lifetime): every ${ms(steady.refreshAfterMs)} plus a fetch. Expected: 1 + ${round(steady.durationMs / 1000, 1)} s / ` +
    `${ms(steady.refreshAfterMs)} ≈ ${steady.expectedTokenRequests} token requests (a little fewer, as each refresh also waits for its fetch).`
  );
}

function browserRows(browser: BrowserResult): Row[] {
  if (browser.status !== "ran") {
    return [
      {
        measure: "browser",
        value: `${browser.status} (${browser.reason})`,
        goal: "",
        ok: undefined,
      },
    ];
  }
  const where = `in ${browser.browser}, gRPC-Web`;
  return [
    ...overheadRows(where, browser, undefined, undefined),
    ...(browser.dpop.status === "ran"
      ? dpopRows(`${where} to the demo backend`, browser.dpop, GOALS.browserDpop)
      : [
          {
            measure: `DPoP ${where}`,
            value: `failed (${browser.dpop.reason})`,
            goal: `≤ ${GOALS.browserDpop.toFixed(2)}`,
            ok: false,
          },
        ]),
    ...proofRows(browser.browser, browser.proof),
  ];
}

function comparisonJson(c: Comparison, goal: number | undefined) {
  return {
    ratio: round(c.ratio, 3),
    ratioCi95: [round(c.ratioLow, 3), round(c.ratioHigh, 3)],
    bareCallsPerSecond: Math.round(c.baselineOpsPerSec),
    interceptedCallsPerSecond: Math.round(c.candidateOpsPerSec),
    rounds: c.rounds,
    callsPerRound: c.callsPerRound,
    goal: goal ?? null,
    ok: goal === undefined ? null : c.ratio <= goal,
  };
}

function stormJson(storm: StormResult) {
  return {
    calls: storm.calls,
    tokenRequests: storm.tokenRequests,
    replays: storm.replays,
    unauthenticated: storm.unauthenticated,
    failed: storm.failed,
    warmFailed: storm.warmFailed,
    p50Ms: round(storm.latency.p50, 1),
    p99Ms: round(storm.latency.p99, 1),
    warmP50Ms: round(storm.warmLatency.p50, 1),
    warmP99Ms: round(storm.warmLatency.p99, 1),
    singleCallP50Ms: round(storm.singleCallLatency.p50, 2),
    singleCallP99Ms: round(storm.singleCallLatency.p99, 2),
  };
}

function steadyJson(steady: SteadyResult) {
  return {
    durationMs: Math.round(steady.durationMs),
    tokenTtlSeconds: steady.tokenTtlSeconds,
    calls: steady.calls,
    failed: steady.failed,
    replays: steady.replays,
    unauthenticated: steady.unauthenticated,
    tokenRequests: steady.tokenRequests,
    announcedLifetimeMs: Math.round(steady.announcedLifetimeMs),
    refreshAfterMs: Math.round(steady.refreshAfterMs),
    expectedTokenRequests: steady.expectedTokenRequests,
    ok: steadyOk(steady),
  };
}

function browserJson(browser: BrowserResult) {
  if (browser.status !== "ran") return { status: browser.status, reason: browser.reason };
  return {
    status: browser.status,
    browser: browser.browser,
    unary: comparisonJson(browser.unary, undefined),
    streaming: comparisonJson(browser.streaming, undefined),
    dpop: browserDpopJson(browser.dpop),
    proof: proofJson(browser.proof),
  };
}

function browserDpopJson(dpop: DpopResult) {
  if (dpop.status !== "ran") return { status: dpop.status, reason: dpop.reason };
  return { status: dpop.status, ...dpopJson(dpop, GOALS.browserDpop) };
}

/** Bearer vs DPoP, both through the interceptor: the ratio is DPoP / Bearer. */
function dpopJson(overhead: Overhead, goal: number | undefined) {
  const side = (c: Comparison) => ({
    ratio: round(c.ratio, 3),
    ratioCi95: [round(c.ratioLow, 3), round(c.ratioHigh, 3)],
    bearerCallsPerSecond: Math.round(c.baselineOpsPerSec),
    dpopCallsPerSecond: Math.round(c.candidateOpsPerSec),
    addedMicrosecondsPerCall: Math.round(addedMicroseconds(c)),
    rounds: c.rounds,
    callsPerRound: c.callsPerRound,
    goal: goal ?? null,
    ok: goal === undefined ? null : c.ratio <= goal,
  });
  return { unary: side(overhead.unary), streaming: side(overhead.streaming) };
}

await main();
