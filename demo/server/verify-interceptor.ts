import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { errors, jwtVerify } from "jose";
import { authKey } from "./auth-context.js";
import type { StatsRecorder } from "./stats.js";
import { TOKEN_ALGORITHM, type TokenIssuer } from "./token-issuer.js";

/** Options for {@link createVerifyInterceptor}. */
export interface VerifyInterceptorOptions {
  /** Supplies the public key, the required `iss`/`aud`, and the revocation list. */
  issuer: TokenIssuer;
  /** Counts calls per method and every Unauthenticated answer. */
  stats: StatsRecorder;
  /**
   * Fully-qualified names of services whose calls need no token, such as `grpc.health.v1.Health`
   * (health checkers carry none). Their calls are neither verified nor counted. Default: none.
   */
  publicServices?: readonly string[];
}

/**
 * Creates the server-side interceptor that admits only calls with a valid
 * `authorization: Bearer <jwt>` header: signed by the issuer's key with ES256, within `exp`/`nbf`,
 * with the issuer's `iss` and `aud`, and not revoked. Anything else is answered with
 * `Code.Unauthenticated`; on success the claims are put into the {@link authKey} context value.
 * Calls to `publicServices` pass through unchecked.
 */
export function createVerifyInterceptor(options: VerifyInterceptorOptions): Interceptor {
  const { issuer, stats } = options;
  const publicServices = new Set(options.publicServices ?? []);

  async function verify(authorization: string | null) {
    const match = /^Bearer ([^\s]+)$/i.exec(authorization ?? "");
    if (!match?.[1]) throw new ConnectError("missing bearer token", Code.Unauthenticated);
    try {
      const { payload } = await jwtVerify(match[1], issuer.publicKey, {
        algorithms: [TOKEN_ALGORITHM],
        issuer: issuer.issuer,
        audience: issuer.audience,
        requiredClaims: ["sub", "exp", "iat", "jti"],
      });
      // requiredClaims guarantees presence; jose has already checked the types of exp and iat.
      const { sub, exp, jti } = payload as { sub: string; exp: number; jti: string };
      if (issuer.isRevoked(jti)) throw new ConnectError("token revoked", Code.Unauthenticated);
      return { subject: sub, expiresAtUnix: exp, tokenId: jti };
    } catch (e) {
      if (e instanceof ConnectError) throw e;
      // Say which check failed (useful in browser devtools) but never echo the token.
      const reason = e instanceof errors.JWTExpired ? "token expired" : "invalid token";
      throw new ConnectError(reason, Code.Unauthenticated, undefined, undefined, e);
    }
  }

  return (next) => async (req) => {
    if (publicServices.has(req.service.typeName)) return next(req);
    stats.call(req.method.name);
    try {
      req.contextValues.set(authKey, await verify(req.header.get("authorization")));
    } catch (e) {
      stats.unauthenticated();
      throw e;
    }
    return next(req);
  };
}
