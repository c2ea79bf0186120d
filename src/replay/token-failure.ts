import { race } from "../core/abort.js";
import { now } from "../core/clock.js";
import { GrpcCode } from "../core/codes.js";
import { TokenFetchError } from "../core/token-fetch-error.js";

/** What a call fails with when it could not get a token, before an adapter wraps it in its error. */
export interface TokenFailure {
  code: number;
  message: string;
  cause: unknown;
}

/** The call's deadline passed while it waited for a token. */
class DeadlinePassed extends Error {}

/**
 * Waits for a token for a call: until the call's `signal` aborts (its reason is the rejection) or
 * its `deadline` (ms since the epoch) passes (see {@link tokenFailure}).
 */
export function awaitToken(
  token: Promise<string>,
  signal: AbortSignal | undefined,
  deadline: number | undefined,
): Promise<string> {
  if (deadline === undefined) return signal === undefined ? token : race(token, { signal });
  return race(token, {
    signal,
    timeoutMs: deadline - now(),
    onTimeout: () => new DeadlinePassed("the deadline passed while waiting for a token"),
  });
}

/** The one table of what a token failure becomes at the RPC boundary (16, 14, 13, 1 or 4). */
export function tokenFailure(error: unknown): TokenFailure {
  if (error instanceof TokenFetchError) {
    return { code: error.code, message: error.message, cause: error };
  }
  if (error instanceof DeadlinePassed) {
    return { code: GrpcCode.DeadlineExceeded, message: error.message, cause: undefined };
  }
  return { code: GrpcCode.Unavailable, message: "could not obtain a token", cause: error };
}
