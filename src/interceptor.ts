import {
  Code,
  ConnectError,
  type Interceptor,
  type StreamRequest,
  type StreamResponse,
} from "@connectrpc/connect";
import { abortReason } from "./abort.js";
import { type AuthOptions, resolveAuthOptions } from "./auth-options.js";
import { skipAuth } from "./skip-auth.js";
import { TokenFetchError } from "./token-fetch-error.js";
import type { TokenSource } from "./token-source.js";

/** Options for {@link createAuthInterceptor}. */
export type AuthInterceptorOptions = AuthOptions;

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

  return (next) => async (req) => {
    if (req.contextValues.get(skipAuth)) return next(req);
    const { signal } = req;
    const setToken = (token: string) => req.header.set(headerName, headerValue(token));

    /** Refreshes after `rejected` was refused and tells `onReplay`. */
    const replayToken = async (rejected: string): Promise<string> => {
      const fresh = await tokenOrConnectError(source.refresh(rejected, { signal }), signal);
      notifyReplay(`${req.service.typeName}/${req.method.name}`);
      return fresh;
    };
    /** Runs one attempt; an Unauthenticated answer tells the source the token is bad. */
    const attempt = async <T>(token: string, run: () => Promise<T>): Promise<T> => {
      setToken(token);
      try {
        return await run();
      } catch (error) {
        if (isUnauthenticated(error)) source.invalidate(token);
        throw error;
      }
    };

    const token = await tokenOrConnectError(source.getToken({ signal }), signal);

    if (!req.stream) {
      try {
        setToken(token);
        return await next(req);
      } catch (error) {
        if (!isUnauthenticated(error)) throw error;
        const fresh = await replayToken(token);
        return attempt(fresh, () => next(req));
      }
    }

    if (req.method.methodKind !== "server_streaming") {
      setToken(token);
      return next(req);
    }

    // The transport consumes the request iterable: read it once, hand each attempt a fresh one.
    const input: unknown[] = [];
    for await (const message of req.message) input.push(message);
    const send = () => next({ ...req, message: iterate(input) } as StreamRequest);

    /** Watches a stream's reads; `replay`, when given, answers an Unauthenticated first read. */
    const watch = (
      res: StreamResponse,
      sent: string,
      replay?: () => Promise<StreamResponse>,
    ): StreamResponse =>
      watchFirstRead(
        res,
        (error) => {
          if (replay !== undefined && isUnauthenticated(error)) return replay();
          if (isUnauthenticated(error)) source.invalidate(sent);
          throw error;
        },
        (error) => {
          if (isUnauthenticated(error)) source.invalidate(sent);
        },
      );
    const replay = async (): Promise<StreamResponse> => {
      const fresh = await replayToken(token);
      return watch((await attempt(fresh, send)) as StreamResponse, fresh);
    };

    let res: StreamResponse;
    try {
      setToken(token);
      res = (await send()) as StreamResponse;
    } catch (error) {
      if (!isUnauthenticated(error)) throw error;
      return replay();
    }
    return watch(res, token, replay);
  };
}

/**
 * Wraps a stream response so that an error on the first read, before any
 * message, goes to `onFirstError`, which may answer with a replacement stream.
 * Errors after a message go to `onLaterError` and then to the caller as they are.
 */
function watchFirstRead(
  res: StreamResponse,
  onFirstError: (error: unknown) => Promise<StreamResponse>,
  onLaterError: (error: unknown) => void,
): StreamResponse {
  let active = res;
  async function* messages() {
    const it = res.message[Symbol.asyncIterator]();
    let first: IteratorResult<unknown>;
    try {
      first = await it.next();
    } catch (error) {
      active = await onFirstError(error);
      yield* active.message;
      return;
    }
    if (first.done === true) return;
    yield first.value;
    try {
      yield* { [Symbol.asyncIterator]: () => it };
    } catch (error) {
      onLaterError(error);
      throw error;
    }
  }
  return {
    ...res,
    // Header and trailer belong to whichever attempt is delivering the messages.
    get header() {
      return active.header;
    },
    get trailer() {
      return active.trailer;
    },
    message: messages(),
  } as StreamResponse;
}

async function* iterate<T>(items: readonly T[]): AsyncGenerator<T> {
  yield* items;
}

function isUnauthenticated(error: unknown): boolean {
  return ConnectError.from(error).code === Code.Unauthenticated;
}

/** Awaits a token; failures become the ConnectError the call ends with. */
async function tokenOrConnectError(token: Promise<string>, signal: AbortSignal): Promise<string> {
  try {
    return await token;
  } catch (error) {
    // The call's own signal says why: Canceled, or DeadlineExceeded from Connect's deadline.
    if (signal.aborted) throw ConnectError.from(abortReason(signal), Code.Canceled);
    if (error instanceof TokenFetchError) {
      throw new ConnectError(error.message, error.code, undefined, undefined, error);
    }
    throw ConnectError.from(error, Code.Unavailable);
  }
}
