import {
  Code,
  ConnectError,
  type Interceptor,
  type StreamRequest,
  type StreamResponse,
  type UnaryRequest,
  type UnaryResponse,
} from "@connectrpc/connect";
import { abortReason } from "./abort.js";
import { type AuthOptions, resolveAuthOptions } from "./auth-options.js";
import { skipAuth } from "./skip-auth.js";
import { TokenFetchError } from "./token-fetch-error.js";
import { freshTokenOf, type TokenSource } from "./token-source.js";

/** Options for {@link createAuthInterceptor}. */
export type AuthInterceptorOptions = AuthOptions;

type Next = (req: UnaryRequest | StreamRequest) => Promise<UnaryResponse | StreamResponse>;

/**
 * Creates a Connect interceptor that sets `authorization: Bearer <token>` on
 * every call and, when the server answers `Unauthenticated` before any message
 * arrived, refreshes the token and replays the call exactly once.
 *
 * Unary and server-streaming calls are replayed; client- and bidi-streaming
 * calls get the header but are not replayed (their input cannot be buffered).
 * A call whose context values set {@link skipAuth} is left alone.
 *
 * @example
 * ```ts
 * const transport = createGrpcWebTransport({
 *   baseUrl: "https://api.example.com",
 *   interceptors: [createAuthInterceptor(tokens)],
 * });
 * ```
 */
export function createAuthInterceptor(
  source: TokenSource,
  options: AuthInterceptorOptions = {},
): Interceptor {
  const { headerName, headerValue, notifyReplay } = resolveAuthOptions(
    "createAuthInterceptor",
    source,
    options,
  );
  const freshToken = freshTokenOf(source);
  // Tokens change rarely: build each header value once, not per call.
  let lastToken = "";
  let lastValue = "";
  const setToken = (req: UnaryRequest | StreamRequest, token: string) => {
    if (token !== lastToken) {
      lastValue = headerValue(token);
      lastToken = token;
    }
    req.header.set(headerName, lastValue);
  };

  /** Refreshes after `rejected` was refused, for a replay of `req`. */
  const replayToken = async (req: UnaryRequest | StreamRequest, rejected: string) => {
    const fresh = await tokenOrConnectError(source.refresh(rejected, { signal: req.signal }), req);
    notifyReplay(`${req.service.typeName}/${req.method.name}`);
    return fresh;
  };
  /** Runs the replay; an Unauthenticated answer to it tells the source that token is bad too. */
  const lastAttempt = async <T>(
    req: UnaryRequest | StreamRequest,
    token: string,
    run: () => Promise<T>,
  ) => {
    setToken(req, token);
    try {
      return await run();
    } catch (error) {
      if (isUnauthenticated(error)) source.invalidate(token);
      throw error;
    }
  };

  const unary = (next: Next, req: UnaryRequest, token: string) => {
    setToken(req, token);
    const replay = async (error: unknown) => {
      if (!isUnauthenticated(error)) throw error;
      const fresh = await replayToken(req, token);
      return lastAttempt(req, fresh, () => next(req));
    };
    try {
      return next(req).then(undefined, replay);
    } catch (error) {
      return replay(error);
    }
  };

  const serverStream = (next: Next, req: StreamRequest, token: string) => {
    // The transport consumes the request iterable: record it as the first attempt reads it, and
    // hand a replay a fresh iterable over the same messages.
    const input = recordedInput(req.message);
    const send = () =>
      next({ ...req, message: input() } as StreamRequest) as Promise<StreamResponse>;
    const replay = async () => {
      const fresh = await replayToken(req, token);
      const res = await lastAttempt(req, fresh, send);
      return watchReads(res, undefined, (error) => {
        if (isUnauthenticated(error)) source.invalidate(fresh);
      });
    };
    const watch = (res: StreamResponse) =>
      watchReads(
        res,
        (error) => (isUnauthenticated(error) ? replay() : undefined),
        (error) => {
          if (isUnauthenticated(error)) source.invalidate(token);
        },
      );
    const refused = (error: unknown) => {
      if (!isUnauthenticated(error)) throw error;
      return replay();
    };
    setToken(req, token);
    let sent: Promise<StreamResponse>;
    try {
      sent = send();
    } catch (error) {
      sent = Promise.reject(error);
    }
    return sent.then(watch, refused);
  };

  const call = (next: Next, req: UnaryRequest | StreamRequest, token: string) => {
    if (!req.stream) return unary(next, req, token);
    if (req.method.methodKind === "server_streaming") return serverStream(next, req, token);
    setToken(req, token);
    return next(req);
  };

  return (next) => (req) => {
    if (req.contextValues.get(skipAuth)) return next(req);
    const token = freshToken?.();
    if (token !== undefined) return call(next, req, token);
    return tokenOrConnectError(source.getToken({ signal: req.signal }), req).then((t) =>
      call(next, req, t),
    );
  };
}

/**
 * Wraps a stream response so that an error on the first read, before any
 * message, may be answered with a replacement stream by `onFirstError`
 * (undefined: the error goes to the caller). Later errors go to `onLaterError`
 * and then to the caller. Messages pass straight through, one `then` each.
 */
function watchReads(
  res: StreamResponse,
  onFirstError: ((error: unknown) => Promise<StreamResponse> | undefined) | undefined,
  onLaterError: (error: unknown) => void,
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
        return inner.next().then(undefined, firstRead);
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
function recordedInput<T>(source: AsyncIterable<T>): () => AsyncIterable<T> {
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

function isUnauthenticated(error: unknown): boolean {
  return ConnectError.from(error).code === Code.Unauthenticated;
}

/** Awaits a token; failures become the ConnectError the call ends with. */
async function tokenOrConnectError(
  token: Promise<string>,
  req: UnaryRequest | StreamRequest,
): Promise<string> {
  try {
    return await token;
  } catch (error) {
    const { signal } = req;
    // The call's own signal says why: Canceled, or DeadlineExceeded from Connect's deadline.
    if (signal.aborted) throw ConnectError.from(abortReason(signal), Code.Canceled);
    if (error instanceof TokenFetchError) {
      throw new ConnectError(error.message, error.code, undefined, undefined, error);
    }
    throw ConnectError.from(error, Code.Unavailable);
  }
}
