/** Many concurrent calls at once with no token yet, or right after every token was revoked. */
import type { DemoServer } from "../demo/server/server.js";
import { authenticatedClient } from "./backend.js";
import type { DemoClient } from "./compare-clients.js";
import type { Library } from "./library.js";
import { percentile } from "./measure.js";

/** Latency of a set of calls, in milliseconds. */
export interface Latency {
  p50: number;
  p99: number;
}

/** What one storm of concurrent calls did. */
export interface StormResult {
  calls: number;
  /** Requests that reached the token endpoint during the storm. */
  tokenRequests: number;
  /** Calls the interceptor replayed (its `onReplay`). */
  replays: number;
  /** Unauthenticated answers the server gave during the storm. */
  unauthenticated: number;
  /** Calls that ended in an error. */
  failed: number;
  /** Calls of the warm comparison storm that ended in an error. */
  warmFailed: number;
  /** Each call's time from the moment the storm started to its answer. */
  latency: Latency;
  /** The same number of concurrent calls with a warm, valid token, for comparison. */
  warmLatency: Latency;
  /** One warm call at a time, for comparison. */
  singleCallLatency: Latency;
}

/** Warm calls made one at a time to time a call on its own. */
const SINGLE_CALLS = 200;

interface Storm {
  failed: number;
  latency: Latency;
}

/** Starts `calls` WhoAmI calls at once and waits for all of them. */
async function storm(client: DemoClient, calls: number): Promise<Storm> {
  const start = performance.now();
  const times: number[] = [];
  let failed = 0;
  await Promise.all(
    Array.from({ length: calls }, () =>
      client.whoAmI({}).then(
        () => times.push(performance.now() - start),
        () => failed++,
      ),
    ),
  );
  return { failed, latency: { p50: percentile(times, 50), p99: percentile(times, 99) } };
}

/** Makes `calls` calls one after the other, timing each. */
async function oneByOne(client: DemoClient, calls: number): Promise<Latency> {
  const times: number[] = [];
  for (let i = 0; i < calls; i++) {
    const start = performance.now();
    await client.whoAmI({});
    times.push(performance.now() - start);
  }
  return { p50: percentile(times, 50), p99: percentile(times, 99) };
}

/**
 * Cold storm: `calls` concurrent calls through a token source that has no token yet. Expected:
 * one token request, no failures. Then the same storm again, warm, and warm calls one at a time,
 * for the latency to compare.
 */
export async function runColdStorm(
  lib: Library,
  server: DemoServer,
  calls: number,
): Promise<StormResult> {
  const { client, replays } = authenticatedClient(lib, server);
  const before = server.stats();
  const cold = await storm(client, calls);
  const after = server.stats();
  const warm = await storm(client, calls);
  const singleCallLatency = await oneByOne(client, SINGLE_CALLS);
  return {
    calls,
    tokenRequests: after.tokenRequests - before.tokenRequests,
    replays: replays(),
    unauthenticated: after.unauthenticated - before.unauthenticated,
    failed: cold.failed,
    warmFailed: warm.failed,
    latency: cold.latency,
    warmLatency: warm.latency,
    singleCallLatency,
  };
}

/**
 * Revocation storm: warm up (and time a warm storm), revoke every token on the server, then
 * `calls` concurrent calls. Each is answered Unauthenticated and must be replayed once, after one
 * token request shared by all of them; none may fail.
 */
export async function runRevocationStorm(
  lib: Library,
  server: DemoServer,
  calls: number,
): Promise<StormResult> {
  const { client, replays } = authenticatedClient(lib, server);
  const warm = await storm(client, calls);
  const singleCallLatency = await oneByOne(client, SINGLE_CALLS);
  server.revokeAll();
  const replaysBefore = replays();
  const before = server.stats();
  const revoked = await storm(client, calls);
  const after = server.stats();
  return {
    calls,
    tokenRequests: after.tokenRequests - before.tokenRequests,
    replays: replays() - replaysBefore,
    unauthenticated: after.unauthenticated - before.unauthenticated,
    failed: revoked.failed,
    warmFailed: warm.failed,
    latency: revoked.latency,
    warmLatency: warm.latency,
    singleCallLatency,
  };
}
