import { TokenFetchCode, TokenFetchError } from "./token-fetch-error.js";

/** What bounds a wait in {@link race}. */
export interface RaceBounds {
  /** Rejects with its reason as soon as it aborts. */
  signal?: AbortSignal | undefined;
  /** Rejects with `onTimeout()` after this many milliseconds. */
  timeoutMs?: number | undefined;
  onTimeout?: (() => unknown) | undefined;
}

/**
 * Waits for `promise`, but rejects as soon as the signal aborts or the time is up, and cleans up
 * its listener and timer either way. The promise itself goes on: it may be shared with others.
 */
export function race<T>(promise: Promise<T>, bounds: RaceBounds): Promise<T> {
  const { signal, timeoutMs, onTimeout } = bounds;
  if (signal === undefined && timeoutMs === undefined) return promise;
  if (signal?.aborted) {
    // Abandoned at once: its outcome is no one's here, and must not surface as unhandled.
    promise.catch(() => {});
    return Promise.reject(abortReason(signal));
  }
  return new Promise<T>((resolve, reject) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const settle = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    };
    const onAbort = () => {
      settle();
      reject(abortReason(signal as AbortSignal));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    if (timeoutMs !== undefined) {
      timer = setTimeout(
        () => {
          settle();
          reject(onTimeout?.() ?? new DOMException("The operation timed out", "TimeoutError"));
        },
        Math.max(0, timeoutMs),
      );
    }
    promise.then(
      (value) => {
        settle();
        resolve(value);
      },
      (error: unknown) => {
        settle();
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
  const timedOut = () =>
    new TokenFetchError(`the token endpoint did not answer within ${timeoutMs} ms`, {
      code: TokenFetchCode.Unavailable,
    });
  // The task's own signal aborts on time too, so a fetch under way is stopped, not only left.
  const work = race(task(bounded.signal), { signal: bounded.signal });
  try {
    return await race(work, {
      timeoutMs,
      onTimeout: () => {
        bounded.abort(timedOut());
        return bounded.signal.reason;
      },
    });
  } catch (error) {
    throw toTokenFetchError(error, bounded.signal);
  } finally {
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
