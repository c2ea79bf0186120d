import type { IncomingMessage, ServerResponse } from "node:http";
import { jwtVerify } from "jose";
import { DpopProofError, type DpopVerifier } from "./dpop-proof.js";
import { readFormBody, sendMethodNotAllowed, sendText } from "./http-io.js";
import { sendOAuthError } from "./oauth-error.js";
import type { PublicUrl } from "./public-url.js";
import type { RefreshTokenStore } from "./refresh-tokens.js";
import type { StatsRecorder } from "./stats.js";
import type { RouteHandler } from "./token-endpoint.js";
import { TOKEN_ALGORITHM, type TokenIssuer } from "./token-issuer.js";

/** Path of the revocation endpoint. */
export const REVOKE_PATH = "/auth/revoke";

/** Options for {@link createRevokeEndpoint}. */
export interface RevokeEndpointOptions {
  issuer: TokenIssuer;
  refreshTokens: RefreshTokenStore;
  stats: StatsRecorder;
  /** The demo's public OAuth client: a request may name it in `client_id`, and no other. */
  clientId: string;
  /** Checks the `DPoP` proof a request revoking a DPoP-bound token must carry. */
  dpop: DpopVerifier;
  /** The URL clients use for this endpoint, which a DPoP proof's `htu` must name. */
  publicUrl: PublicUrl;
}

/**
 * Creates the `POST /auth/revoke` handler (RFC 7009), for a form body
 * `token=…&token_type_hint=refresh_token|access_token`, with `client_id` as a public OAuth client
 * sends it (optional: the JSON login API's clients send none; another client's is 401
 * `invalid_client`). A refresh token revokes its whole family,
 * with the access tokens issued from it; an access token (one of our JWTs) revokes just itself.
 * A token bound to a DPoP key (a bound family, or an access token with `cnf.jkt`) is revoked only
 * with a `DPoP` proof by that key (RFC 9449 §4), as its refresh needs one: the public client has
 * no other authentication. Without it the token is left alone and the answer is the same as for
 * an unknown token. A proof by the key that fails for another reason (its `iat`, a nonce) is
 * answered 400 `invalid_dpop_proof` or `use_dpop_nonce`, as at the token endpoint.
 * Answers 200 with an empty body whether or not the token was known (RFC 7009 §2.2), so the answer
 * says nothing about which tokens exist; 400 `invalid_request` for a body without `token`, 405 for
 * other methods, 413 above 16 KiB.
 */
export function createRevokeEndpoint(options: RevokeEndpointOptions): RouteHandler {
  const { issuer, refreshTokens, stats, clientId, dpop, publicUrl } = options;

  /**
   * Whether the request proves the key `jkt` (true when there is none to prove); "answered" after
   * a 400 for a proof by that key that is refused for another reason.
   */
  async function proves(
    req: IncomingMessage,
    res: ServerResponse,
    jkt: string | undefined,
  ): Promise<boolean | "answered"> {
    if (jkt === undefined) return true;
    const header = req.headers.dpop;
    try {
      await dpop.verify(Array.isArray(header) ? header.join(", ") : header, {
        method: "POST",
        url: publicUrl.ofRequest(req),
        jkt,
      });
      return true;
    } catch (e) {
      if (!(e instanceof DpopProofError)) throw e;
      stats.count(e.code === "use_dpop_nonce" ? "dpopNonceChallenges" : "invalidDpopProofs");
      if (e.withoutKey) return false;
      const nonce = dpop.nonce();
      sendOAuthError(
        res,
        400,
        e.code,
        e.message,
        nonce === undefined ? {} : { "dpop-nonce": nonce },
      );
      return "answered";
    }
  }

  /** Revokes `token`'s refresh-token family if it has one and the request may. */
  async function revokeRefreshToken(
    req: IncomingMessage,
    res: ServerResponse,
    token: string,
  ): Promise<boolean | "answered"> {
    const binding = refreshTokens.bindingOf(token);
    if (binding === undefined) return false;
    const proved = await proves(req, res, binding.jkt);
    return proved === true ? refreshTokens.revokeFamilyOf(token) : proved;
  }

  async function revokeAccessToken(
    req: IncomingMessage,
    res: ServerResponse,
    token: string,
  ): Promise<boolean | "answered"> {
    if (token.split(".").length !== 3) return false;
    try {
      const { payload } = await jwtVerify(token, issuer.publicKey, {
        algorithms: [TOKEN_ALGORITHM],
        issuer: issuer.issuer,
        audience: issuer.audience,
        requiredClaims: ["jti"],
      });
      const jkt = (payload.cnf as { jkt?: unknown } | undefined)?.jkt;
      const proved = await proves(req, res, typeof jkt === "string" ? jkt : undefined);
      if (proved !== true) return proved;
      issuer.revoke([payload.jti as string]);
      return true;
    } catch (e) {
      if (e instanceof DpopProofError) throw e;
      return false; // Not ours, or expired: nothing to revoke.
    }
  }

  return async (req, res) => {
    stats.count("revokeRequests");
    if (req.method !== "POST") return sendMethodNotAllowed(res, ["POST"]);
    const body = await readFormBody(req);
    if (!body.ok && body.problem === "too-large") {
      return sendText(res, 413, "request body too large");
    }
    const named = body.ok ? body.value.client_id : undefined;
    if (named !== undefined && named !== clientId) {
      return sendOAuthError(res, 401, "invalid_client", "client_id names no client of this server");
    }
    const token = body.ok ? body.value.token : undefined;
    if (token === undefined || token === "") {
      return sendOAuthError(
        res,
        400,
        "invalid_request",
        "expected an application/x-www-form-urlencoded body with a token parameter",
      );
    }
    // The hint only decides which kind is tried first (RFC 7009 §2.1).
    const kinds =
      body.ok && body.value.token_type_hint === "access_token"
        ? [revokeAccessToken, revokeRefreshToken]
        : [revokeRefreshToken, revokeAccessToken];
    let revoked: boolean | "answered" = false;
    for (const kind of kinds) {
      revoked = await kind(req, res, token);
      if (revoked !== false) break;
    }
    if (revoked === "answered") return;
    if (revoked) stats.count("revocations");
    res.writeHead(200, { "cache-control": "no-store", "content-length": 0 });
    res.end();
  };
}
