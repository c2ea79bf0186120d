import { ConnectError, type Interceptor } from "@connectrpc/connect";
import type { TokenSource } from "../core/token-source.js";
import { type AuthOptions, resolveAuthOptions } from "../replay/auth-options.js";
import { internalsOf } from "../source/token-source.js";
import {
  type CallKit,
  type Next,
  proveAndSend,
  type Req,
  serverStream,
  tokenOrConnectError,
  unary,
} from "./attempts.js";
import { skipAuth } from "./skip-auth.js";

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
  const { headerName, skips } = auth;
  const hooks = internalsOf(source);
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
  const kit: CallKit = {
    source,
    proofs,
    // Told when a call succeeded with a token it had to wait for, which reopens the fast path.
    proven: hooks?.proven,
    isAuthError: (error) => auth.isAuthError(ConnectError.from(error) as never),
    setToken,
    notifyReplay: auth.notifyReplay,
  };

  const call = (next: Next, req: Req, token: string, waited: boolean) => {
    if (!req.stream) return unary(kit, next, req, token, waited);
    if (req.method.methodKind === "server_streaming") {
      return serverStream(kit, next, req, token, waited);
    }
    setToken(req, token);
    // Client and bidi streams are not replayed, but a DPoP source still proves its key.
    return proofs === undefined ? next(req) : proveAndSend(kit, req, token, next);
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
