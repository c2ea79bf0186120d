import { sendJson, sendMethodNotAllowed } from "./http-io.js";
import type { RouteHandler } from "./token-endpoint.js";
import type { TokenIssuer } from "./token-issuer.js";

/** Where the public key is published. */
export const JWKS_PATH = "/.well-known/jwks.json";

/**
 * Creates the `GET /.well-known/jwks.json` handler. The key changes on every restart, so
 * caches must revalidate.
 */
export function createJwksEndpoint(issuer: TokenIssuer): RouteHandler {
  return async (req, res) => {
    if (req.method !== "GET" && req.method !== "HEAD") {
      return sendMethodNotAllowed(res, ["GET", "HEAD"]);
    }
    sendJson(res, 200, issuer.jwks(), { "cache-control": "no-cache" });
  };
}
