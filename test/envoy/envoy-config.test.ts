import { createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { describe, expect, it } from "vitest";
import { parseConfig } from "../../demo/server/config.js";
import { startDemoServer } from "../../demo/server/server.js";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";
import {
  Health,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from "../../gen/grpc/health/v1/health_pb.js";
import { createAuthInterceptor, createTokenSource } from "../../src/index.js";
import {
  arr,
  at,
  clusterOf,
  clustersOf,
  endpointAddressesOf,
  hcmOf,
  httpFilterConfig,
  httpFiltersOf,
  type Json,
  type JsonObject,
  loadEnvoyConfig,
  obj,
  routesOf,
  str,
  virtualHostOf,
} from "./envoy-yaml.js";
import { localReplyFor, localReplyMappersOf } from "./local-reply.js";

const config = loadEnvoyConfig();

const HTTP_PROTOCOL_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
const CORS_POLICY_TYPE = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy";

/** Splits a comma-separated header list such as `allow_headers` into lower-case names. */
function headerList(value: Json | undefined, what: string): string[] {
  return str(value, what)
    .split(",")
    .map((name) => name.trim().toLowerCase())
    .filter((name) => name !== "");
}

function corsPolicy(): JsonObject {
  return obj(
    at(virtualHostOf(config), "typed_per_filter_config", "envoy.filters.http.cors"),
    "CorsPolicy under the virtual host's typed_per_filter_config",
  );
}

/** Duration strings as Envoy's YAML takes them ("10s", "0.5s") to seconds. */
function seconds(value: Json | undefined, what: string): number {
  const match = /^(\d+(?:\.\d+)?)s$/.exec(str(value, what));
  if (!match?.[1]) throw new TypeError(`${what}: expected a duration like "10s", got ${value}`);
  return Number(match[1]);
}

function grpcRoute(): JsonObject {
  const route = routesOf(config).find((r) => at(r, "route", "cluster") === "grpc_backend");
  return obj(route, "route to grpc_backend");
}

function tokenRoutes(): JsonObject[] {
  return routesOf(config).filter((r) => at(r, "route", "cluster") === "token_service");
}

/** Every [path, key] in the tree, to look for fields wherever they hide. */
function* keysIn(node: Json, path = "$"): Generator<[string, string]> {
  if (typeof node !== "object" || node === null) return;
  for (const [key, child] of Object.entries(node)) {
    const childPath = Array.isArray(node) ? `${path}[${key}]` : `${path}.${key}`;
    if (!Array.isArray(node)) yield [path, key];
    yield* keysIn(child, childPath);
  }
}

describe("envoy/envoy.yaml", () => {
  it("binds the admin API to loopback only", () => {
    expect(at(config, "admin", "address", "socket_address")).toEqual({
      address: "127.0.0.1",
      port_value: 9901,
    });
  });

  it("listens on 0.0.0.0:8080 for HTTP/1.1 and HTTP/2 alike", () => {
    const listener = at(config, "static_resources", "listeners", 0);
    expect(at(listener ?? null, "address", "socket_address")).toEqual({
      address: "0.0.0.0",
      port_value: 8080,
    });
    expect(hcmOf(config).codec_type).toBe("AUTO");
  });

  it("runs cors, then jwt_authn, then grpc_web and the Connect bridge, with the router last", () => {
    expect(httpFiltersOf(config).map((f) => f.name)).toEqual([
      "envoy.filters.http.cors",
      "envoy.filters.http.jwt_authn",
      "envoy.filters.http.grpc_web",
      "envoy.filters.http.connect_grpc_bridge",
      "envoy.filters.http.router",
    ]);
  });

  it("gives every HTTP filter its typed config", () => {
    const types = Object.fromEntries(
      httpFiltersOf(config).map((f) => [f.name, at(f, "typed_config", "@type")]),
    );
    expect(types).toEqual({
      "envoy.filters.http.cors": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors",
      "envoy.filters.http.jwt_authn":
        "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
      "envoy.filters.http.grpc_web":
        "type.googleapis.com/envoy.extensions.filters.http.grpc_web.v3.GrpcWeb",
      "envoy.filters.http.connect_grpc_bridge":
        "type.googleapis.com/envoy.extensions.filters.http.connect_grpc_bridge.v3.FilterConfig",
      "envoy.filters.http.router":
        "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
    });
  });

  it("routes only to clusters that exist", () => {
    const names = new Set(clustersOf(config).map((c) => c.name));
    const targets = routesOf(config).map((r) => str(at(r, "route", "cluster"), "route.cluster"));
    expect(targets.length).toBeGreaterThan(0);
    for (const target of targets) expect(names, `cluster ${target}`).toContain(target);
  });

  it("sends /auth/token and the JWKS to token_service with a bounded timeout", () => {
    const routes = tokenRoutes();
    expect(routes.map((r) => at(r, "match"))).toEqual([
      { path: "/auth/token" },
      { path: "/.well-known/jwks.json" },
    ]);
    for (const route of routes) {
      const timeout = seconds(at(route, "route", "timeout"), "token route timeout");
      expect(timeout).toBeGreaterThan(0);
      expect(timeout).toBeLessThanOrEqual(60);
    }
  });

  it("matches the token routes before the catch-all gRPC route", () => {
    const routes = routesOf(config);
    expect(routes.at(-1)).toBe(grpcRoute());
    expect(at(grpcRoute(), "match")).toEqual({ prefix: "/" });
  });

  it("does not cut gRPC streams at 15 s yet honours the client's grpc-timeout", () => {
    const route = grpcRoute();
    expect(at(route, "route", "timeout")).toBe("0s");
    expect(at(route, "route", "max_stream_duration", "grpc_timeout_header_max")).toBeDefined();
    // A `grpc: {}` matcher would not match the CORS preflight (OPTIONS): the browser gets 404.
    expect(at(route, "match", "grpc")).toBeUndefined();
  });

  it("reclaims idle streams after a considered time and has no request timeout that cuts streams", () => {
    const hcm = hcmOf(config);
    const idle = seconds(hcm.stream_idle_timeout, "stream_idle_timeout");
    expect(idle).toBeGreaterThanOrEqual(60);
    expect(idle).toBeLessThanOrEqual(3600);
    if (hcm.request_timeout !== undefined) expect(hcm.request_timeout).toBe("0s");
  });

  it("speaks HTTP/2 with keepalive PINGs to grpc_backend", () => {
    const cluster = clusterOf(config, "grpc_backend");
    const options = obj(
      at(cluster, "typed_extension_protocol_options", HTTP_PROTOCOL_OPTIONS),
      "grpc_backend HttpProtocolOptions",
    );
    expect(options["@type"]).toBe(`type.googleapis.com/${HTTP_PROTOCOL_OPTIONS}`);
    const h2 = obj(
      at(options, "explicit_http_config", "http2_protocol_options"),
      "grpc_backend http2_protocol_options",
    );
    const keepalive = obj(h2.connection_keepalive, "connection_keepalive");
    expect(seconds(keepalive.interval, "keepalive interval")).toBeGreaterThan(0);
    expect(seconds(keepalive.timeout, "keepalive timeout")).toBeGreaterThan(0);
  });

  it("balances grpc_backend round robin over at least two endpoints", () => {
    const cluster = clusterOf(config, "grpc_backend");
    expect(cluster.lb_policy).toBe("ROUND_ROBIN");
    expect(["STRICT_DNS", "STATIC"]).toContain(cluster.type);
    const ports = endpointAddressesOf(cluster).map((a) => a.port_value);
    expect(ports).toEqual([50051, 50052]);
  });

  it("health-checks grpc_backend with the gRPC health protocol", () => {
    const checks = arr(clusterOf(config, "grpc_backend").health_checks, "health_checks");
    expect(checks).toHaveLength(1);
    const check = obj(checks[0], "health check");
    expect(check.grpc_health_check).toBeDefined();
    for (const key of ["timeout", "interval", "unhealthy_threshold", "healthy_threshold"]) {
      expect(check[key], key).toBeDefined();
    }
  });

  it("health-checks a service the demo backend reports SERVING without a token", async () => {
    const grpcCheck = obj(
      at(clusterOf(config, "grpc_backend"), "health_checks", 0, "grpc_health_check"),
      "grpc_health_check",
    );
    // Envoy sends no token with health checks, and asks about service_name ("" by default).
    const service = grpcCheck.service_name === undefined ? "" : str(grpcCheck.service_name, "name");
    const cli = parseConfig(["--behind-envoy", "--grpc-port", "0", "--token-port", "0"], {});
    if (cli.help) throw new Error("unexpected --help");
    const demo = await startDemoServer(cli.options);
    try {
      const health = createClient(Health, createGrpcTransport({ baseUrl: demo.grpcUrl ?? "" }));
      expect((await health.check({ service })).status).toBe(ServingStatus.SERVING);
    } finally {
      await demo.close();
    }
  });

  it("limits grpc_backend with circuit breakers sized for long-lived streams", () => {
    const thresholds = obj(
      at(clusterOf(config, "grpc_backend"), "circuit_breakers", "thresholds", 0),
      "circuit breaker thresholds",
    );
    // Envoy's default max_requests (1024) counts every open stream.
    expect(thresholds.max_requests).toBeGreaterThan(1024);
  });

  it("speaks HTTP/1.1 to token_service and health-checks its JWKS", () => {
    const cluster = clusterOf(config, "token_service");
    const explicit = obj(
      at(
        cluster,
        "typed_extension_protocol_options",
        HTTP_PROTOCOL_OPTIONS,
        "explicit_http_config",
      ),
      "token_service explicit_http_config",
    );
    expect(Object.keys(explicit)).toEqual(["http_protocol_options"]);
    const check = at(cluster, "health_checks", 0);
    expect(at(check ?? null, "http_health_check", "path")).toBe("/.well-known/jwks.json");
    expect(endpointAddressesOf(cluster)).toEqual([{ address: "127.0.0.1", port_value: 8081 }]);
  });

  it("never sets the deprecated cors, text_format or cluster-level HTTP/2 fields", () => {
    for (const [path, key] of keysIn(config)) {
      expect(key, `${path}.${key}`).not.toBe("cors");
      expect(key, `${path}.${key}`).not.toBe("text_format");
    }
    for (const cluster of clustersOf(config)) {
      expect(cluster.http2_protocol_options, String(cluster.name)).toBeUndefined();
      expect(cluster.http_protocol_options, String(cluster.name)).toBeUndefined();
    }
  });

  describe("CORS", () => {
    it("is configured as a CorsPolicy on the virtual host", () => {
      expect(corsPolicy()["@type"]).toBe(CORS_POLICY_TYPE);
    });

    it("allows exact origins only, never a wildcard", () => {
      const matchers = arr(corsPolicy().allow_origin_string_match, "allow_origin_string_match");
      expect(matchers.length).toBeGreaterThan(0);
      for (const matcher of matchers) {
        const m = obj(matcher, "origin matcher");
        expect(Object.keys(m)).toEqual(["exact"]);
        const origin = str(m.exact, "exact origin");
        expect(origin).not.toContain("*");
        expect(new URL(origin).origin).toBe(origin);
      }
    });

    it("allows GET, POST and OPTIONS", () => {
      expect(
        headerList(corsPolicy().allow_methods, "allow_methods").map((m) => m.toUpperCase()),
      ).toEqual(["GET", "POST", "OPTIONS"]);
    });

    it("lets the browser read grpc-status, grpc-message and grpc-status-details-bin", () => {
      expect(headerList(corsPolicy().expose_headers, "expose_headers")).toEqual(
        expect.arrayContaining(["grpc-status", "grpc-message", "grpc-status-details-bin"]),
      );
    });

    it("caches preflights for at most 7200 s", () => {
      const maxAge = Number(str(corsPolicy().max_age, "max_age"));
      expect(maxAge).toBeGreaterThan(0);
      expect(maxAge).toBeLessThanOrEqual(7200);
    });

    it("does not allow credentials, since tokens travel in a header", () => {
      expect(corsPolicy().allow_credentials).toBe(false);
    });

    it("allows the headers grpc-web clients commonly send", () => {
      expect(headerList(corsPolicy().allow_headers, "allow_headers")).toEqual(
        expect.arrayContaining([
          "authorization",
          "content-type",
          "x-grpc-web",
          "x-user-agent",
          "grpc-timeout",
          "connect-protocol-version",
          "connect-timeout-ms",
          "keep-alive",
          "user-agent",
          "cache-control",
          "x-accept-content-transfer-encoding",
          "x-accept-response-streaming",
        ]),
      );
    });
  });

  describe("access log", () => {
    const logs = arr(hcmOf(config).access_log, "access_log").map((l) => obj(l, "access log"));

    it("writes JSON lines to stdout", () => {
      expect(logs).toHaveLength(1);
      const log = obj(logs[0], "access log");
      expect(log.name).toBe("envoy.access_loggers.stdout");
      expect(at(log, "typed_config", "@type")).toBe(
        "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
      );
      expect(at(log, "typed_config", "log_format", "json_format")).toBeDefined();
    });

    it("records method, path, status, gRPC status, duration, upstream host and request id", () => {
      const format = obj(at(logs[0] ?? null, "typed_config", "log_format", "json_format"), "json");
      const values = Object.values(format).map((v) => str(v, "log field"));
      for (const operator of [
        "%REQ(:METHOD)%",
        "%RESPONSE_CODE%",
        "%DURATION%",
        "%UPSTREAM_HOST%",
        "%REQ(X-REQUEST-ID)%",
      ]) {
        expect(values).toContain(operator);
      }
      expect(values.some((v) => /PATH\)%$/.test(v))).toBe(true);
      expect(values.some((v) => v.startsWith("%GRPC_STATUS"))).toBe(true);
    });

    it("never logs the authorization header", () => {
      const text = JSON.stringify(logs).toLowerCase();
      expect(text).not.toContain("authorization");
    });
  });

  describe("jwt_authn", () => {
    const jwt = httpFilterConfig(config, "envoy.filters.http.jwt_authn");
    const provider = obj(at(jwt, "providers", "demo"), "provider demo");

    it("reads the token from the authorization header only and forwards it to the backend", () => {
      expect(provider.from_headers).toEqual([{ name: "authorization", value_prefix: "Bearer " }]);
      expect(provider.from_params).toBeUndefined();
      expect(provider.forward).toBe(true);
    });

    it("names the demo issuer and audience", () => {
      expect(provider.issuer).toBe("grpc-web-auth-demo");
      expect(provider.audiences).toEqual(["grpc-web-auth-demo-api"]);
    });

    it("accepts the issuer and audience of tokens from `npm run server -- --behind-envoy`", async () => {
      const cli = parseConfig(["--behind-envoy", "--grpc-port", "0", "--token-port", "0"], {});
      if (cli.help) throw new Error("unexpected --help");
      const demo = await startDemoServer(cli.options);
      try {
        // A wrong issuer makes jwt_authn answer every call 401, a wrong audience 403.
        expect(provider.issuer).toBe(demo.issuer.issuer);
        expect(provider.audiences).toContain(demo.issuer.audience);
      } finally {
        await demo.close();
      }
    });

    it("fetches and caches the JWKS from token_service at the route Envoy exposes", () => {
      const remote = obj(provider.remote_jwks, "remote_jwks");
      const uri = new URL(str(at(remote, "http_uri", "uri"), "http_uri.uri"));
      expect(uri.pathname).toBe("/.well-known/jwks.json");
      expect(`${uri.hostname}:${uri.port}`).toBe("127.0.0.1:8081");
      expect(at(remote, "http_uri", "cluster")).toBe("token_service");
      expect(seconds(at(remote, "http_uri", "timeout"), "http_uri.timeout")).toBeGreaterThan(0);
      expect(seconds(remote.cache_duration, "cache_duration")).toBeGreaterThan(0);
    });

    it("lets CORS preflights through without a token", () => {
      expect(jwt.bypass_cors_preflight).toBe(true);
    });

    it("exempts exactly the token routes and requires the demo provider everywhere else", () => {
      const rules = arr(jwt.rules, "rules").map((r) => obj(r, "rule"));
      const exempt = rules.filter((r) => r.requires === undefined);
      for (const rule of exempt) expect(rule.requirement_name).toBeUndefined();
      expect(exempt.map((r) => r.match)).toEqual(tokenRoutes().map((r) => r.match));
      // First match wins: the catch-all must come last and require the provider.
      expect(rules.at(-1)).toEqual({ match: { prefix: "/" }, requires: { provider_name: "demo" } });
      expect(rules.slice(0, -1)).toEqual(exempt);
    });
  });
});

describe("local replies (jwt_authn's 401 and 403) to gRPC-Web calls", () => {
  const mappers = localReplyMappersOf(config);
  const JWT_MISSING = { status: 401, body: "Jwt is missing" };
  const WRONG_AUDIENCE = { status: 403, body: "Audiences in Jwt are not allowed" };

  it("has one mapper for 401 and one for 403", () => {
    expect(mappers).toHaveLength(2);
  });

  it.each([
    "application/grpc-web",
    "application/grpc-web+proto",
    "application/grpc-web-text",
    "application/grpc-web-text+proto",
    "Application/gRPC-Web+proto",
  ])(
    "answers a 401 to %s as a trailers-only Unauthenticated: HTTP 200, grpc-status 16, no body",
    (type) => {
      const reply = localReplyFor(config, { ...JWT_MISSING, requestContentType: type });
      expect(reply.status).toBe(200);
      expect(reply.headers["grpc-status"]).toBe("16");
      // Printable ASCII without "%": clients percent-decode grpc-message, Envoy formats on "%".
      expect(reply.headers["grpc-message"]).toMatch(/^[\x20-\x24\x26-\x7e]+$/);
      expect(reply.body).toBe("");
      // A bodiless local reply goes out without a content-type; both gRPC-Web clients accept that.
      expect(reply.headers["content-type"]).toBeUndefined();
    },
  );

  it("answers a 403 (token for another audience) to a gRPC-Web call as PermissionDenied (7)", () => {
    const reply = localReplyFor(config, {
      ...WRONG_AUDIENCE,
      requestContentType: "application/grpc-web+proto",
    });
    expect(reply).toMatchObject({ status: 200, body: "" });
    expect(reply.headers["grpc-status"]).toBe("7");
  });

  it.each([
    ["a Connect unary call (proto)", "application/proto"],
    ["a Connect unary call (JSON) or a token request", "application/json"],
    ["a Connect stream", "application/connect+proto"],
    ["a request without a content-type", undefined],
  ])("leaves the plain 401 and 403 of %s alone", (_what, type) => {
    for (const rejected of [JWT_MISSING, WRONG_AUDIENCE]) {
      const reply = localReplyFor(config, { ...rejected, requestContentType: type });
      expect(reply).toEqual({
        status: rejected.status,
        headers: { "content-type": "text/plain" },
        body: rejected.body,
      });
    }
  });

  it("leaves other local replies to gRPC-Web calls alone", () => {
    for (const status of [400, 404, 413, 429, 503]) {
      const reply = localReplyFor(config, {
        status,
        body: "local reply",
        requestContentType: "application/grpc-web+proto",
      });
      expect(reply.status).toBe(status);
      expect(reply.headers["grpc-status"]).toBeUndefined();
    }
  });

  it("overwrites grpc-status and grpc-message rather than appending a second value", () => {
    for (const mapper of mappers) {
      const options = arr(mapper.headers_to_add, "headers_to_add");
      expect(options.map((o) => at(o, "header", "key"))).toEqual(["grpc-status", "grpc-message"]);
      for (const option of options) {
        expect(at(option, "append_action")).toBe("OVERWRITE_IF_EXISTS_OR_ADD");
      }
    }
  });
});

describe("CORS allow_headers against what the library really sends", () => {
  const allowed = new Set(headerList(corsPolicy().allow_headers, "allow_headers"));
  // CORS-safelisted names need no approval. content-type is not among them: the gRPC-Web and
  // Connect content types are not safelisted values, so it must be in allow_headers.
  const safelisted = new Set(["accept", "accept-language", "content-language"]);

  /**
   * Makes a unary and a server-streaming call with a deadline through `makeTransport` and
   * grpc-web-auth's interceptor, and returns the names of every request header that reached fetch.
   */
  async function sentHeaderNames(
    makeTransport: (options: {
      baseUrl: string;
      fetch: typeof globalThis.fetch;
      interceptors: Interceptor[];
    }) => Transport,
  ): Promise<Set<string>> {
    const names = new Set<string>();
    const recordingFetch: typeof globalThis.fetch = async (_input, init) => {
      for (const name of new Headers(init?.headers).keys()) names.add(name);
      // An answer every protocol reads as an error that is not Unauthenticated: no replay.
      return new Response(null, { status: 404 });
    };
    const tokens = createTokenSource({ fetchToken: async () => "header.payload.sig" });
    const client = createClient(
      DemoService,
      makeTransport({
        baseUrl: "https://api.example.com",
        fetch: recordingFetch,
        interceptors: [createAuthInterceptor(tokens)],
      }),
    );
    await expect(client.whoAmI({}, { timeoutMs: 5_000 })).rejects.toThrow();
    await expect(
      (async () => {
        for await (const _tick of client.ticks({ count: 1 }, { timeoutMs: 5_000 })) {
          // The recorded headers are all that matters.
        }
      })(),
    ).rejects.toThrow();
    return names;
  }

  function notAllowed(names: Set<string>): string[] {
    return [...names].filter((name) => !safelisted.has(name) && !allowed.has(name));
  }

  it("allows every request header of a gRPC-Web call with grpc-web-auth", async () => {
    const names = await sentHeaderNames((options) => createGrpcWebTransport(options));
    // Proves the capture saw the interceptor and the deadline, so the check is not vacuous.
    expect(names).toContain("authorization");
    expect(names).toContain("grpc-timeout");
    expect(names).toContain("content-type");
    expect(notAllowed(names)).toEqual([]);
  });

  it("allows every request header of a Connect call with grpc-web-auth", async () => {
    const names = await sentHeaderNames((options) => createConnectTransport(options));
    expect(names).toContain("authorization");
    expect(names).toContain("connect-timeout-ms");
    expect(names).toContain("content-type");
    expect(notAllowed(names)).toEqual([]);
  });
});
