import { randomBytes } from "node:crypto";
import { createServer as createHttp1Server } from "node:http";
import { createServer as createHttp2Server, type Http2Session } from "node:http2";
import { type AddressInfo, createServer as createTcpServer, type Socket } from "node:net";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { createRemoteJWKSet, decodeJwt, errors, jwtVerify } from "jose";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";
import { authKey } from "../server/auth-context.js";
import { createCors } from "../server/cors.js";
import { createDemoService } from "../server/demo-service.js";
import { createDpopVerifier, DpopProofError } from "../server/dpop-proof.js";
import { createStatsRecorder } from "../server/stats.js";
import type { OidcProvider } from "./provider.js";

/** Options for {@link startResourceServer}. */
export interface ResourceServerOptions {
  /**
   * DPoP proofs must carry the server's current nonce. Every answer carries it in `DPoP-Nonce`;
   * a proof without it is refused with `WWW-Authenticate: DPoP error="use_dpop_nonce"` and the
   * nonce. A nonce stays current until {@link ResourceServer.rotateNonce}. Default false.
   */
  requireNonce?: boolean;
  /** Origins whose browser pages may call the service (CORS). Default: none. */
  corsOrigins?: readonly string[];
  /** How far a proof's `iat` may be from now, either way, in seconds. Default 60. */
  maxProofAgeSeconds?: number;
  /** The loopback port to listen on (the demo's identity provider). Default: an ephemeral one. */
  port?: number;
}

/** Why a call was answered Unauthenticated. */
export type RefusalReason =
  /** No `authorization: Bearer|DPoP <token>` header. */
  | "missing_token"
  /** Not a JWT of the provider for this resource: signature, `iss`, `aud`, `typ` or claims. */
  | "invalid_token"
  /** Past its `exp`. */
  | "expired_token"
  /** Denied by {@link ResourceServer.revokeAccessToken} or {@link ResourceServer.denyTokenId}. */
  | "denied_token"
  /** A DPoP-bound token (`cnf.jkt`) presented as Bearer. */
  | "bound_token_as_bearer"
  /** An unbound token presented with the DPoP scheme. */
  | "unbound_token_as_dpop"
  /** A missing or bad proof: signature, `htm`, `htu`, `ath`, `iat`, reused `jti`, wrong key. */
  | "invalid_dpop_proof"
  /** A good proof without the current nonce (only with `requireNonce`). */
  | "use_dpop_nonce";

/** What the server saw; a snapshot that later calls do not change. */
export interface ResourceServerStats {
  /** Calls per method name (`WhoAmI`, `Ticks`), accepted or not. */
  calls: Record<string, number>;
  /** Calls that passed verification. */
  accepted: number;
  /** Of those, calls made with a DPoP-bound token and a valid proof. */
  dpopAccepted: number;
  /** Unauthenticated answers, all reasons together. */
  unauthenticated: number;
  /** Unauthenticated answers per reason. */
  refused: Partial<Record<RefusalReason, number>>;
}

/** A running resource server. */
export interface ResourceServer {
  /** `http://127.0.0.1:PORT`: Connect and gRPC-Web over HTTP/1.1, gRPC (and both) over h2c. */
  url: string;
  /** A snapshot of the counters. */
  stats(): ResourceServerStats;
  /** Zeroes the counters. */
  resetStats(): void;
  /** The current DPoP nonce, or undefined without `requireNonce`. */
  nonce(): string | undefined;
  /** Makes a new nonce current at once; proofs with the old one are refused from now on. */
  rotateNonce(): string;
  /** Refuses this access token from now on (by its `jti`), as if it had been revoked. */
  revokeAccessToken(token: string): void;
  /** Refuses the access token with this `jti` from now on. */
  denyTokenId(jti: string): void;
  /** Stops listening and ends open connections and streams at once. */
  close(): Promise<void>;
}

