import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair } from "jose";
import type { Configuration, KoaContextWithOIDC, errors as OidcErrors } from "oidc-provider";

/**
 * The demo's OpenID provider: panva's `oidc-provider` configured for the demo's SPA client and
 * API (demo/idp/main.ts serves it; the tests start it through test/helpers/oidc-provider.ts).
 */

/** The one algorithm the provider signs ID tokens and JWT access tokens with. */
const SIGNING_ALG = "ES256";

/** Options for {@link startOidcProvider}. Every one has a default that suits a Node test. */
export interface OidcProviderOptions {
  /** The SPA client's `client_id`. Default `"spa"`. */
  clientId?: string;
  /**
   * The client's registered redirect URIs. The first is where {@link signIn} lands. Default
   * `["http://127.0.0.1/callback"]`: nothing listens there, the code is read from the redirect.
   */
  redirectUris?: readonly string[];
  /**
   * Origins allowed to call the token and revocation endpoints from a browser (clientBasedCORS).
   * Default: none.
   */
  corsOrigins?: readonly string[];
  /** Turns DPoP (RFC 9449) on at the token endpoint. Default true. */
  dpop?: boolean;
  /**
   * Every DPoP proof at the token endpoint must carry a server nonce: the first one is answered
   * `400 use_dpop_nonce` with a `DPoP-Nonce` header. Needs `dpop`. Default false.
   */
  requireDpopNonce?: boolean;
  /** Lifetime of access tokens in seconds (`expires_in`, `exp - iat`). Default 300. */
  accessTokenTtl?: number;
  /** Lifetime of refresh tokens in seconds. Default 86400 (a day). */
  refreshTokenTtl?: number;
  /** Every refresh spends the refresh token and issues a new one. Default true. */
  rotateRefreshToken?: boolean;
  /**
   * The API's resource indicator (RFC 8707): the `aud` of access tokens. Used when a request
   * names none. Default `"urn:grpc-web-auth:api"`.
   */
  resource?: string;
  /** The scope the resource server grants; access tokens carry it. Default `"api"`. */
  resourceScope?: string;
  /** The loopback port to listen on (the demo's identity provider). Default: an ephemeral one. */
  port?: number;
}

/** What the provider did, one entry per event, in order. Never holds a token. */
export type OidcProviderEvent =
  | { type: "token.request"; status: number; grantType: string | undefined }
  | { type: "grant.success"; grantType: string | undefined }
  | {
      type: "grant.error" | "revocation.error" | "server_error";
      /** The OAuth error code, such as `invalid_grant`. */
      error: string;
      /** `error_description` as the client received it; often generic ("grant request is invalid"). */
      description: string | undefined;
      /** The provider's internal reason, never sent to the client ("failed jkt verification"). */
      detail: string | undefined;
    }
  | { type: "grant.revoked" }
  | { type: "refresh_token.consumed" }
  | { type: "revocation.request"; status: number };

/** Counters derived from the events; a snapshot that later events do not change. */
export interface OidcProviderStats {
  /** Requests that reached the token endpoint, whatever their outcome. */
  tokenRequests: number;
  /** Successful token requests per grant type, such as `{ authorization_code: 1 }`. */
  grants: Record<string, number>;
  /** Refused token requests per OAuth error code, such as `{ invalid_grant: 2 }`. */
  tokenErrors: Record<string, number>;
  /** `invalid_grant` answers. */
  invalidGrants: number;
  /** `use_dpop_nonce` challenges at the token endpoint. */
  dpopNonceChallenges: number;
  /**
   * Spent refresh tokens presented again (detail "refresh token already used"); each revoked its
   * grant. The client sees only `invalid_grant`, "grant request is invalid".
   */
  refreshTokenReuse: number;
  /** Refresh tokens spent by rotation. */
  refreshTokensConsumed: number;
  /** Grants revoked, by reuse detection or by revoking a refresh token. */
  grantsRevoked: number;
  /** Requests that reached the revocation endpoint, whatever their outcome. */
  revocationRequests: number;
  /** Revocation requests answered 200. */
  revocations: number;
  /** Refused revocation requests per OAuth error code. */
  revocationErrors: Record<string, number>;
  /** Internal errors of the provider; a test should expect 0. */
  serverErrors: number;
}

/** A running provider. */
export interface OidcProvider {
  /** `http://127.0.0.1:PORT`, the `iss` of its tokens. */
  issuer: string;
  /** The SPA client's `client_id`. */
  clientId: string;
  /** The client's redirect URIs; the first is the one {@link signIn} uses. */
  redirectUris: readonly string[];
  /** The API's resource indicator: the `aud` of access tokens. */
  resource: string;
  /** The scope access tokens for {@link resource} carry. */
  resourceScope: string;
  /** Endpoint URLs. */
  discovery: string;
  authorization: string;
  token: string;
  revocation: string;
  jwks: string;
  /** Whether token endpoint DPoP proofs need a nonce. */
  requireDpopNonce: boolean;
  /** Every event so far, oldest first. */
  events: readonly OidcProviderEvent[];
  /** Counters over {@link events}. */
  stats(): OidcProviderStats;
  /** Forgets the events (and so zeroes the counters); tokens and grants stay valid. */
  reset(): void;
  /** Stops listening and ends open connections. */
  close(): Promise<void>;
}

