import { jwtVerify } from "jose";
import { readFormBody, sendMethodNotAllowed, sendText } from "./http-io.js";
import { sendOAuthError } from "./oauth-error.js";
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
}

/**
 * Creates the `POST /auth/revoke` handler (RFC 7009), for a form body
 * `token=…&token_type_hint=refresh_token|access_token`, with `client_id` as a public OAuth client
 * sends it (optional: the JSON login API's clients send none; another client's is 401
 * `invalid_client`). A refresh token revokes its whole family,
 * with the access tokens issued from it; an access token (one of our JWTs) revokes just itself.
 * Answers 200 with an empty body whether or not the token was known (RFC 7009 §2.2), so the answer
 * says nothing about which tokens exist; 400 `invalid_request` for a body without `token`, 405 for
 * other methods, 413 above 16 KiB.
 */
export function createRevokeEndpoint(options: RevokeEndpointOptions): RouteHandler {
  const { issuer, refreshTokens, stats, clientId } = options;

  async function revokeAccessToken(token: string): Promise<boolean> {
    if (token.split(".").length !== 3) return false;
    try {
      const { payload } = await jwtVerify(token, issuer.publicKey, {
        algorithms: [TOKEN_ALGORITHM],
        issuer: issuer.issuer,
        audience: issuer.audience,
        requiredClaims: ["jti"],
      });
      issuer.revoke([payload.jti as string]);
      return true;
    } catch {
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
    const revoked =
      body.ok && body.value.token_type_hint === "access_token"
        ? (await revokeAccessToken(token)) || refreshTokens.revokeFamilyOf(token)
        : refreshTokens.revokeFamilyOf(token) || (await revokeAccessToken(token));
    if (revoked) stats.count("revocations");
    res.writeHead(200, { "cache-control": "no-store", "content-length": 0 });
    res.end();
  };
}
