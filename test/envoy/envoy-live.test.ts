import { spawnSync } from "node:child_process";
import { createServer, request, type Server } from "node:http";
import { createServer as createH2cServer } from "node:http2";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { GrpcWebClientBase, type RpcError } from "grpc-web";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { parseConfig } from "../../demo/server/config.js";
import { DEFAULT_USERS } from "../../demo/server/credentials.js";
import {
  type DemoServer,
  type DemoServerOptions,
  startDemoServer,
} from "../../demo/server/server.js";
import { demoMethods } from "../../demo/shared/grpc-web-methods.js";
import { DemoService, WhoAmIRequestSchema } from "../../gen/demo/v1/demo_pb.js";
import { createGrpcWebInterceptors } from "../../src/grpc-web.js";
import { createAuthInterceptor, createTokenSource } from "../../src/index.js";
import { useXmlHttpRequest } from "../helpers/xhr.js";
import {
  at,
  clusterOf,
  ENVOY_YAML,
  endpointAddressesOf,
  httpFilterConfig,
  type JsonObject,
  loadEnvoyConfig,
  obj,
  routesOf,
  virtualHostOf,
} from "./envoy-yaml.js";
import { passwordTokens } from "./password-tokens.js";
import {
  accessLogEntries,
  finalLogEntryFor,
  findOnPath,
  freePort,
  type LivePorts,
  type RunningEnvoy,
  startEnvoy,
  withPorts,
} from "./start-envoy.js";

const envoyPath = findOnPath("envoy");
const hasEnvoy = envoyPath !== undefined;
if (!hasEnvoy) {
  console.log("envoy not on PATH: skipping live Envoy tests (install envoy to run them)");
}

// Google's grpc-web runtime in Node needs an XMLHttpRequest; xhr2 provides one (test-only global).
useXmlHttpRequest();

const ALLOWED_ORIGIN = "http://localhost:5173";
const [USERNAME, PASSWORD] = Object.entries(DEFAULT_USERS)[0] ?? ["", ""];
/** An empty protobuf message in a gRPC-Web envelope: flag 0, length 0. */
const EMPTY_GRPC_WEB_MESSAGE = new Uint8Array(5);

/**
 * The shipped config with ALLOWED_ORIGIN in its CORS allow-list, as `node envoy/dev-config.mjs`
 * prints it: the shipped file lists production origins only.
 */
function devConfig(): JsonObject {
  const config = loadEnvoyConfig();
  const policy = obj(
    at(virtualHostOf(config), "typed_per_filter_config", "envoy.filters.http.cors"),
    "CorsPolicy",
  );
  policy.allow_origin_string_match = [
    ...((policy.allow_origin_string_match as JsonObject[] | undefined) ?? []),
    { exact: ALLOWED_ORIGIN },
  ];
  return config;
}

/** The per-route config of `filter` on the route whose exact path is `path`. */
function perRouteConfig(config: JsonObject, path: string, filter: string): JsonObject {
  const route = routesOf(config).find((r) => at(r, "match", "path") === path);
  return obj(at(route ?? null, "typed_per_filter_config", filter), `${filter} on ${path}`);
}

/** Starts the demo backend as `npm run server -- --behind-envoy` does. */
async function startBehindEnvoyDemo(extra: DemoServerOptions = {}): Promise<DemoServer> {
  const cli = parseConfig(["--behind-envoy", "--grpc-port", "0", "--token-port", "0"], {});
  if (cli.help) throw new Error("unexpected --help");
  return startDemoServer({ ...cli.options, ...extra });
}

/**
 * Starts the demo backend and Envoy in front of it, on `config` (default: the shipped one) with
 * free ports. `tokenPort` replaces the demo's token port, for a stand-in in front of it.
 */
