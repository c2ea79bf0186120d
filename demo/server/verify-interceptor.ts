import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { errors, jwtVerify } from "jose";
import { authKey } from "./auth-context.js";
import { DpopProofError, type DpopVerifier } from "./dpop-proof.js";
import type { PublicUrl } from "./public-url.js";
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
  /**
   * Checks the `dpop` proof of calls made with `authorization: DPoP <jwt>`, with the URL a client
   * used for the call. Default: none, and every `DPoP` call is refused.
   */
  dpop?: { verifier: DpopVerifier; publicUrl: PublicUrl };
}

/** The claims the verifier reads from a valid token. */
interface VerifiedClaims {
  sub: string;
  exp: number;
  jti: string;
  cnf?: { jkt?: unknown };
}

/**
 * Creates the server-side interceptor that admits only calls with a valid access token: signed by
 * the issuer's key with ES256, within `exp`/`nbf`, with the issuer's `iss` and `aud`, and not
 * revoked, presented as
 *
 * - `authorization: Bearer <jwt>` for a token without `cnf` (a DPoP-bound token is refused here:
 *   without the proof it would be a bearer token again), or
 * - `authorization: DPoP <jwt>` plus a `dpop` proof header (RFC 9449 §7) by the key whose
 *   thumbprint is the token's `cnf.jkt`, with `htm` POST, `htu` the call's URL, and `ath` the
 *   token's hash.
 *
 * Anything else is answered with `Code.Unauthenticated` and a short message without the token;
 * DPoP refusals also carry `www-authenticate: DPoP error="…"` and, for a nonce challenge,
 * `dpop-nonce` in the error's metadata (a response header or trailer, whatever the protocol).
 * On success the claims are put into the {@link authKey} context value. Calls to `publicServices`
 * pass through unchecked.
 */
export function createVerifyInterceptor(options: VerifyInterceptorOptions): Interceptor {
  const { issuer, stats, dpop } = options;
  const publicServices = new Set(options.publicServices ?? []);

  async function verifyToken(token: string): Promise<VerifiedClaims> {
    try {
      const { payload } = await jwtVerify(token, issuer.publicKey, {
        algorithms: [TOKEN_ALGORITHM],
        issuer: issuer.issuer,
        audience: issuer.audience,
        requiredClaims: ["sub", "exp", "iat", "jti"],
      });
      // requiredClaims guarantees presence; jose has already checked the types of exp and iat.
      const claims = payload as unknown as VerifiedClaims;
      if (issuer.isRevoked(claims.jti)) {
        throw new ConnectError("token revoked", Code.Unauthenticated);
      }
      return claims;
    } catch (e) {
      if (e instanceof ConnectError) throw e;
      // Say which check failed (useful in browser devtools) but never echo the token.
      const reason = e instanceof errors.JWTExpired ? "token expired" : "invalid token";
      throw new ConnectError(reason, Code.Unauthenticated, undefined, undefined, e);
    }
  }

  async function verifyProof(
    token: string,
    jkt: string,
    req: Parameters<Parameters<Interceptor>[0]>[0],
  ): Promise<void> {
    if (!dpop) throw dpopError("DPoP is not supported here", "invalid_token");
    try {
      await dpop.verifier.verify(req.header.get("dpop"), {
        method: req.requestMethod,
        url: dpop.publicUrl.ofUrl(req.url),
        accessToken: token,
        jkt,
      });
    } catch (e) {
      if (!(e instanceof DpopProofError)) throw e;
      const nonce = e.code === "use_dpop_nonce" ? dpop.verifier.nonce() : undefined;
      stats.count(nonce !== undefined ? "dpopNonceChallenges" : "invalidDpopProofs");
      throw dpopError(e.message, e.code, nonce, e);
    }
  }

  async function verify(req: Parameters<Parameters<Interceptor>[0]>[0]) {
    const match = /^(Bearer|DPoP) ([^\s]+)$/i.exec(req.header.get("authorization") ?? "");
    const scheme = match?.[1]?.toLowerCase();
    const token = match?.[2];
    if (!token) throw new ConnectError("missing bearer token", Code.Unauthenticated);
    const claims = await verifyToken(token);
    const jkt = typeof claims.cnf?.jkt === "string" ? claims.cnf.jkt : undefined;
    if (scheme === "bearer" && claims.cnf !== undefined) {
      throw dpopError("DPoP-bound token sent as Bearer", "invalid_token");
    }
    if (scheme === "dpop") {
      if (jkt === undefined) throw dpopError("token is not DPoP-bound", "invalid_token");
      await verifyProof(token, jkt, req);
      stats.dpopCall(jkt);
    }
    return { subject: claims.sub, expiresAtUnix: claims.exp, tokenId: claims.jti };
  }

  return (next) => async (req) => {
    if (publicServices.has(req.service.typeName)) return next(req);
    stats.call(req.method.name);
    try {
      req.contextValues.set(authKey, await verify(req));
    } catch (e) {
      stats.unauthenticated();
      throw e;
    }
    const res = await next(req);
    // Hand out the current nonce on success too, so a client can use it before it is demanded.
    const nonce = dpop?.verifier.nonce();
    if (nonce !== undefined) res.header.set("dpop-nonce", nonce);
    return res;
  };
}

/** An Unauthenticated error carrying a DPoP `www-authenticate` challenge (and a nonce). */
function dpopError(
  message: string,
  error: "invalid_token" | "invalid_dpop_proof" | "use_dpop_nonce",
  nonce?: string,
  cause?: unknown,
): ConnectError {
  const metadata = new Headers({
    "www-authenticate": `DPoP error="${error}", error_description="${message}"`,
  });
  if (nonce !== undefined) metadata.set("dpop-nonce", nonce);
  return new ConnectError(message, Code.Unauthenticated, metadata, undefined, cause);
}
