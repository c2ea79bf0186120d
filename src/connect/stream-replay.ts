import type { StreamResponse } from "@connectrpc/connect";

/**
 * Wraps a stream response so that an error on the first read, before any
 * message, may be answered with a replacement stream by `onFirstError`
 * (undefined: the error goes to the caller). Later errors go to `onLaterError`
 * and then to the caller; a first read that succeeds calls `onFirstRead`. Messages pass straight
 * through, one `then` each.
 */
export function watchReads(
  res: StreamResponse,
  onFirstError: ((error: unknown) => Promise<StreamResponse> | undefined) | undefined,
  onLaterError: (error: unknown) => void,
  onFirstRead?: () => void,
): StreamResponse {
  let inner: AsyncIterator<unknown> | undefined;
  let later: ((error: unknown) => never) | undefined = (error) => {
    onLaterError(error);
    throw error;
  };
  const firstRead = async (error: unknown): Promise<IteratorResult<unknown>> => {
    const replacement = onFirstError?.(error);
    if (replacement === undefined) throw error;
    const active = await replacement;
    // The replacement watches its own reads; its trailer is the one the caller reads at the end.
    later = undefined;
    const replayed = active.message[Symbol.asyncIterator]();
    inner = {
      next: () =>
        replayed.next().then((result) => {
          if (result.done === true) copyInto(res.trailer, active.trailer);
          return result;
        }),
    };
    return inner.next();
  };
  const iterator: AsyncIterableIterator<unknown> = {
    next() {
      if (inner === undefined) {
        inner = res.message[Symbol.asyncIterator]();
        const read = (result: IteratorResult<unknown>) => {
          onFirstRead?.();
          return result;
        };
        return inner.next().then(onFirstRead && read, firstRead);
      }
      return later === undefined ? inner.next() : inner.next().then(undefined, later);
    },
    return(value?: unknown) {
      return inner?.return?.(value) ?? Promise.resolve({ done: true, value });
    },
    throw(error?: unknown) {
      return inner?.throw?.(error) ?? Promise.reject(error);
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  // Plain properties (getters cost every call): the caller read the first attempt's header
  // already, and a replay's trailer is copied over when its stream ends.
  return { ...res, message: iterator } as StreamResponse;
}

function copyInto(target: Headers, source: Headers): void {
  if (target === source) return;
  source.forEach((value, key) => {
    target.set(key, value);
  });
}

/**
 * The request messages of a server-streaming call, readable once per attempt: each call of the
 * returned function gives a fresh reader. The first reader pulls from `source` and records what
 * it reads; a later reader gets the recorded messages, then pulls whatever is left. Closing a
 * reader closes only that reader: a replay may still need the rest of `source`.
 */
export function recordedInput<T>(source: AsyncIterable<T>): () => AsyncIterable<T> {
  const seen: T[] = [];
  let iterator: AsyncIterator<T> | undefined;
  let ended = false;
  let failure: { error: unknown } | undefined;
  let pulling: Promise<IteratorResult<T>> | undefined;
  return () => {
    let index = 0;
    let closed = false;
    const reader: AsyncIterableIterator<T> = {
      next(): Promise<IteratorResult<T>> {
        if (closed || (ended && index >= seen.length)) {
          return Promise.resolve({ done: true, value: undefined });
        }
        if (index < seen.length) return Promise.resolve({ done: false, value: seen[index++] as T });
        if (failure !== undefined) return Promise.reject(failure.error);
        // Another reader is pulling the next message: wait for it, then look again.
        if (pulling !== undefined) {
          const again = () => reader.next();
          return pulling.then(again, again);
        }
        iterator ??= source[Symbol.asyncIterator]();
        pulling = iterator.next().then(
          (result): IteratorResult<T> => {
            pulling = undefined;
            if (result.done === true) {
              ended = true;
              return { done: true, value: undefined };
            }
            index = seen.push(result.value);
            return result;
          },
          (error: unknown) => {
            pulling = undefined;
            failure = { error };
            throw error;
          },
        );
        return pulling;
      },
      return(value?: unknown) {
        closed = true;
        return Promise.resolve({ done: true, value });
      },
      // As a generator does: end, and hand the error back (Connect's pipes forward errors here).
      throw(error?: unknown) {
        closed = true;
        return Promise.reject(error);
      },
      [Symbol.asyncIterator]: () => reader,
    };
    return reader;
  };
}
