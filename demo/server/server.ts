import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttp2Server, type Http2Session } from "node:http2";
import type { AddressInfo } from "node:net";
import type { Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";
import { Health } from "../../gen/grpc/health/v1/health_pb.js";
import { createCors, DEFAULT_ALLOWED_ORIGINS } from "./cors.js";
import { createCredentialChecker, DEFAULT_USERS } from "./credentials.js";
import { createDemoService } from "./demo-service.js";
import { createDpopNonces } from "./dpop-nonces.js";
import { createDpopVerifier, type DpopVerifier } from "./dpop-proof.js";
import { createHealthService } from "./health-service.js";
import { pathOf, sendText } from "./http-io.js";
import { createJwksEndpoint, JWKS_PATH } from "./jwks-endpoint.js";
import { DEFAULT_CLIENT_ID } from "./oauth-token-request.js";
import { createPublicUrl, type PublicUrl } from "./public-url.js";
import { createRefreshTokenStore, type RefreshTokenStore } from "./refresh-tokens.js";
import { createRevokeEndpoint, REVOKE_PATH } from "./revoke-endpoint.js";
import { createSignInThrottle, type SignInThrottleOptions } from "./sign-in-throttle.js";
import { createStatsRecorder, type DemoStats, type StatsRecorder } from "./stats.js";
import { createTestRoutes, TEST_ROUTE_PREFIX } from "./test-routes.js";
import { createTokenEndpoint, type RouteHandler } from "./token-endpoint.js";
import { createTokenFaults } from "./token-faults.js";
import { createTokenIssuer, type TokenIssuer } from "./token-issuer.js";
import { createVerifyInterceptor } from "./verify-interceptor.js";

/** Path of the token endpoint. */
export const TOKEN_PATH = "/auth/token";

/** Options for {@link startDemoServer}. */
export interface DemoServerOptions {
  /** Interface to listen on. Default `"127.0.0.1"`. */
  host?: string;
  /** Port of the combined server; 0 picks a free one. Default 8787. Unused with `behindEnvoy`. */
  port?: number;
  /** Lifetime of issued access tokens in seconds, 1–86400. Default 300. */
  tokenTtlSeconds?: number;
  /** Lifetime of each refresh token in seconds, 1–2592000 (30 days). Default 86400 (24 h). */
  refreshTtlSeconds?: number;
  /** Username → password. Default `{ alice: "wonderland", bob: "builder" }`. */
  users?: Readonly<Record<string, string>>;
  /**
   * Origins allowed by CORS, in addition to the Vite dev origins `http://localhost:5173` and
   * `http://127.0.0.1:5173`. Default: none. Unused with `behindEnvoy` (Envoy does CORS).
   */
  allowedOrigins?: readonly string[];
  /** Serve the `/test/` routes and honour `fail_after`. Default false. */
  testMode?: boolean;
  /**
   * Split into a plain gRPC (h2c) server on `grpcPort` and an HTTP/1.1 token server on
   * `tokenPort`, without CORS, for Envoy to front. Default false: one HTTP/1.1 server on `port`
   * serving Connect, gRPC-Web and the token routes.
   */
  behindEnvoy?: boolean;
  /** h2c port of the gRPC server with `behindEnvoy`; 0 picks a free one. Default 50051. */
  grpcPort?: number;
  /** Port of the token server with `behindEnvoy`; 0 picks a free one. Default 8081. */
  tokenPort?: number;
  /**
   * Require a server nonce in every DPoP proof (RFC 9449 §8), at the token endpoint and on RPCs;
   * clients learn it from a `use_dpop_nonce` challenge or any answer's `DPoP-Nonce`. In test mode
   * `POST /test/dpop-nonces` switches it. Default false.
   */
  dpopNonces?: boolean;
  /** Seconds a DPoP nonce stays current (the previous one is accepted as long again). Default 60. */
  dpopNonceRotateSeconds?: number;
  /**
   * The URL clients use to reach this server, such as `https://api.example`, when a proxy sits
   * in between: DPoP proofs name it in `htu`. Default: `http://` + the request's `Host` header.
   */
  publicUrl?: string;
  /**
   * The `client_id` of the demo's public OAuth client: form-encoded (OAuth) token and revocation
   * requests may name it, and no other. Default `"grpc-web-auth-demo"`.
   */
  clientId?: string;
  /** The `iss` claim. Default `"grpc-web-auth-demo"`. */
  jwtIssuer?: string;
  /** The `aud` claim. Default `"grpc-web-auth-demo-api"`. */
  jwtAudience?: string;
  /**
   * Per-account backoff for wrong passwords (see `SignInThrottleOptions`). Default: five free
   * wrong passwords in a row, then a wait of 1 s doubling per wrong password up to 60 s.
   */
  signInThrottle?: SignInThrottleOptions;
}

/** A running demo server. */
export interface DemoServer {
  /** Base URL of the HTTP/1.1 server (combined server, or the token server with `behindEnvoy`). */
  url: string;
  /** Port of that server. */
  port: number;
  /** URL of `POST /auth/token`. */
  tokenUrl: string;
  /** URL of `POST /auth/revoke`. */
  revokeUrl: string;
  /** The `client_id` of the demo's public OAuth client (for OAuth form requests). */
  clientId: string;
  /** URL of `GET /.well-known/jwks.json`. */
  jwksUrl: string;
  /** Base URL of the h2c gRPC server; only with `behindEnvoy`. */
  grpcUrl?: string;
  /** Signs and revokes access tokens; its `publicKey` verifies them. */
  issuer: TokenIssuer;
  /** Issues, rotates and revokes refresh tokens. */
  refreshTokens: RefreshTokenStore;
  /** A snapshot of the counters (same as `GET /test/stats`). */
  stats(): DemoStats;
  /** Revokes every access token issued so far (same as `POST /test/revoke`). */
  revokeAll(): void;
  /** Revokes every refresh token issued so far (same as `POST /test/revoke-refresh`). */
  revokeAllRefreshTokens(): void;
  /** Checks DPoP proofs; `setRequireNonces` switches nonces (same as `POST /test/dpop-nonces`). */
  dpop: DpopVerifier;
  /** Stops listening and ends open connections and streams at once. */
  close(): Promise<void>;
}

/**
 * Starts the demo backend: the DemoService behind a JWT-verifying interceptor, the standard
 * `grpc.health.v1.Health` service (no token needed), the token endpoint, the JWKS and, in test
 * mode, the `/test/` routes.
 *
 * Native gRPC needs HTTP/2, which browsers cannot speak to a server directly; the combined server
 * is HTTP/1.1 (Connect and gRPC-Web). Use `behindEnvoy` for native gRPC over h2c.
 *
 * @example
 * const server = await startDemoServer({ port: 0, testMode: true });
 * const res = await fetch(server.tokenUrl, {
 *   method: "POST",
 *   body: JSON.stringify({ username: "alice", password: "wonderland" }),
 * });
 * await server.close();
 */
export async function startDemoServer(options: DemoServerOptions = {}): Promise<DemoServer> {
  const host = options.host ?? "127.0.0.1";
  const port = checkPort(options.port ?? 8787, "port");
  const grpcPort = checkPort(options.grpcPort ?? 50051, "grpcPort");
  const tokenPort = checkPort(options.tokenPort ?? 8081, "tokenPort");
  const users = new Map(Object.entries(options.users ?? DEFAULT_USERS));
  const allowedOrigins = [...DEFAULT_ALLOWED_ORIGINS, ...(options.allowedOrigins ?? [])];
  const testMode = options.testMode ?? false;
  const behindEnvoy = options.behindEnvoy ?? false;
  const clientId = options.clientId ?? DEFAULT_CLIENT_ID;
  if (host === "") throw new TypeError("host must be a non-empty string");
  if (typeof clientId !== "string" || clientId === "") {
    throw new TypeError("clientId must be a non-empty string");
  }
  if (users.size === 0) throw new TypeError("users must name at least one user");
  for (const origin of allowedOrigins) checkOrigin(origin);

  const issuer = await createTokenIssuer({
    ...(options.jwtIssuer !== undefined && { issuer: options.jwtIssuer }),
    ...(options.jwtAudience !== undefined && { audience: options.jwtAudience }),
    ...(options.tokenTtlSeconds !== undefined && { ttlSeconds: options.tokenTtlSeconds }),
  });
  const refreshTokens = createRefreshTokenStore({
    ...(options.refreshTtlSeconds !== undefined && { ttlSeconds: options.refreshTtlSeconds }),
    // Reuse of a refresh token revokes the access tokens of its family too.
    onFamilyRevoked: (tokenIds) => issuer.revoke(tokenIds),
  });
  const dpop = createDpopVerifier({
    nonces: createDpopNonces({
      ...(options.dpopNonceRotateSeconds !== undefined && {
        rotateSeconds: options.dpopNonceRotateSeconds,
      }),
    }),
    requireNonces: options.dpopNonces ?? false,
  });
  const publicUrl = createPublicUrl(options.publicUrl);
  const stats = createStatsRecorder();
  const throttle = createSignInThrottle(options.signInThrottle);
  const shutdown = new AbortController();
  const faults = testMode ? createTokenFaults() : undefined;

  const tokenRoutes = createTokenRoutes({
    token: createTokenEndpoint({
      issuer,
      refreshTokens,
      checkCredentials: createCredentialChecker(users),
      throttle,
      dpop,
      publicUrl,
      stats,
      clientId,
      ...(faults && { faults }),
      signal: shutdown.signal,
    }),
    revoke: createRevokeEndpoint({ issuer, refreshTokens, stats, clientId, dpop, publicUrl }),
    jwks: createJwksEndpoint(issuer),
    ...(faults && {
      test: createTestRoutes({ issuer, refreshTokens, dpop, faults, stats, throttle }),
    }),
  });
  const rpc = createRpcHandler({
    issuer,
    stats,
    dpop: { verifier: dpop, publicUrl },
    testMode,
    behindEnvoy,
    signal: shutdown.signal,
  });

  const closers: Array<() => Promise<void>> = [];
  const close = async () => {
    shutdown.abort();
    await Promise.all(closers.map((closeOne) => closeOne()));
  };
  try {
    const base = {
      issuer,
      refreshTokens,
      stats: () => stats.snapshot(),
      revokeAll: () => issuer.revokeAll(),
      revokeAllRefreshTokens: () => refreshTokens.revokeAll(),
      dpop,
      clientId,
      close,
    };
    if (behindEnvoy) {
      const grpc = createHttp2Server(rpc);
      closers.push(closeHttp2(grpc, trackSessions(grpc)));
      const grpcBound = await listen(grpc, grpcPort, host);
      const http = createServer((req, res) => tokenRoutes(req, res, notFound));
      closers.push(closeHttp1(http));
      const bound = await listen(http, tokenPort, host);
      return { ...base, ...urls(host, bound), grpcUrl: baseUrl(host, grpcBound) };
    }
    const cors = createCors(allowedOrigins);
    const http = createServer((req, res) => {
      if (!cors(req, res)) tokenRoutes(req, res, rpc);
    });
    closers.push(closeHttp1(http));
    return { ...base, ...urls(host, await listen(http, port, host)) };
  } catch (e) {
    await close();
    throw e;
  }
}

type NodeHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** Routes the token service's paths and hands everything else to `fallback`. */
function createTokenRoutes(handlers: {
  token: RouteHandler;
  revoke: RouteHandler;
  jwks: RouteHandler;
  test?: RouteHandler;
}) {
  const exact = new Map([
    [TOKEN_PATH, handlers.token],
    [REVOKE_PATH, handlers.revoke],
    [JWKS_PATH, handlers.jwks],
  ]);
  return (req: IncomingMessage, res: ServerResponse, fallback: NodeHandler): void => {
    const path = pathOf(req);
    const handler = path.startsWith(TEST_ROUTE_PREFIX) ? handlers.test : exact.get(path);
    if (!handler) {
      fallback(req, res);
      return;
    }
    handler(req, res).catch((e: unknown) => {
      if (req.destroyed || res.destroyed) return; // The client went away mid-request.
      // Only our own errors reach here; they never carry credentials or tokens.
      console.error(`demo server: ${req.method} ${path} failed:`, e);
      if (res.headersSent) res.destroy();
      else sendText(res, 500, "internal error");
    });
  };
}

function createRpcHandler(options: {
  issuer: TokenIssuer;
  stats: StatsRecorder;
  dpop: { verifier: DpopVerifier; publicUrl: PublicUrl };
  testMode: boolean;
  behindEnvoy: boolean;
  signal: AbortSignal;
}) {
  const { issuer, stats, dpop, testMode, behindEnvoy, signal } = options;
  const interceptors: Interceptor[] = [
    createVerifyInterceptor({ issuer, stats, dpop, publicServices: [Health.typeName] }),
  ];
  return connectNodeAdapter({
    routes: (router) => {
      router.service(DemoService, createDemoService({ testMode, stats }));
      router.service(Health, createHealthService([DemoService.typeName]));
    },
    interceptors,
    shutdownSignal: signal,
    // Behind Envoy only native gRPC reaches us; Envoy translates gRPC-Web.
    grpc: true,
    grpcWeb: !behindEnvoy,
    connect: !behindEnvoy,
  });
}

function notFound(_req: IncomingMessage, res: ServerResponse): void {
  sendText(res, 404, "not found");
}

type Listener = Server | ReturnType<typeof createHttp2Server>;

function listen(server: Listener, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function closeHttp1(server: Server): () => Promise<void> {
  return () =>
    new Promise((resolve) => {
      if (!server.listening) return resolve();
      server.close(() => resolve());
      server.closeAllConnections();
    });
}

function trackSessions(server: ReturnType<typeof createHttp2Server>): Set<Http2Session> {
  const sessions = new Set<Http2Session>();
  server.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  return sessions;
}

function closeHttp2(
  server: ReturnType<typeof createHttp2Server>,
  sessions: Set<Http2Session>,
): () => Promise<void> {
  return () =>
    new Promise((resolve) => {
      if (!server.listening) return resolve();
      server.close(() => resolve());
      for (const session of sessions) session.destroy();
    });
}

function baseUrl(host: string, port: number): string {
  return `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
}

function urls(host: string, port: number) {
  const url = baseUrl(host, port);
  return {
    url,
    port,
    tokenUrl: url + TOKEN_PATH,
    revokeUrl: url + REVOKE_PATH,
    jwksUrl: url + JWKS_PATH,
  };
}

function checkPort(port: number, name: string): number {
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new TypeError(`${name} must be an integer from 0 to 65535, got ${port}`);
  }
  return port;
}

function checkOrigin(origin: string): void {
  let parsed: URL | undefined;
  try {
    parsed = new URL(origin);
  } catch {}
  if (parsed?.origin !== origin) {
    throw new TypeError(
      `allowedOrigins must hold origins like "https://app.example", got "${origin}"`,
    );
  }
}
