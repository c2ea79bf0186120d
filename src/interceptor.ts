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
import { shortenTimeout } from "./deadline.js";
import { skipAuth } from "./skip-auth.js";
import { recordedInput, watchReads } from "./stream-replay.js";
import { TokenFetchError } from "./token-fetch-error.js";
import { internalsOf, type TokenSource } from "./token-source.js";

/** Options for {@link createAuthInterceptor}. */
export interface AuthInterceptorOptions extends AuthOptions {
  /**
   * Which failures get the refresh and the one replay: your server may say "expired" with
   * PermissionDenied or an `ErrorInfo` detail. It gets the `ConnectError`, with its details and
   * metadata. It decides only whether to refresh and replay: one replay per call at most, and the
   * token source's bounds hold whatever it says. One that throws counts as `false`.
   * Default: `error.code === Code.Unauthenticated`.
   */
  isAuthError?: ((error: ConnectError) => boolean) | undefined;
}

type Req = UnaryRequest | StreamRequest;
type Next = (req: Req) => Promise<UnaryResponse | StreamResponse>;

/**
 * Creates a Connect interceptor that sets `authorization: Bearer <token>` on
 * every call and, when the server answers `Unauthenticated` before any message
 * arrived, refreshes the token and replays the call exactly once.
 *
 * Unary and server-streaming calls are replayed; client- and bidi-streaming
 * calls get the header but are not replayed (their input cannot be buffered).
 * Calls that `skip` names, or whose context values set {@link skipAuth}, are left alone.
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
  const auth = resolveAuthOptions("createAuthInterceptor", source, options);
  const { headerName, headerValue, notifyReplay, skips } = auth;
  const isAuthError = (error: unknown) => auth.isAuthError(ConnectError.from(error) as never);
  const hooks = internalsOf(source);
  // Told when a call succeeded with a token it had to wait for, which reopens the fast path.
  const proven = hooks?.proven;
  // Tokens change rarely: build each header value once, not per call.
  let lastToken = "";
  let lastValue = "";
  const setToken = (req: Req, token: string) => {
    if (token !== lastToken) {
      lastValue = headerValue(token);
      lastToken = token;
    }
    req.header.set(headerName, lastValue);
  };
  const refused = (token: string) => (error: unknown) => {
    if (isAuthError(error)) source.invalidate(token);
  };

  /** Refreshes after `rejected` was refused, and sets up `req` for its one replay. */
  const replayWith = async (req: Req, rejected: string, started: number) => {
    const fresh = await tokenOrConnectError(source.refresh(rejected, { signal: req.signal }), req);
    notifyReplay(`${req.service.typeName}/${req.method.name}`);
    setToken(req, fresh);
    shortenTimeout(req.header, performance.now() - started);
    return fresh;
  };

  const unary = (next: Next, req: UnaryRequest, token: string, waited: boolean) => {
    const started = performance.now();
    setToken(req, token);
    const replay = async (error: unknown) => {
      if (!isAuthError(error)) throw error;
      const fresh = await replayWith(req, token, started);
      const res = await next(req).catch((again: unknown) => {
        refused(fresh)(again);
        throw again;
      });
      proven?.(fresh);
      return res;
    };
    let sent: Promise<UnaryResponse | StreamResponse>;
    try {
      sent = next(req);
    } catch (error) {
      return replay(error);
    }
    if (!waited || proven === undefined) return sent.then(undefined, replay);
    return sent.then((res) => {
      proven(token);
      return res;
    }, replay);
  };

  const serverStream = (next: Next, req: StreamRequest, token: string, waited: boolean) => {
    const started = performance.now();
    // The transport consumes the request iterable: record it as the first attempt reads it, and
    // hand a replay a fresh iterable over the same messages.
    const input = recordedInput(req.message);
    const send = () =>
      next({ ...req, message: input() } as StreamRequest) as Promise<StreamResponse>;
    const replay = async () => {
      const fresh = await replayWith(req, token, started);
      const res = await send().catch((again: unknown) => {
        refused(fresh)(again);
        throw again;
      });
      return watchReads(res, undefined, refused(fresh), proven && (() => proven(fresh)));
    };
    const watch = (res: StreamResponse) =>
      watchReads(
        res,
        (error) => (isAuthError(error) ? replay() : undefined),
        refused(token),
        waited && proven ? () => proven(token) : undefined,
      );
    setToken(req, token);
    let sent: Promise<StreamResponse>;
    try {
      sent = send();
    } catch (error) {
      sent = Promise.reject(error);
    }
    return sent.then(watch, (error: unknown) => {
      if (!isAuthError(error)) throw error;
      return replay();
    });
  };

  const call = (next: Next, req: Req, token: string, waited: boolean) => {
    if (!req.stream) return unary(next, req, token, waited);
    if (req.method.methodKind === "server_streaming") return serverStream(next, req, token, waited);
    setToken(req, token);
    return next(req);
  };

  return (next) => (req) => {
    if (req.contextValues.get(skipAuth) || skips?.(req.service.typeName, req.method.name)) {
      return next(req);
    }
    const token = hooks?.fresh();
    if (token !== undefined) return call(next, req, token, false);
    return tokenOrConnectError(source.getToken({ signal: req.signal }), req).then((t) =>
      call(next, req, t, true),
    );
  };
}

/** Awaits a token; failures become the ConnectError the call ends with. */
async function tokenOrConnectError(token: Promise<string>, req: Req): Promise<string> {
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
