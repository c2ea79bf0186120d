import type { IncomingMessage, ServerResponse } from "node:http";
import { cors as connectCors } from "@connectrpc/connect";

/** Origins allowed by default: the Vite dev server under both loopback names. */
export const DEFAULT_ALLOWED_ORIGINS: readonly string[] = [
  "http://localhost:5173",
  "http://127.0.0.1:5173",
];

/**
 * Connect's list plus `authorization`, which carries the access token, and `dpop`, which carries
 * the DPoP proof (RFC 9449).
 */
const allowHeaders = unique([...connectCors.allowedHeaders, "Authorization", "DPoP"]).join(", ");
/**
 * Connect's list (grpc-status, grpc-message and grpc-status-details-bin, which grpc-web must read)
 * plus the headers a browser hides from a cross-origin page unless exposed:
 * - `date`: the client compares the token endpoint's clock with its own to judge token expiry;
 * - `dpop-nonce` and `www-authenticate`: a DPoP nonce challenge and the reason for it.
 */
const exposeHeaders = unique([
  ...connectCors.exposedHeaders,
  "Date",
  "DPoP-Nonce",
  "WWW-Authenticate",
]).join(", ");
// Methods are case-sensitive, so they keep their case.
const allowMethods = [...new Set([...connectCors.allowedMethods, "OPTIONS"])].join(", ");

/** Seconds a browser may cache a preflight answer. */
const MAX_AGE_SECONDS = 7200;

/**
 * Adds CORS headers for allowed origins and answers preflights. Returns true when the request was
 * a preflight and has been answered (204), false when the caller should go on routing it.
 */
export type CorsHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

/**
 * Creates the CORS handler. A request from an origin not in `allowedOrigins` gets no CORS headers
 * at all, so the browser refuses to hand the response to the page.
 */
export function createCors(allowedOrigins: readonly string[]): CorsHandler {
  const allowed = new Set(allowedOrigins);
  return (req, res) => {
    res.setHeader("vary", "origin");
    const origin = req.headers.origin;
    const isAllowed = origin !== undefined && allowed.has(origin);
    if (isAllowed) {
      res.setHeader("access-control-allow-origin", origin);
      res.setHeader("access-control-expose-headers", exposeHeaders);
    }
    if (req.method !== "OPTIONS") return false;
    if (isAllowed) {
      res.setHeader("access-control-allow-methods", allowMethods);
      res.setHeader("access-control-allow-headers", allowHeaders);
      res.setHeader("access-control-max-age", String(MAX_AGE_SECONDS));
    }
    res.writeHead(204);
    res.end();
    return true;
  };
}

/** Lowercased and deduplicated header names. */
function unique(names: readonly string[]): string[] {
  return [...new Set(names.map((name) => name.toLowerCase()))];
}
