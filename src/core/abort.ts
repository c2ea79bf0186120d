import { TokenFetchCode, TokenFetchError } from "./token-fetch-error.js";

/**
 * Waits for `promise`, but rejects with `signal.reason` as soon as `signal`
 * aborts. The promise itself goes on: it may be shared with other callers.
 */
export function raceSignal<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) return Promise.reject(abortReason(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortReason(signal));
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

/** The reason a signal was aborted, with a standard AbortError where the runtime gives none. */
export function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException("This operation was aborted", "AbortError");
}

/**
 * Runs `task` with a signal that aborts when `signal` does or after `timeoutMs` (Unavailable), and
 * settles by then even if `task` ignores its signal.
 */
export async function withTimeout<T>(
  timeoutMs: number,
  signal: AbortSignal,
  task: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const bounded = new AbortController();
  const stop = () => bounded.abort(abortReason(signal));
  signal.addEventListener("abort", stop, { once: true });
  const timer = setTimeout(() => {
    bounded.abort(
      new TokenFetchError(`the token endpoint did not answer within ${timeoutMs} ms`, {
        code: TokenFetchCode.Unavailable,
      }),
    );
  }, timeoutMs);
  try {
    return await raceSignal(task(bounded.signal), bounded.signal);
  } catch (error) {
    throw toTokenFetchError(error, bounded.signal);
  } finally {
    clearTimeout(timer);
    signal.removeEventListener("abort", stop);
  }
}

/** A failure as a TokenFetchError: an abort's own reason when it is one, else Unavailable. */
export function toTokenFetchError(error: unknown, signal: AbortSignal): TokenFetchError {
  if (signal.aborted && signal.reason instanceof TokenFetchError) return signal.reason;
  if (error instanceof TokenFetchError) return error;
  return new TokenFetchError("fetching the token failed", {
    code: TokenFetchCode.Unavailable,
    cause: error,
  });
}
