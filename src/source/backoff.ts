import { now } from "../core/clock.js";
import { repeatedFailure, type TokenFetchError } from "../core/token-fetch-error.js";

/** The first wait after a failure, in ms; it doubles with each failure in a row. */
const FIRST_DELAY_MS = 1_000;
/** The longest wait: a recovered endpoint is tried again within this. */
export const MAX_BACKOFF_MS = 10_000;

/** Failures that stop fetching for a while, so a broken endpoint or server is not hammered. */
export interface Backoff {
  /** The failure to fail with now, marked repeated, while the wait lasts; else undefined. */
  pending(): TokenFetchError | undefined;
  /** Records a failure; returns when fetching may start again (ms since the epoch). */
  fail(error: TokenFetchError): number;
  /** Takes a failure another tab had, with its wait. */
  adopt(error: TokenFetchError, until: number): void;
  /** A success or `clear()`: no more waiting. */
  reset(): void;
}

/** Exponential backoff with jitter: 1 s, 2 s, 4 s … capped at 10 s, each between half and all. */
export function createBackoff(random: () => number = Math.random): Backoff {
  let failures = 0;
  let until = 0;
  let last: TokenFetchError | undefined;
  return {
    pending() {
      if (last === undefined || now() >= until) return undefined;
      const { code, status, message, oauthError } = last;
      const seconds = Math.ceil((until - now()) / 1000);
      return repeatedFailure(`${message} (repeated: next try in ${seconds} s)`, {
        code,
        status,
        oauthError,
        reason: last.reason,
      });
    },
    fail(error) {
      failures++;
      const delay = Math.min(MAX_BACKOFF_MS, FIRST_DELAY_MS * 2 ** (failures - 1));
      until = now() + delay * (0.5 + random() / 2);
      last = error;
      return until;
    },
    adopt(error, at) {
      // Bounded: a message from another tab cannot stop this one for longer than the cap.
      until = Math.max(until, Math.min(at, now() + MAX_BACKOFF_MS));
      last = error;
    },
    reset() {
      failures = 0;
      until = 0;
      last = undefined;
    },
  };
}