async function startDemoBehindEnvoy(
  extra: DemoServerOptions = {},
  config: JsonObject = devConfig(),
  tokenPort?: (demo: DemoServer) => number,
): Promise<{ demo: DemoServer; envoy: RunningEnvoy }> {
  const demo = await startBehindEnvoyDemo(extra);
  try {
    const ports: LivePorts = {
      listener: await freePort(),
      admin: await freePort(),
      grpc: Number(new URL(demo.grpcUrl ?? "").port),
      token: tokenPort ? tokenPort(demo) : demo.port,
    };
    return { demo, envoy: await startEnvoy(envoyPath ?? "envoy", config, ports) };
  } catch (e) {
    await demo.close();
    throw e;
  }
}

/** Marks a call for the access log: Envoy logs `x-user-agent` as `client_user_agent`. */
function marked(marker: string): Interceptor {
  return (next) => (req) => {
    req.header.set("x-user-agent", marker);
    return next(req);
  };
}

/** A unique marker for one call's access-log entry. */
function markerFor(what: string): string {
  return `${what}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

/** The code of the error `promise` rejects with, or "resolved". */
async function codeOfCall(promise: Promise<unknown>): Promise<Code | "resolved"> {
  return promise.then(
    () => "resolved" as const,
    (e: unknown) => ConnectError.from(e).code,
  );
}

/**
 * A stand-in for the token service: forwards every request to the demo's token server, except
 * that while `down` it answers the JWKS with 503. Counts the JWKS fetches Envoy makes while down
 * (health checks, user-agent Envoy/HC, are not counted).
 */
async function startFlakyTokenService(target: () => number) {
  let down = false;
  let fetchesWhileDown = 0;
  const server: Server = createServer((req, res) => {
    if (down && req.url === "/.well-known/jwks.json") {
      if (req.headers["user-agent"] !== "Envoy/HC") fetchesWhileDown++;
      res.writeHead(503, { "content-type": "text/plain" }).end("token service down");
      return;
    }
    const upstream = request(
      {
        host: "127.0.0.1",
        port: target(),
        path: req.url,
        method: req.method,
        headers: req.headers,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on("error", () => res.writeHead(502).end());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    goDown() {
      down = true;
    },
    fetchesWhileDown: () => fetchesWhileDown,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A gRPC-Web POST to WhoAmI from the allowed origin, as a browser would send it. */
function rawGrpcWebCall(url: string, headers: Record<string, string> = {}) {
  return fetch(`${url}/demo.v1.DemoService/WhoAmI`, {
    method: "POST",
    headers: {
      origin: ALLOWED_ORIGIN,
      "content-type": "application/grpc-web+proto",
      "x-grpc-web": "1",
      ...headers,
    },
    body: EMPTY_GRPC_WEB_MESSAGE,
  });
}

/** A Connect-protocol unary POST to WhoAmI from the allowed origin. */
function rawConnectCall(url: string, headers: Record<string, string> = {}) {
  return fetch(`${url}/demo.v1.DemoService/WhoAmI`, {
    method: "POST",
    headers: {
      origin: ALLOWED_ORIGIN,
      "content-type": "application/json",
      "connect-protocol-version": "1",
      ...headers,
    },
    body: "{}",
  });
}

describe("the live copy of envoy/envoy.yaml", () => {
  const ports: LivePorts = { listener: 18080, admin: 19901, grpc: 15051, token: 18081 };
  const copy = withPorts(loadEnvoyConfig(), ports);

  it("moves every port and listens on loopback", () => {
    expect(at(copy, "admin", "address", "socket_address")).toEqual({
      address: "127.0.0.1",
      port_value: 19901,
    });
    expect(at(copy, "static_resources", "listeners", 0, "address", "socket_address")).toEqual({
      address: "127.0.0.1",
      port_value: 18080,
    });
    const grpcPorts = endpointAddressesOf(clusterOf(copy, "grpc_backend")).map((a) => a.port_value);
    expect(new Set(grpcPorts)).toEqual(new Set([15051]));
    const tokenPorts = endpointAddressesOf(clusterOf(copy, "token_service")).map(
      (a) => a.port_value,
    );
    expect(tokenPorts).toEqual([18081]);
    const jwt = httpFilterConfig(copy, "envoy.filters.http.jwt_authn");
    expect(at(jwt, "providers", "demo", "remote_jwks", "http_uri", "uri")).toBe(
      "http://127.0.0.1:18081/.well-known/jwks.json",
    );
  });

  it("leaves none of the shipped ports behind", () => {
    const text = stringify(copy);
    for (const port of [8080, 9901, 50051, 50052, 8081]) {
      expect(text).not.toMatch(new RegExp(`\\b${port}\\b`));
    }
  });
});

describe.skipIf(!hasEnvoy)("envoy/envoy.yaml in a live Envoy", () => {
  it("passes envoy --mode validate", () => {
    const result = spawnSync(
      envoyPath ?? "envoy",
      ["--mode", "validate", "-c", ENVOY_YAML, "--disable-hot-restart", "--log-level", "warn"],
      { encoding: "utf8", timeout: 60_000 },
    );
    expect(result.status, `${result.stdout}\n${result.stderr}`).toBe(0);
  });

  describe("in front of the demo backend as `npm run server -- --behind-envoy` starts it", () => {
    let demo: DemoServer;
    let envoy: RunningEnvoy;

    beforeAll(async () => {
      ({ demo, envoy } = await startDemoBehindEnvoy());
    }, 40_000);

    afterAll(async () => {
      await envoy?.close();
      await demo?.close();
    });

    function tokenSource() {
      return passwordTokens(`${envoy.url}/auth/token`, USERNAME, PASSWORD);
    }

    function demoClient(interceptors: Interceptor[]) {
      return createClient(
        DemoService,
        createGrpcWebTransport({ baseUrl: envoy.url, interceptors }),
      );
    }

    /** A token source whose first token jwt_authn rejects; later ones are real. */
    function tokensStartingWithABadOne() {
      const real = tokenSource();
      let fetches = 0;
      const tokens = createTokenSource({
        fetchToken: async () => (fetches++ === 0 ? "not.a-valid.jwt" : real.getToken()),
      });
      return { tokens, fetches: () => fetches };
    }

    it("answers a CORS preflight from an allowed origin itself, without a token", async () => {
      const res = await fetch(`${envoy.url}/demo.v1.DemoService/WhoAmI`, {
        method: "OPTIONS",
        headers: {
          origin: ALLOWED_ORIGIN,
          "access-control-request-method": "POST",
          "access-control-request-headers": "authorization,content-type,grpc-timeout,x-grpc-web",
        },
      });
      expect(res.status, envoy.output()).toBe(200);
      expect(res.headers.get("access-control-allow-origin")).toBe(ALLOWED_ORIGIN);
      expect(res.headers.get("access-control-allow-headers")).toContain("authorization");
      expect(res.headers.get("access-control-max-age")).toBe("7200");
    });

    it("gives no CORS approval to an origin that is not allowed", async () => {
      const res = await fetch(`${envoy.url}/demo.v1.DemoService/WhoAmI`, {
        method: "OPTIONS",
        headers: { origin: "https://evil.example", "access-control-request-method": "POST" },
      });
      expect(res.headers.get("access-control-allow-origin")).toBeNull();
    });

    it("issues a token through /auth/token and serves the JWKS", async () => {
      const token = await tokenSource().getToken();
      expect(token.split(".")).toHaveLength(3);
      const jwks = await fetch(`${envoy.url}/.well-known/jwks.json`);
      expect(jwks.status).toBe(200);
      expect(((await jwks.json()) as { keys: unknown[] }).keys.length).toBeGreaterThan(0);
    });

    it("proxies an authenticated gRPC-Web call to the h2c backend", async () => {
      const client = demoClient([createAuthInterceptor(tokenSource())]);
      const res = await client.whoAmI({}, { timeoutMs: 10_000 });
      expect(res.subject).toBe(USERNAME);
    });

    it("keeps a server stream open past Envoy's default 15 s route timeout", async () => {
      const client = demoClient([createAuthInterceptor(tokenSource())]);
      const seen: number[] = [];
      for await (const tick of client.ticks({ count: 5, intervalMs: 4_000 })) seen.push(tick.n);
      expect(seen, envoy.output()).toEqual([1, 2, 3, 4, 5]);
    }, 40_000);

    it("answers a gRPC-Web call without a token gRPC-shaped: HTTP 200, grpc-status 16, CORS headers", async () => {
      const before = demo.stats();
      const res = await rawGrpcWebCall(envoy.url);
      expect(res.status, envoy.output()).toBe(200);
      expect(res.headers.get("grpc-status")).toBe("16");
      expect(res.headers.get("grpc-message")).toBeTruthy();
      expect(await res.text()).toBe("");
      // Without these the browser would hide the answer, or its grpc-status, from the client.
      expect(res.headers.get("access-control-allow-origin")).toBe(ALLOWED_ORIGIN);
      expect(res.headers.get("access-control-expose-headers")).toContain("grpc-status");
      expect(demo.stats().calls).toEqual(before.calls);
    });

    it("answers a Connect-protocol call without a token with a plain 401 that carries CORS headers", async () => {
      const before = demo.stats();
      const res = await rawConnectCall(envoy.url);
      expect(res.status, envoy.output()).toBe(401);
      expect(res.headers.get("www-authenticate")).toMatch(/^Bearer/);
      expect(res.headers.get("grpc-status")).toBeNull();
      // Without it the browser hides the 401 behind a network error and no refresh happens.
      expect(res.headers.get("access-control-allow-origin")).toBe(ALLOWED_ORIGIN);
      expect(demo.stats().calls).toEqual(before.calls);
    });

    it("leaves the token route's own 401 (bad credentials) untouched", async () => {
      const res = await fetch(`${envoy.url}/auth/token`, {
        method: "POST",
        headers: { origin: ALLOWED_ORIGIN, "content-type": "application/json" },
        body: JSON.stringify({ username: USERNAME, password: "wrong" }),
      });
      expect(res.status).toBe(401);
      expect(res.headers.get("grpc-status")).toBeNull();
    });

    it("surfaces the edge 401 as Code.Unauthenticated in a gRPC-Web client", async () => {
      const error = await demoClient([])
        .whoAmI({})
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(ConnectError.from(error).code).toBe(Code.Unauthenticated);
    });

    it("refreshes the token and replays once after an edge 401, as after a backend one", async () => {
      const { tokens, fetches } = tokensStartingWithABadOne();
      let replays = 0;
      const client = demoClient([createAuthInterceptor(tokens, { onReplay: () => replays++ })]);
      const res = await client.whoAmI({}, { timeoutMs: 10_000 });
      expect(res.subject).toBe(USERNAME);
      expect(replays).toBe(1);
      expect(fetches()).toBe(2);
    });

    it("lets Google's grpc-web runtime replay a unaryCall once after an edge rejection", async () => {
      const { tokens, fetches } = tokensStartingWithABadOne();
      let replays = 0;
      const client = new GrpcWebClientBase({
        format: "binary",
        ...createGrpcWebInterceptors(tokens, { onReplay: () => replays++ }),
      });
      const res = await client.unaryCall(
        `${envoy.url}/demo.v1.DemoService/WhoAmI`,
        create(WhoAmIRequestSchema),
        {},
        demoMethods.whoAmI,
      );
      expect(res.subject).toBe(USERNAME);
      expect(replays).toBe(1);
      expect(fetches()).toBe(2);
    });

    it("carries Connect-protocol calls to the gRPC-only backend: unary JSON and a binary stream", async () => {
      const connect = (useBinaryFormat: boolean) =>
        createClient(
          DemoService,
          createConnectTransport({
            baseUrl: envoy.url,
            useBinaryFormat,
            interceptors: [createAuthInterceptor(tokenSource())],
          }),
        );
      expect((await connect(false).whoAmI({}, { timeoutMs: 10_000 })).subject).toBe(USERNAME);
      const seen: number[] = [];
      for await (const tick of connect(true).ticks({ count: 3 })) seen.push(tick.n);
      expect(seen, envoy.output()).toEqual([1, 2, 3]);
    });

    it("refreshes and replays a Connect-protocol call once after an edge 401", async () => {
      const { tokens } = tokensStartingWithABadOne();
      let replays = 0;
      const client = createClient(
        DemoService,
        createConnectTransport({
          baseUrl: envoy.url,
          interceptors: [createAuthInterceptor(tokens, { onReplay: () => replays++ })],
        }),
      );
      expect((await client.whoAmI({}, { timeoutMs: 10_000 })).subject).toBe(USERNAME);
      expect(replays).toBe(1);
    });

    it("logs the real gRPC status of an OK, an edge-rejected and a backend-rejected gRPC-Web call", async () => {
      const client = (marker: string, interceptors: Interceptor[] = []) =>
        demoClient([marked(marker), ...interceptors]);
      const auth = createAuthInterceptor(tokenSource());
      const ok = markerFor("grpc-web-ok");
      const edge = markerFor("grpc-web-edge");
      const backend = markerFor("grpc-web-backend");
      expect(await codeOfCall(client(ok, [auth]).whoAmI({}, { timeoutMs: 10_000 }))).toBe(
        "resolved",
      );
      expect(await codeOfCall(client(edge).whoAmI({}))).toBe(Code.Unauthenticated);
      // The demo refuses more than 1000 ticks: InvalidArgument from the backend, past the edge.
      const tooMany = (async () => {
        for await (const _tick of client(backend, [auth]).ticks({ count: 1001 })) {
          // Never reached.
        }
      })();
      expect(await codeOfCall(tooMany)).toBe(Code.InvalidArgument);

      expect((await finalLogEntryFor(envoy, ok)).grpc_status).toBe("0");
      expect((await finalLogEntryFor(envoy, edge)).grpc_status).toBe("16");
      expect((await finalLogEntryFor(envoy, backend)).grpc_status).toBe("3");
      // flush_access_log_on_new_request: the call was logged when it started, too.
      const starts = accessLogEntries(envoy.output()).filter((e) => e.client_user_agent === ok);
      expect(starts.map((e) => e.access_log_type)).toContain("DownstreamStart");
    });

    it("logs the real gRPC status of an OK and an edge-rejected Connect-protocol call", async () => {
      const client = (marker: string, interceptors: Interceptor[] = []) =>
        createClient(
          DemoService,
          createConnectTransport({
            baseUrl: envoy.url,
            interceptors: [marked(marker), ...interceptors],
          }),
        );
      const ok = markerFor("connect-ok");
      const edge = markerFor("connect-edge");
      const auth = createAuthInterceptor(tokenSource());
      expect(await codeOfCall(client(ok, [auth]).whoAmI({}, { timeoutMs: 10_000 }))).toBe(
        "resolved",
      );
      expect(await codeOfCall(client(edge).whoAmI({}))).toBe(Code.Unauthenticated);
      expect((await finalLogEntryFor(envoy, ok)).grpc_status).toBe("0");
      const rejected = await finalLogEntryFor(envoy, edge);
      expect(Number(rejected.response_code)).toBe(401);
      expect(rejected.grpc_status).toBe("16");
    });

    it("answers a preflight from an unlisted origin itself, without forwarding it to the backend", async () => {
      const marker = markerFor("foreign-preflight");
      const res = await fetch(`${envoy.url}/demo.v1.DemoService/WhoAmI`, {
        method: "OPTIONS",
        headers: {
          origin: "https://evil.example",
          "access-control-request-method": "POST",
          "x-user-agent": marker,
        },
      });
      expect(res.status, envoy.output()).toBe(200);
      expect(res.headers.get("access-control-allow-origin")).toBeNull();
      const entry = await finalLogEntryFor(envoy, marker);
      expect([null, "-", ""]).toContain(entry.upstream_host);
    });

    it("admits a token sent as authorization: DPoP <token> at the edge, and rejects a bad one there", async () => {
      const token = await tokenSource().getToken();
      const admitted = markerFor("dpop-admitted");
      const res = await rawGrpcWebCall(envoy.url, {
        authorization: `DPoP ${token}`,
        "x-user-agent": admitted,
      });
      expect(res.status, envoy.output()).toBe(200);
      // Forwarded: jwt_authn verified the token and let the call through to the backend, which
      // checks the DPoP binding itself.
      expect(String((await finalLogEntryFor(envoy, admitted)).upstream_host)).toMatch(
        /^127\.0\.0\.1:\d+$/,
      );

      const forged = markerFor("dpop-forged");
      const rejected = await rawGrpcWebCall(envoy.url, {
        authorization: "DPoP not.a-valid.jwt",
        "x-user-agent": forged,
      });
      expect(rejected.headers.get("grpc-status")).toBe("16");
      expect([null, "-", ""]).toContain((await finalLogEntryFor(envoy, forged)).upstream_host);
    });

    it("says Vary: Origin on a proxied answer and on an edge rejection", async () => {
      const client = demoClient([createAuthInterceptor(tokenSource())]);
      let vary: string | null = null;
      await client.whoAmI(
        {},
        {
          timeoutMs: 10_000,
          onHeader: (headers) => {
            vary = headers.get("vary");
          },
        },
      );
      expect(String(vary).toLowerCase(), envoy.output()).toContain("origin");
      const rejected = await rawConnectCall(envoy.url);
      expect(rejected.status).toBe(401);
      expect(rejected.headers.get("vary")?.toLowerCase()).toContain("origin");
    });

    it("lets the browser read a Connect unary call's trailer-dpop-nonce, retry-after and www-authenticate", async () => {
      const res = await rawConnectCall(envoy.url);
      const exposed = (res.headers.get("access-control-expose-headers") ?? "")
        .split(",")
        .map((h) => h.trim().toLowerCase());
      expect(exposed).toEqual(
        expect.arrayContaining([
          "trailer-dpop-nonce",
          "trailer-www-authenticate",
          "retry-after",
          "www-authenticate",
        ]),
      );
    });

    it("does not run the Connect bridge on the token route: a Connect-looking token request stays JSON", async () => {
      const res = await fetch(`${envoy.url}/auth/token`, {
        method: "POST",
        headers: {
          origin: ALLOWED_ORIGIN,
          "content-type": "application/json",
          "connect-protocol-version": "1",
        },
        body: JSON.stringify({ username: USERNAME, password: PASSWORD }),
      });
      expect(res.status, envoy.output()).toBe(200);
      expect(res.headers.get("content-type")).toMatch(/^application\/json/);
      expect(((await res.json()) as { token?: string }).token?.split(".")).toHaveLength(3);
    });

    it("logs the routed path without its query", async () => {
      const marker = markerFor("query");
      const res = await fetch(`${envoy.url}/demo.v1.DemoService/WhoAmI?secret=1`, {
        headers: {
          origin: ALLOWED_ORIGIN,
          "x-user-agent": `${marker}-get`,
          "x-envoy-original-path": "/forged",
        },
      });
      expect(res.status).toBeGreaterThan(0);
      const entry = await finalLogEntryFor(envoy, `${marker}-get`);
      expect(entry.path).toBe("/demo.v1.DemoService/WhoAmI");
    });

    it("sees the backend healthy through grpc.health.v1 health checks", async () => {
      let flags: string[] = [];
      for (let i = 0; i < 50; i++) {
        const text = await (await fetch(`${envoy.adminUrl}/clusters`)).text();
        flags = text
          .split("\n")
          .filter((line) => line.startsWith("grpc_backend::") && line.includes("::health_flags::"))
          .map((line) => line.slice(line.lastIndexOf("::") + 2));
        if (flags.length > 0 && flags.every((f) => f === "healthy")) break;
        await sleep(200);
      }
      expect(flags.length, envoy.output()).toBeGreaterThan(0);
      expect(
        flags.every((f) => f === "healthy"),
        flags.join(", "),
      ).toBe(true);
    });
  });

  describe("when the token service goes down after Envoy fetched its keys", () => {
    let demo: DemoServer;
    let envoy: RunningEnvoy;
    let tokenService: Awaited<ReturnType<typeof startFlakyTokenService>>;
    const CACHE_SECONDS = 2;

    beforeAll(async () => {
      let demoPort = 0;
      tokenService = await startFlakyTokenService(() => demoPort);
      // The shipped config with a short JWKS cache, so a refresh falls inside the outage.
      const config = devConfig();
      const remote = obj(
        at(
          httpFilterConfig(config, "envoy.filters.http.jwt_authn"),
          "providers",
          "demo",
          "remote_jwks",
        ),
        "remote_jwks",
      );
      remote.cache_duration = `${CACHE_SECONDS}s`;
      ({ demo, envoy } = await startDemoBehindEnvoy({}, config, (d) => {
        demoPort = d.port;
        return tokenService.port;
      }));
    }, 40_000);

    afterAll(async () => {
      await envoy?.close();
      await demo?.close();
      await tokenService?.close();
    });

    it("keeps accepting valid tokens with the last good keys while the JWKS cannot be fetched", async () => {
      const tokens = passwordTokens(`${envoy.url}/auth/token`, USERNAME, PASSWORD);
      const client = createClient(
        DemoService,
        createGrpcWebTransport({
          baseUrl: envoy.url,
          interceptors: [createAuthInterceptor(tokens)],
        }),
      );
      expect((await client.whoAmI({}, { timeoutMs: 10_000 })).subject).toBe(USERNAME);

      tokenService.goDown();
      // Wait until Envoy has tried to refresh the keys during the outage, and failed.
      const deadline = Date.now() + (CACHE_SECONDS + 10) * 1000;
      while (tokenService.fetchesWhileDown() === 0 && Date.now() < deadline) await sleep(200);
      expect(tokenService.fetchesWhileDown(), envoy.output()).toBeGreaterThan(0);
      // Past cache_duration now: without async_fetch these calls would fail with JwksFetchFail.
      await sleep(CACHE_SECONDS * 1000);

      for (let i = 0; i < 3; i++) {
        expect((await client.whoAmI({}, { timeoutMs: 10_000 })).subject, envoy.output()).toBe(
          USERNAME,
        );
      }
    }, 60_000);
  });

  describe("in front of a backend whose tokens carry another audience", () => {
    let demo: DemoServer;
    let envoy: RunningEnvoy;

    beforeAll(async () => {
      ({ demo, envoy } = await startDemoBehindEnvoy({ jwtAudience: "some-other-api" }));
    }, 40_000);

    afterAll(async () => {
      await envoy?.close();
      await demo?.close();
    });

    async function token(): Promise<string> {
      return passwordTokens(`${envoy.url}/auth/token`, USERNAME, PASSWORD).getToken();
    }

    it("answers a gRPC-Web call with HTTP 200 and grpc-status 7 (PermissionDenied)", async () => {
      const res = await rawGrpcWebCall(envoy.url, { authorization: `Bearer ${await token()}` });
      expect(res.status, envoy.output()).toBe(200);
      expect(res.headers.get("grpc-status")).toBe("7");
      expect(res.headers.get("access-control-allow-origin")).toBe(ALLOWED_ORIGIN);
    });

    it("answers a Connect-protocol call with a plain 403", async () => {
      const res = await rawConnectCall(envoy.url, { authorization: `Bearer ${await token()}` });
      expect(res.status, envoy.output()).toBe(403);
    });

    it("reaches Google's grpc-web runtime as code 7, without a replay", async () => {
      const tokens = passwordTokens(`${envoy.url}/auth/token`, USERNAME, PASSWORD);
      let replays = 0;
      const client = new GrpcWebClientBase({
        format: "binary",
        ...createGrpcWebInterceptors(tokens, { onReplay: () => replays++ }),
      });
      const error = (await client
        .unaryCall(
          `${envoy.url}/demo.v1.DemoService/WhoAmI`,
          create(WhoAmIRequestSchema),
          {},
          demoMethods.whoAmI,
        )
        .catch((e: RpcError) => e)) as RpcError;
      expect(error.code).toBe(7);
      expect(replays).toBe(0);
    });
  });
  describe("with a small token bucket on /auth/token", () => {
    let demo: DemoServer;
    let envoy: RunningEnvoy;

    beforeAll(async () => {
      const config = devConfig();
      const limit = perRouteConfig(config, "/auth/token", "envoy.filters.http.local_ratelimit");
      limit.token_bucket = { max_tokens: 2, tokens_per_fill: 1, fill_interval: "60s" };
      ({ demo, envoy } = await startDemoBehindEnvoy({}, config));
    }, 40_000);

    afterAll(async () => {
      await envoy?.close();
      await demo?.close();
    });

    it("answers 429 with retry-after and CORS headers past the bucket, and leaves the JWKS alone", async () => {
      const post = () =>
        fetch(`${envoy.url}/auth/token`, {
          method: "POST",
          headers: { origin: ALLOWED_ORIGIN, "content-type": "application/json" },
          body: JSON.stringify({ username: USERNAME, password: PASSWORD }),
        });
      const statuses: number[] = [];
      let limited: Response | undefined;
      for (let i = 0; i < 4; i++) {
        const res = await post();
        statuses.push(res.status);
        if (res.status === 429) limited = res;
      }
      expect(statuses.slice(0, 2), envoy.output()).toEqual([200, 200]);
      expect(limited?.status).toBe(429);
      expect(limited?.headers.get("retry-after")).toBe("1");
      expect(limited?.headers.get("access-control-allow-origin")).toBe(ALLOWED_ORIGIN);
      expect((await fetch(`${envoy.url}/.well-known/jwks.json`)).status).toBe(200);
    });
  });

  describe("in front of a backend that never answers, with a 1 s cap on unary calls", () => {
    let demo: DemoServer;
    let envoy: RunningEnvoy;
    const hung = createH2cServer();

    beforeAll(async () => {
      // Accepts every stream and never answers it.
      hung.on("stream", () => {});
      await new Promise<void>((resolve) => hung.listen(0, "127.0.0.1", resolve));
      demo = await startBehindEnvoyDemo();
      const config = devConfig();
      const unary = routesOf(config).at(-1) ?? {};
      obj(at(unary, "route", "max_stream_duration"), "max_stream_duration").max_stream_duration =
        "1s";
      envoy = await startEnvoy(envoyPath ?? "envoy", config, {
        listener: await freePort(),
        admin: await freePort(),
        grpc: (hung.address() as AddressInfo).port,
        token: demo.port,
      });
    }, 40_000);

    afterAll(async () => {
      await envoy?.close();
      await demo?.close();
      await new Promise<void>((resolve) => hung.close(() => resolve()));
    });

    it("answers a gRPC-Web call without a deadline DeadlineExceeded (grpc-status 4), and logs 4", async () => {
      const token = await passwordTokens(`${envoy.url}/auth/token`, USERNAME, PASSWORD).getToken();
      const marker = markerFor("edge-deadline");
      const res = await rawGrpcWebCall(envoy.url, {
        authorization: `Bearer ${token}`,
        "x-user-agent": marker,
      });
      expect(res.status, envoy.output()).toBe(200);
      expect(res.headers.get("grpc-status")).toBe("4");
      expect(res.headers.get("access-control-allow-origin")).toBe(ALLOWED_ORIGIN);
      expect((await finalLogEntryFor(envoy, marker)).grpc_status).toBe("4");
    }, 20_000);

    it("reaches Connect's gRPC-Web transport as Code.DeadlineExceeded", async () => {
      const tokens = passwordTokens(`${envoy.url}/auth/token`, USERNAME, PASSWORD);
      const client = createClient(
        DemoService,
        createGrpcWebTransport({
          baseUrl: envoy.url,
          interceptors: [createAuthInterceptor(tokens)],
        }),
      );
      expect(await codeOfCall(client.whoAmI({}))).toBe(Code.DeadlineExceeded);
    }, 20_000);
  });
});
