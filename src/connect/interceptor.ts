import type { ConnectError, Interceptor } from "@connectrpc/connect";
import type { TokenSource } from "../core/token-source.js";
import { type AuthOptions, createReplayRules } from "../replay/auth-options.js";
import type { FirstToken } from "../replay/call.js";
import type { Next, Req, Res } from "./attempt.js";
import { tokenOrConnectError } from "./errors.js";
import { clientStream, serverStream } from "./server-stream.js";
import { skipAuth } from "./skip-auth.js";
import { unary } from "./unary.js";

/** Options for {@link createAuthInterceptor}; `isAuthError` gets the `ConnectError`. */
export interface AuthInterceptorOptions extends AuthOptions<ConnectError> {}

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
  const rules = createReplayRules("createAuthInterceptor", source, options);
  const { skips } = rules;
  const call = (next: Next, req: Req, first: FirstToken): Promise<Res> => {
    if (!req.stream) return unary(rules, next, req, first);
    if (req.method.methodKind === "server_streaming") return serverStream(rules, next, req, first);
    return clientStream(rules, next, req, first);
  };
  return (next) => (req) => {
    if (req.contextValues.get(skipAuth) || skips?.(req.service.typeName, req.method.name)) {
      return next(req);
    }
    // A token a call already succeeded with goes out without awaiting anything.
    const token = source.current?.();
    if (token !== undefined) return call(next, req, { token, proven: true });
    return tokenOrConnectError(source.getToken({ signal: req.signal }), req).then((waited) =>
      call(next, req, { token: waited, proven: false }),
    );
  };
}
