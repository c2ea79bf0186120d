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
import type { ProofScheme } from "./proof-scheme.js";
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
  const { headerName, notifyReplay, skips } = auth;
  const isAuthError = (error: unknown) => auth.isAuthError(ConnectError.from(error) as never);
  const hooks = internalsOf(source);
  // Told when a call succeeded with a token it had to wait for, which reopens the fast path.
  const proven = hooks?.proven;
  // A sender-constrained source (DPoP): `<scheme> <token>`, with a fresh proof on every attempt.
  const proofs = hooks?.proofs;
  const headerValue =
    proofs === undefined ? auth.headerValue : (token: string) => `${proofs.scheme} ${token}`;
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
  const prove = async (req: Req, token: string) => {
    const url = req.url.replace(/[?#].*$/, "");
    for (const [name, value] of Object.entries(await (proofs as ProofScheme).headers(url, token))) {
      req.header.set(name, value);
    }
  };
  /** The server asked for one more try with a new nonce (DPoP's `use_dpop_nonce`). */
  const nonceChallenge = (req: Req, error: unknown) => {
    if (proofs === undefined) return false;
    const { code, metadata } = ConnectError.from(error);
    return proofs.challenge(req.url, code, metadata);
  };

  /** Refreshes after `rejected` was refused, and sets up `req` for a replay with the new token. */
  const refreshFor = async (req: Req, rejected: string) => {
    const fresh = await tokenOrConnectError(source.refresh(rejected, { signal: req.signal }), req);
    notifyReplay(`${req.service.typeName}/${req.method.name}`);
    setToken(req, fresh);
    return fresh;
  };

  /**
   * What follows a failed attempt: at most one replay for a nonce challenge (DPoP) and one with a
   * refreshed token, never more. Resolves to the token to replay with; throws the error when the
   * call ends with it, after telling the source of a refused token.
   */
  const replayPlan = (req: Req, token: string, started: number) => {
    let current = token;
    let refreshed = false;
    let nonced = false;
    return {
      current: () => current,
      async next(error: unknown): Promise<string> {
        if (!nonced && nonceChallenge(req, error)) {
          nonced = true;
        } else {
          // Asked once per failure: the app's predicate may be costly, or throw.
          const refused = isAuthError(error);
          if (refreshed || !refused) {
            if (refused) source.invalidate(current);
            throw error;
          }
          refreshed = true;
          current = await refreshFor(req, current);
        }
        shortenTimeout(req.header, performance.now() - started);
        return current;
      },
    };
  };

  const replayUnary = async (
    next: Next,
    req: Req,
    token: string,
    started: number,
    error: unknown,
  ) => {
    const plan = replayPlan(req, token, started);
    for (let failure = error; ; ) {
      const current = await plan.next(failure);
      try {
        if (proofs !== undefined) await prove(req, current);
        const res = await next(req);
        proven?.(current);
        return res;
      } catch (again) {
        failure = again;
      }
    }
  };

  const unary = (next: Next, req: UnaryRequest, token: string, waited: boolean) => {
    const started = performance.now();
    setToken(req, token);
    const fail = (error: unknown) => replayUnary(next, req, token, started, error);
    const ok =
      waited && proven !== undefined
        ? (res: UnaryResponse | StreamResponse) => {
            proven(token);
            return res;
          }
        : undefined;
    if (proofs !== undefined)
      return prove(req, token)
        .then(() => next(req))
        .then(ok, fail);
    let sent: Promise<UnaryResponse | StreamResponse>;
    try {
      sent = next(req);
    } catch (error) {
      return fail(error);
    }
    return sent.then(ok, fail);
  };

  const serverStream = (next: Next, req: StreamRequest, token: string, waited: boolean) => {
    const started = performance.now();
    // The transport consumes the request iterable: record it as the first attempt reads it, and
    // hand a replay a fresh iterable over the same messages.
    const input = recordedInput(req.message);
    const plan = replayPlan(req, token, started);
    const send = () => {
      const go = () =>
        next({ ...req, message: input() } as StreamRequest) as Promise<StreamResponse>;
      return proofs === undefined ? go() : prove(req, plan.current()).then(go);
    };
    const attempt = (): Promise<StreamResponse> =>
      send().then(watch, (error: unknown) => plan.next(error).then(attempt));
    const watch = (res: StreamResponse) =>
      watchReads(
        res,
        (error) => plan.next(error).then(attempt),
        (error) => {
          if (isAuthError(error)) source.invalidate(plan.current());
        },
        (waited || plan.current() !== token) && proven ? () => proven(plan.current()) : undefined,
      );
    setToken(req, token);
    try {
      return attempt();
    } catch (error) {
      return plan.next(error).then(attempt);
    }
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