/**
 * Starts panva's `oidc-provider` (a certified OpenID provider) on a loopback ephemeral port,
 * with one public SPA client (`token_endpoint_auth_method: "none"`, PKCE S256, authorization
 * code + refresh token), ES256 JWT access tokens for one resource, refresh tokens on every
 * sign-in, revocation, DPoP and the dev login and consent forms (any login, any password).
 *
 * @example
 * const provider = await startOidcProvider({ accessTokenTtl: 60 });
 * const tokens = await signIn(provider);
 * await provider.close();
 */
export async function startOidcProvider(options: OidcProviderOptions = {}): Promise<OidcProvider> {
  const clientId = options.clientId ?? "spa";
  const redirectUris = [...(options.redirectUris ?? ["http://127.0.0.1/callback"])];
  const corsOrigins = new Set(options.corsOrigins ?? []);
  const dpop = options.dpop ?? true;
  const requireDpopNonce = options.requireDpopNonce ?? false;
  const accessTokenTtl = options.accessTokenTtl ?? 300;
  const refreshTokenTtl = options.refreshTokenTtl ?? 86_400;
  const rotateRefreshToken = options.rotateRefreshToken ?? true;
  const resource = options.resource ?? "urn:grpc-web-auth:api";
  const resourceScope = options.resourceScope ?? "api";
  if (clientId === "") throw new TypeError("clientId must be a non-empty string");
  if (redirectUris.length === 0) throw new TypeError("redirectUris must name at least one URI");
  if (requireDpopNonce && !dpop) throw new TypeError("requireDpopNonce needs dpop: true");
  for (const [name, ttl] of [
    ["accessTokenTtl", accessTokenTtl],
    ["refreshTokenTtl", refreshTokenTtl],
  ] as const) {
    if (!Number.isSafeInteger(ttl) || ttl < 1) {
      throw new TypeError(`${name} must be a positive integer number of seconds, got ${ttl}`);
    }
  }

  const { privateKey } = await generateKeyPair(SIGNING_ALG, { extractable: true });
  const signingKey = { ...(await exportJWK(privateKey)), alg: SIGNING_ALG, use: "sig", kid: "k1" };

  const configuration: Configuration = {
    clients: [
      {
        client_id: clientId,
        token_endpoint_auth_method: "none",
        grant_types: ["authorization_code", "refresh_token"],
        response_types: ["code"],
        redirect_uris: redirectUris,
        id_token_signed_response_alg: SIGNING_ALG,
      },
    ],
    jwks: { keys: [signingKey] },
    pkce: { required: () => true },
    clientBasedCORS: (_ctx, origin) => corsOrigins.has(origin),
    findAccount: (_ctx, accountId) => ({ accountId, claims: () => ({ sub: accountId }) }),
    // Refresh tokens for every sign-in of a client allowed the grant, offline_access or not.
    issueRefreshToken: (_ctx, client) => client.grantTypeAllowed("refresh_token"),
    rotateRefreshToken,
    ttl: {
      AccessToken: accessTokenTtl,
      AuthorizationCode: 60,
      IdToken: 3600,
      RefreshToken: refreshTokenTtl,
      Interaction: 600,
      Session: 3600,
      Grant: refreshTokenTtl,
    },
    // Errors as JSON, even for HTML requests: tests read them, nobody looks at a page.
    renderError: (ctx, out) => {
      ctx.type = "json";
      ctx.body = out;
    },
    features: {
      devInteractions: { enabled: true },
      revocation: {
        enabled: true,
        allowedPolicy: (_ctx, client, token) => token.clientId === client.clientId,
      },
      dPoP: {
        enabled: dpop,
        ...(requireDpopNonce && { nonceSecret: randomBytes(32), requireNonce: () => true }),
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: (_ctx, _client, oneOf) => oneOf ?? resource,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, indicator) => {
          if (indicator !== resource) throw new InvalidTarget();
          return {
            scope: resourceScope,
            audience: resource,
            accessTokenTTL: accessTokenTtl,
            accessTokenFormat: "jwt",
            jwt: { sign: { alg: SIGNING_ALG } },
          };
        },
      },
    },
  };

  const { Provider, errors } = await quietly(() => import("oidc-provider"));
  const InvalidTarget: typeof OidcErrors.InvalidTarget = errors.InvalidTarget;
  // The issuer must be known before the port is: listen first, construct on the first request.
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, "127.0.0.1", resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const provider = quietly(() => new Provider(issuer, configuration));

  const events: OidcProviderEvent[] = [];
  provider.use(async (ctx, next) => {
    await next();
    const route = (ctx as Partial<KoaContextWithOIDC>).oidc?.route;
    if (ctx.method !== "POST") return;
    if (route === "token" || ctx.path === "/token") {
      const body = (ctx as Partial<KoaContextWithOIDC>).oidc?.params;
      const grantType = typeof body?.grant_type === "string" ? body.grant_type : undefined;
      events.push({ type: "token.request", status: ctx.status, grantType });
    } else if (route === "revocation" || ctx.path === "/token/revocation") {
      events.push({ type: "revocation.request", status: ctx.status });
    }
  });
  const grantTypeOf = (ctx: KoaContextWithOIDC) => {
    const grantType = ctx.oidc?.params?.grant_type;
    return typeof grantType === "string" ? grantType : undefined;
  };
  provider.on("grant.success", (ctx: KoaContextWithOIDC) => {
    events.push({ type: "grant.success", grantType: grantTypeOf(ctx) });
  });
  const refused =
    (type: "grant.error" | "revocation.error" | "server_error") => (_ctx: unknown, err: Error) => {
      const field = (name: string) => {
        const value: unknown = Reflect.get(err, name);
        return typeof value === "string" ? value : undefined;
      };
      events.push({
        type,
        error: field("error") ?? "server_error",
        description: field("error_description"),
        detail: field("error_detail"),
      });
    };
  provider.on("grant.error", refused("grant.error"));
  provider.on("revocation.error", refused("revocation.error"));
  provider.on("server_error", refused("server_error"));
  provider.on("grant.revoked", () => events.push({ type: "grant.revoked" }));
  provider.on("refresh_token.consumed", () => events.push({ type: "refresh_token.consumed" }));

  const callback = quietly(() => provider.callback());
  server.on("request", callback);

  const url = (path: string) => issuer + path;
  return {
    issuer,
    clientId,
    redirectUris,
    resource,
    resourceScope,
    discovery: url("/.well-known/openid-configuration"),
    authorization: url("/auth"),
    token: url("/token"),
    revocation: url("/token/revocation"),
    jwks: url("/jwks"),
    requireDpopNonce,
    events,
    stats: () => statsOf(events),
    reset: () => {
      events.length = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function statsOf(events: readonly OidcProviderEvent[]): OidcProviderStats {
  const stats: OidcProviderStats = {
    tokenRequests: 0,
    grants: {},
    tokenErrors: {},
    invalidGrants: 0,
    dpopNonceChallenges: 0,
    refreshTokenReuse: 0,
    refreshTokensConsumed: 0,
    grantsRevoked: 0,
    revocationRequests: 0,
    revocations: 0,
    revocationErrors: {},
    serverErrors: 0,
  };
  const bump = (counts: Record<string, number>, key: string) => {
    counts[key] = (counts[key] ?? 0) + 1;
  };
  for (const event of events) {
    switch (event.type) {
      case "token.request":
        stats.tokenRequests++;
        break;
      case "grant.success":
        bump(stats.grants, event.grantType ?? "unknown");
        break;
      case "grant.error":
        bump(stats.tokenErrors, event.error);
        if (event.error === "invalid_grant") stats.invalidGrants++;
        if (event.error === "use_dpop_nonce") stats.dpopNonceChallenges++;
        if (event.detail === "refresh token already used") stats.refreshTokenReuse++;
        break;
      case "refresh_token.consumed":
        stats.refreshTokensConsumed++;
        break;
      case "grant.revoked":
        stats.grantsRevoked++;
        break;
      case "revocation.request":
        stats.revocationRequests++;
        if (event.status === 200) stats.revocations++;
        break;
      case "revocation.error":
        bump(stats.revocationErrors, event.error);
        break;
      case "server_error":
        stats.serverErrors++;
        break;
    }
  }
  return stats;
}

/**
 * Runs `fn` with oidc-provider's start-up notices (the Node 22 runtime warning, the development
 * adapter and devInteractions warnings) dropped, so test output stays clean. Only lines that start
 * with `oidc-provider NOTICE:` or `oidc-provider WARNING:` are dropped, and only during `fn`.
 */
function quietly<T>(fn: () => T): T {
  const { warn, info } = console;
  const filter =
    (log: (...args: unknown[]) => void) =>
    (...args: unknown[]) => {
      // A TTY gets the line wrapped in colour codes: look past them.
      if (!/oidc-provider (NOTICE|WARNING):/.test(String(args[0] ?? "").slice(0, 40))) log(...args);
    };
  console.warn = filter(warn);
  console.info = filter(info);
  const restore = () => {
    console.warn = warn;
    console.info = info;
  };
  let result: T;
  try {
    result = fn();
  } catch (e) {
    restore();
    throw e;
  }
  if (result instanceof Promise) return result.finally(restore) as T;
  restore();
  return result;
}