/**
 * Starts the demo's `DemoService` (gen/demo/v1) on a loopback ephemeral port, behind a check that
 * admits only access tokens issued by `provider` for `provider.resource`: ES256 JWTs
 * (`typ: at+jwt`) verified against the provider's JWKS, with `iss`, `aud`, `exp`, `iat`, `jti` and
 * `sub`. A DPoP-bound token (`cnf.jkt`) needs `authorization: DPoP <token>` and a proof (RFC 9449
 * §7) by the bound key for `POST` and the call's URL, with `ath`, a fresh `iat` and an unused
 * `jti`; sent as Bearer it is refused. Every refusal is Unauthenticated with a
 * `WWW-Authenticate` challenge (`Bearer` or `DPoP error="…"`) in the error's metadata, which
 * reaches the client as a header or trailer, whatever the protocol. Calls with `fail_after`
 * fail mid-stream as on the demo server in test mode.
 *
 * @example
 * const api = await startResourceServer(provider, { requireNonce: true });
 * const transport = createConnectTransport({ baseUrl: api.url, interceptors });
 */
export async function startResourceServer(
  provider: OidcProvider,
  options: ResourceServerOptions = {},
): Promise<ResourceServer> {
  const requireNonce = options.requireNonce ?? false;
  const corsOrigins = options.corsOrigins ?? [];
  const maxProofAge = options.maxProofAgeSeconds ?? 60;
  for (const origin of corsOrigins) {
    if (URL.parse(origin)?.origin !== origin) {
      throw new TypeError(
        `corsOrigins must hold origins like "http://127.0.0.1:5173", got "${origin}"`,
      );
    }
  }

  let nonce = freshNonce();
  const dpop = createDpopVerifier({
    nonces: { current: () => nonce, isValid: (value) => value === nonce },
    requireNonces: requireNonce,
    maxSkewSeconds: maxProofAge,
  });
  const jwks = createRemoteJWKSet(new URL(provider.jwks));
  const denied = new Set<string>();
  let stats = emptyStats();

  const refuse = (reason: RefusalReason, message: string, challenge: string, cause?: unknown) => {
    stats.unauthenticated++;
    stats.refused[reason] = (stats.refused[reason] ?? 0) + 1;
    const metadata = new Headers({ "www-authenticate": challenge });
    if (reason === "use_dpop_nonce") metadata.set("dpop-nonce", nonce);
    return new ConnectError(message, Code.Unauthenticated, metadata, undefined, cause);
  };
  const bearerChallenge = (error: string, description: string) =>
    `Bearer error="${error}", error_description="${description}"`;
  const dpopChallenge = (error: string, description: string) =>
    `DPoP error="${error}", error_description="${description}", algs="ES256"`;

  const verify: Interceptor = (next) => async (req) => {
    stats.calls[req.method.name] = (stats.calls[req.method.name] ?? 0) + 1;
    const match = /^(Bearer|DPoP) ([^\s]+)$/i.exec(req.header.get("authorization") ?? "");
    const scheme = match?.[1]?.toLowerCase() === "dpop" ? "dpop" : "bearer";
    const token = match?.[2];
    const challenge = scheme === "dpop" ? dpopChallenge : bearerChallenge;
    if (token === undefined) {
      throw refuse("missing_token", "missing access token", 'Bearer, DPoP algs="ES256"');
    }

    let claims: { sub: string; exp: number; jti: string; cnf?: { jkt?: unknown } };
    try {
      const { payload } = await jwtVerify(token, jwks, {
        algorithms: ["ES256"],
        typ: "at+jwt",
        issuer: provider.issuer,
        audience: provider.resource,
        requiredClaims: ["sub", "exp", "iat", "jti"],
      });
      claims = payload as typeof claims;
    } catch (e) {
      if (e instanceof errors.JWTExpired) {
        throw refuse("expired_token", "token expired", challenge("invalid_token", "expired"), e);
      }
      throw refuse("invalid_token", "invalid token", challenge("invalid_token", "invalid"), e);
    }
    if (denied.has(claims.jti)) {
      throw refuse("denied_token", "token revoked", challenge("invalid_token", "revoked"));
    }
    const jkt = typeof claims.cnf?.jkt === "string" ? claims.cnf.jkt : undefined;
    if (scheme === "bearer" && claims.cnf !== undefined) {
      throw refuse(
        "bound_token_as_bearer",
        "DPoP-bound token sent as Bearer",
        dpopChallenge("invalid_token", "DPoP-bound token sent as Bearer"),
      );
    }
    if (scheme === "dpop") {
      if (jkt === undefined) {
        throw refuse(
          "unbound_token_as_dpop",
          "token is not DPoP-bound",
          dpopChallenge("invalid_token", "token is not DPoP-bound"),
        );
      }
      try {
        const url = new URL(req.url);
        await dpop.verify(req.header.get("dpop"), {
          method: req.requestMethod,
          url: url.origin + url.pathname,
          accessToken: token,
          jkt,
        });
      } catch (e) {
        if (!(e instanceof DpopProofError)) throw e;
        throw refuse(e.code, e.message, dpopChallenge(e.code, e.message), e);
      }
    }
    stats.accepted++;
    if (jkt !== undefined) stats.dpopAccepted++;
    req.contextValues.set(authKey, {
      subject: claims.sub,
      expiresAtUnix: claims.exp,
      tokenId: claims.jti,
    });
    const res = await next(req);
    if (requireNonce) res.header.set("dpop-nonce", nonce);
    return res;
  };

  const shutdown = new AbortController();
  const rpc = connectNodeAdapter({
    routes: (router) => {
      router.service(
        DemoService,
        createDemoService({ testMode: true, stats: createStatsRecorder() }),
      );
    },
    interceptors: [verify],
    shutdownSignal: shutdown.signal,
  });
  const cors = createCors(corsOrigins);
  const http1 = createHttp1Server((req, res) => {
    if (!cors(req, res)) rpc(req, res);
  });
  const http2 = createHttp2Server(rpc);
  const sessions = new Set<Http2Session>();
  http2.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  // One port for both: HTTP/2 with prior knowledge (h2c) opens with the preface "PRI * HTTP/2.0".
  const sockets = new Set<Socket>();
  const tcp = createTcpServer((socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.once("data", (head) => {
      socket.pause();
      socket.unshift(head);
      const isHttp2 = head.subarray(0, 3).toString("latin1") === "PRI";
      (isHttp2 ? http2 : http1).emit("connection", socket);
      process.nextTick(() => socket.resume());
    });
  });
  await new Promise<void>((resolve) => tcp.listen(options.port ?? 0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(tcp.address() as AddressInfo).port}`;

  return {
    url,
    stats: () => ({ ...stats, calls: { ...stats.calls }, refused: { ...stats.refused } }),
    resetStats: () => {
      stats = emptyStats();
    },
    nonce: () => (requireNonce ? nonce : undefined),
    rotateNonce: () => {
      nonce = freshNonce();
      return nonce;
    },
    revokeAccessToken(token) {
      const jti = jtiOf(token);
      if (jti === undefined) throw new TypeError("revokeAccessToken needs a JWT with a jti");
      denied.add(jti);
    },
    denyTokenId(jti) {
      denied.add(jti);
    },
    close: () =>
      new Promise<void>((resolve) => {
        shutdown.abort();
        tcp.close(() => resolve());
        for (const session of sessions) session.destroy();
        for (const socket of sockets) socket.destroy();
      }),
  };
}

function emptyStats(): ResourceServerStats {
  return { calls: {}, accepted: 0, dpopAccepted: 0, unauthenticated: 0, refused: {} };
}

function freshNonce(): string {
  return randomBytes(18).toString("base64url");
}

/** The `jti` of a compact JWT, read without verifying it (the token came from the test). */
function jtiOf(token: string): string | undefined {
  try {
    const { jti } = decodeJwt(token);
    return typeof jti === "string" ? jti : undefined;
  } catch {
    return undefined;
  }
}
