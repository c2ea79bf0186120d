import type { ServerResponse } from "node:http";
import type { DpopVerifier } from "./dpop-proof.js";
import {
  isJsonObject,
  pathOf,
  readJsonBody,
  sendJson,
  sendMethodNotAllowed,
  sendText,
} from "./http-io.js";
import { MAX_REFRESH_TTL_SECONDS, type RefreshTokenStore } from "./refresh-tokens.js";
import type { SignInThrottle } from "./sign-in-throttle.js";
import type { StatsRecorder } from "./stats.js";
import type { RouteHandler } from "./token-endpoint.js";
import { parseTokenFault, type TokenFaults } from "./token-faults.js";
import type { TokenIssuer } from "./token-issuer.js";

/** Prefix of every test-mode route; outside test mode nothing is served under it. */
export const TEST_ROUTE_PREFIX = "/test/";

/** Options for {@link createTestRoutes}. */
export interface TestRoutesOptions {
  issuer: TokenIssuer;
  refreshTokens: RefreshTokenStore;
  dpop: DpopVerifier;
  faults: TokenFaults;
  stats: StatsRecorder;
  /** The sign-in backoff, which a reset forgets. */
  throttle: SignInThrottle;
}

/**
 * Creates the handler for the test-mode routes that let browser and Node tests steer the server:
 *
 * - `POST /test/revoke`: revoke every access token issued so far (204).
 * - `POST /test/revoke-refresh`: revoke every refresh token issued so far (204); access tokens
 *   stay valid until they expire.
 * - `POST /test/token-fault`: make the next token requests fail, see `TokenFault` (204).
 * - `POST /test/token-ttl` `{"seconds": n}`: lifetime of future access tokens, 0–86400 (204).
 * - `POST /test/refresh-ttl` `{"seconds": n}`: lifetime of future refresh tokens, 0–2592000 (204).
 * - `POST /test/dpop-nonces` `{"on": boolean}`: start or stop requiring DPoP nonces (204).
 * - `POST /test/reset`: clear faults, stats and the sign-in backoff, restore the configured
 *   lifetimes and nonce setting (204).
 * - `GET /test/stats`: the counters as JSON, see `DemoStats`.
 */
export function createTestRoutes(options: TestRoutesOptions): RouteHandler {
  const { issuer, refreshTokens, dpop, faults, stats, throttle } = options;
  const configuredNonces = dpop.requireNonces();
  const configuredTtl = issuer.ttlSeconds();
  const configuredRefreshTtl = refreshTokens.ttlSeconds();

  /** A route that sets a lifetime from `{"seconds": n}`. */
  const ttlRoute = (set: (seconds: number) => void, max: number) => ({
    method: "POST",
    handle: (async (req, res) => {
      const body = await readJsonBody(req);
      const seconds = body.ok && isJsonObject(body.value) ? body.value.seconds : undefined;
      if (typeof seconds !== "number" || !Number.isInteger(seconds)) {
        return sendText(res, 400, `expected {"seconds": integer from 0 to ${max}}`);
      }
      try {
        set(seconds);
      } catch (e) {
        return sendText(res, 400, e instanceof Error ? e.message : "bad seconds");
      }
      noContent(res);
    }) satisfies RouteHandler,
  });

  const routes: Record<string, { method: string; handle: RouteHandler }> = {
    revoke: {
      method: "POST",
      // `{"future": true}` also revokes every token issued from now on, until reset.
      handle: async (req, res) => {
        const body = await readJsonBody(req);
        const future = body.ok && isJsonObject(body.value) && body.value.future === true;
        issuer.revokeAll();
        if (future) issuer.revokeOnIssue(true);
        noContent(res);
      },
    },
    "token-fault": {
      method: "POST",
      handle: async (req, res) => {
        const body = await readJsonBody(req);
        const fault = body.ok ? parseTokenFault(body.value) : "request body must be JSON";
        if (typeof fault === "string") return sendText(res, 400, fault);
        faults.set(fault);
        noContent(res);
      },
    },
    "revoke-refresh": {
      method: "POST",
      handle: async (_req, res) => {
        refreshTokens.revokeAll();
        noContent(res);
      },
    },
    "token-ttl": ttlRoute((seconds) => issuer.setTtlSeconds(seconds), 86_400),
    "refresh-ttl": ttlRoute(
      (seconds) => refreshTokens.setTtlSeconds(seconds),
      MAX_REFRESH_TTL_SECONDS,
    ),
    "dpop-nonces": {
      method: "POST",
      handle: async (req, res) => {
        const body = await readJsonBody(req);
        const on = body.ok && isJsonObject(body.value) ? body.value.on : undefined;
        if (typeof on !== "boolean") return sendText(res, 400, 'expected {"on": boolean}');
        dpop.setRequireNonces(on);
        noContent(res);
      },
    },
    reset: {
      method: "POST",
      handle: async (_req, res) => {
        faults.clear();
        stats.reset();
        throttle.clear();
        issuer.setTtlSeconds(configuredTtl);
        refreshTokens.setTtlSeconds(configuredRefreshTtl);
        dpop.setRequireNonces(configuredNonces);
        issuer.revokeOnIssue(false);
        noContent(res);
      },
    },
    stats: {
      method: "GET",
      handle: async (_req, res) => {
        sendJson(res, 200, stats.snapshot(), { "cache-control": "no-store" });
      },
    },
  };

  return async (req, res) => {
    const name = pathOf(req).slice(TEST_ROUTE_PREFIX.length);
    const route = Object.hasOwn(routes, name) ? routes[name] : undefined;
    if (!route) return sendText(res, 404, "not found");
    if (req.method !== route.method) return sendMethodNotAllowed(res, [route.method]);
    await route.handle(req, res);
  };
}

function noContent(res: ServerResponse): void {
  res.writeHead(204, { "cache-control": "no-store" });
  res.end();
}
