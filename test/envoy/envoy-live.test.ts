import { spawnSync } from "node:child_process";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { parseConfig } from "../../demo/server/config.js";
import { DEFAULT_USERS } from "../../demo/server/credentials.js";
import { type DemoServer, startDemoServer } from "../../demo/server/server.js";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";
import { createAuthInterceptor, createTokenSource } from "../../src/index.js";
import {
  at,
  clusterOf,
  ENVOY_YAML,
  endpointAddressesOf,
  httpFilterConfig,
  loadEnvoyConfig,
} from "./envoy-yaml.js";
import {
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

const ALLOWED_ORIGIN = "http://localhost:5173";
const [USERNAME, PASSWORD] = Object.entries(DEFAULT_USERS)[0] ?? ["", ""];
/** An empty protobuf message in a gRPC-Web envelope: flag 0, length 0. */
const EMPTY_GRPC_WEB_MESSAGE = new Uint8Array(5);

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
      const cli = parseConfig(["--behind-envoy", "--grpc-port", "0", "--token-port", "0"], {});
      if (cli.help) throw new Error("unexpected --help");
      demo = await startDemoServer(cli.options);
      const ports: LivePorts = {
        listener: await freePort(),
        admin: await freePort(),
        grpc: Number(new URL(demo.grpcUrl ?? "").port),
        token: demo.port,
      };
      envoy = await startEnvoy(envoyPath ?? "envoy", loadEnvoyConfig(), ports);
    }, 40_000);

    afterAll(async () => {
      await envoy?.close();
      await demo?.close();
    });

    function tokenSource() {
      return createTokenSource({
        endpoint: `${envoy.url}/auth/token`,
        credentials: { username: USERNAME, password: PASSWORD },
      });
    }

    function demoClient(interceptors: ReturnType<typeof createAuthInterceptor>[]) {
      return createClient(
        DemoService,
        createGrpcWebTransport({ baseUrl: envoy.url, interceptors }),
      );
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

    it("answers a call without a token with an edge 401 that carries CORS headers", async () => {
      const before = demo.stats();
      const res = await fetch(`${envoy.url}/demo.v1.DemoService/WhoAmI`, {
        method: "POST",
        headers: {
          origin: ALLOWED_ORIGIN,
          "content-type": "application/grpc-web+proto",
          "x-grpc-web": "1",
        },
        body: EMPTY_GRPC_WEB_MESSAGE,
      });
      expect(res.status).toBe(401);
      expect(res.headers.get("www-authenticate")).toMatch(/^Bearer/);
      // Without it the browser hides the 401 behind a network error and no refresh happens.
      expect(res.headers.get("access-control-allow-origin")).toBe(ALLOWED_ORIGIN);
      expect(demo.stats().calls).toEqual(before.calls);
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
      const real = tokenSource();
      let fetches = 0;
      const tokens = createTokenSource({
        fetchToken: async () => (fetches++ === 0 ? "not.a-valid.jwt" : real.getToken()),
      });
      let replays = 0;
      const client = demoClient([createAuthInterceptor(tokens, { onReplay: () => replays++ })]);
      const res = await client.whoAmI({}, { timeoutMs: 10_000 });
      expect(res.subject).toBe(USERNAME);
      expect(replays).toBe(1);
      expect(fetches).toBe(2);
    });
  });
});
