/** Calls for a while with short-lived tokens: refreshes must come before the server refuses. */
import type { DemoServer } from "../demo/server/server.js";
import { authenticatedClient } from "./backend.js";
import { STREAM_MESSAGES } from "./compare-clients.js";
import type { Library } from "./library.js";
import { drain, median } from "./measure.js";

/** Options for {@link runSteadyState}. */
export interface SteadyOptions {
  durationMs: number;
  /** Callers making unary calls in a loop. */
  unaryCallers: number;
  /** Callers making server-streaming calls in a loop. */
  streamCallers: number;
}

/** What {@link runSteadyState} saw. */
export interface SteadyResult {
  durationMs: number;
  /** The lifetime the server gives its tokens (its `tokenTtlSeconds`). */
  tokenTtlSeconds: number;
  calls: number;
  failed: number;
  replays: number;
  /** Unauthenticated answers the server gave. */
  unauthenticated: number;
  tokenRequests: number;
  /** The lifetime the library worked out from each answer's `expires_in` (median), ms. */
  announcedLifetimeMs: number;
  /** When the library fetches again: at half that lifetime (the refresh margin is capped there). */
  refreshAfterMs: number;
  /** Token requests expected: one at the start, then one per `refreshAfterMs`. */
  expectedTokenRequests: number;
}

/**
 * Calls the demo backend in a loop from a few concurrent callers for `durationMs`, through one
 * token source, while the server issues tokens of `tokenTtlSeconds` (set on `server` beforehand).
 */
export async function runSteadyState(
  lib: Library,
  server: DemoServer,
  options: SteadyOptions,
): Promise<SteadyResult> {
  const { tokens, client, replays } = authenticatedClient(lib, server);
  const lifetimes: number[] = [];
  tokens.subscribe((event) => {
    if (event.type === "token" && event.expiresAt !== undefined) {
      lifetimes.push(event.expiresAt - Date.now());
    }
  });

  const before = server.stats();
  const start = performance.now();
  const end = start + options.durationMs;
  let calls = 0;
  let failed = 0;
  const loop = async (call: () => Promise<unknown>) => {
    while (performance.now() < end) {
      calls++;
      await call().catch(() => failed++);
    }
  };
  await Promise.all([
    ...Array.from({ length: options.unaryCallers }, () => loop(() => client.whoAmI({}))),
    ...Array.from({ length: options.streamCallers }, () =>
      loop(() => drain(client.ticks({ count: STREAM_MESSAGES }))),
    ),
  ]);
  const durationMs = performance.now() - start;
  const after = server.stats();

  const announcedLifetimeMs = median(lifetimes);
  const refreshAfterMs = announcedLifetimeMs / 2;
  return {
    durationMs,
    tokenTtlSeconds: server.issuer.ttlSeconds(),
    calls,
    failed,
    replays: replays(),
    unauthenticated: after.unauthenticated - before.unauthenticated,
    tokenRequests: after.tokenRequests - before.tokenRequests,
    announcedLifetimeMs,
    refreshAfterMs,
    expectedTokenRequests: 1 + Math.round(durationMs / refreshAfterMs),
  };
}
