/**
 * Loose regression guards from the benchmarks (`npm run bench` reports the real figures): each
 * runs the bench's own code, scaled down, with bounds no busy machine can miss by chance.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startBenchServer } from "../bench/backend.js";
import { dpopModules, FETCH_TOKEN_APP_BUDGET_BYTES, kyModules } from "../bench/budget.js";
import { measureFetchTokenApp } from "../bench/bundle-size.js";
import { measureMemoryOverhead } from "../bench/overhead.js";
import { runColdStorm, runRevocationStorm } from "../bench/storms.js";
import type { DemoServer } from "../demo/server/server.js";
import * as lib from "../src/index.js";

/** Concurrent calls per storm: a fifth of the bench's, enough to show a stampede. */
const STORM_CALLS = 200;
/** The interceptor may cost at most half a bare in-memory call (the bench's goals are 3–5%). */
const MAX_OVERHEAD_RATIO = 1.5;

describe("bench guards", () => {
  let server: DemoServer;
  beforeAll(async () => {
    server = await startBenchServer({ tokenTtlSeconds: 3_600 });
  });
  afterAll(async () => {
    await server.close();
  });

  it("keeps an app with its own fetchToken and the interceptor within FETCH_TOKEN_APP_BUDGET_BYTES, and free of ky and DPoP", async () => {
    const size = await measureFetchTokenApp();
    expect(size.gzipBytes).toBeGreaterThan(0);
    expect(kyModules(size)).toEqual([]);
    expect(dpopModules(size)).toEqual([]);
    expect(size.gzipBytes).toBeLessThanOrEqual(FETCH_TOKEN_APP_BUDGET_BYTES);
  });

  it("makes one token request for a cold storm of 200 concurrent calls, and fails none", async () => {
    const storm = await runColdStorm(lib, server, STORM_CALLS);
    expect(storm.tokenRequests).toBe(1);
    expect(storm.failed).toBe(0);
    expect(storm.warmFailed).toBe(0);
    expect(storm.unauthenticated).toBe(0);
  });

  it("replays each of 200 concurrent calls once after a revocation, with one token request", async () => {
    const storm = await runRevocationStorm(lib, server, STORM_CALLS);
    expect(storm.tokenRequests).toBe(1);
    expect(storm.replays).toBe(STORM_CALLS);
    expect(storm.unauthenticated).toBe(STORM_CALLS);
    expect(storm.failed).toBe(0);
    expect(storm.warmFailed).toBe(0);
  });

  it("costs less than half a bare in-memory call, unary and streaming", async () => {
    const overhead = await measureMemoryOverhead(lib, {
      rounds: 100,
      unaryCallsPerRound: 4,
      streamCallsPerRound: 2,
    });
    expect(overhead.unary.ratio).toBeLessThan(MAX_OVERHEAD_RATIO);
    expect(overhead.streaming.ratio).toBeLessThan(MAX_OVERHEAD_RATIO);
  });
});
