import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { cors, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { codeFromHttpStatus as connectCodeFromHttpStatus } from "@connectrpc/connect/protocol-connect";
import { codeFromHttpStatus as grpcCodeFromHttpStatus } from "@connectrpc/connect/protocol-grpc";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { parseConfig } from "../../demo/server/config.js";
import { startDemoServer } from "../../demo/server/server.js";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";
import {
  Health,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from "../../gen/grpc/health/v1/health_pb.js";
import { createAuthInterceptor, createTokenSource } from "../../src/index.js";
import { dpopNonceRefusalNames } from "./backend-trailers.js";
import {
  arr,
  at,
  clusterOf,
  clustersOf,
  ENVOY_YAML,
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
const DEV_CONFIG = fileURLToPath(new URL("../../envoy/dev-config.mjs", import.meta.url));
const README = readFileSync(
  fileURLToPath(new URL("../../envoy/README.md", import.meta.url)),
  "utf8",
);

/** Where the Lua filter puts each call's gRPC status and the access log reads it. */
const GRPC_STATUS_KEY = "grpc_web_auth:grpc_status";
const HTTP_PROTOCOL_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
const LOCAL_RATE_LIMIT_TYPE =
  "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit";
const FILTER_CONFIG_TYPE = "type.googleapis.com/envoy.config.route.v3.FilterConfig";
/** The filters that only make sense on calls jwt_authn admitted. */
const GRPC_FILTERS = [
  "envoy.filters.http.grpc_web",
  "envoy.filters.http.connect_grpc_bridge",
  "envoy.filters.http.lua",
];
/** The longest Retry-After the client's default backoff waits for (half its 10 s budget). */
const CLIENT_MAX_RETRY_AFTER_SECONDS = 5;
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

/** Every route to grpc_backend, in match order. */
function grpcRoutes(): JsonObject[] {
  return routesOf(config).filter((r) => at(r, "route", "cluster") === "grpc_backend");
}

/** The catch-all route to grpc_backend: unary calls. */
function grpcRoute(): JsonObject {
  const route = grpcRoutes().find(
    (r) => JSON.stringify(r.match) === JSON.stringify({ prefix: "/" }),
  );
  return obj(route, "catch-all route to grpc_backend");
}

/**
 * The route Envoy picks for a request: the first whose match fits. Models exact `path`, `prefix`
 * and `present_match` header matchers, and throws on anything else rather than guess.
 */
function routeFor(path: string, headers: Record<string, string> = {}): JsonObject {
  const route = routesOf(config).find((r) => {
    const match = obj(r.match, "route match");
    for (const key of Object.keys(match)) {
      if (!["path", "prefix", "headers"].includes(key))
        throw new TypeError(`match.${key} not modelled`);
    }
    if (match.path !== undefined && match.path !== path) return false;
    if (match.prefix !== undefined && !path.startsWith(str(match.prefix, "prefix"))) return false;
    return arr(match.headers ?? [], "match.headers").every((h) => {
      const header = obj(h, "header matcher");
      if (Object.keys(header).sort().join() !== "name,present_match") {
        throw new TypeError(`header matcher ${JSON.stringify(header)} not modelled`);
      }
      return str(header.name, "header name").toLowerCase() in headers === header.present_match;
    });
  });
  return obj(route, `route for ${path}`);
}

/** The HTTP path of every method of the demo service whose kind is `kind`. */
function demoPaths(kind: "unary" | "server_streaming"): string[] {
  return DemoService.methods
    .filter((m) => m.methodKind === kind)
    .map((m) => `/${DemoService.typeName}/${m.name}`);
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

  it("runs cors, the token routes' rate limit, jwt_authn, then grpc_web and the Connect bridge, with the router last", () => {
    expect(httpFiltersOf(config).map((f) => f.name)).toEqual([
      "envoy.filters.http.cors",
      "envoy.filters.http.local_ratelimit",
      "envoy.filters.http.jwt_authn",
      "envoy.filters.http.grpc_web",
      "envoy.filters.http.connect_grpc_bridge",
      "envoy.filters.http.lua",
      "envoy.filters.http.router",
    ]);
  });

  it("gives every HTTP filter its typed config", () => {
    const types = Object.fromEntries(
      httpFiltersOf(config).map((f) => [f.name, at(f, "typed_config", "@type")]),
    );
    expect(types).toEqual({
      "envoy.filters.http.cors": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors",
      "envoy.filters.http.local_ratelimit": LOCAL_RATE_LIMIT_TYPE,
      "envoy.filters.http.jwt_authn":
        "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
      "envoy.filters.http.grpc_web":
        "type.googleapis.com/envoy.extensions.filters.http.grpc_web.v3.GrpcWeb",
      "envoy.filters.http.connect_grpc_bridge":
        "type.googleapis.com/envoy.extensions.filters.http.connect_grpc_bridge.v3.FilterConfig",
      "envoy.filters.http.lua": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
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

  it("sends /auth/token, /auth/revoke and the JWKS to token_service with a bounded timeout", () => {
    const routes = tokenRoutes();
    expect(routes.map((r) => at(r, "match"))).toEqual([
      { path: "/auth/token" },
      { path: "/auth/revoke" },
      { path: "/.well-known/jwks.json" },
    ]);
    for (const route of routes) {
      const timeout = seconds(at(route, "route", "timeout"), "token route timeout");
      expect(timeout).toBeGreaterThan(0);
      expect(timeout).toBeLessThanOrEqual(60);
    }
  });

  it("turns grpc_web, the Connect bridge and the Lua capture off on the token routes, and only there", () => {
    for (const route of routesOf(config)) {
      const isToken = at(route, "route", "cluster") === "token_service";
      for (const name of GRPC_FILTERS) {
        const perRoute = at(route, "typed_per_filter_config", name);
        if (isToken) {
          expect(perRoute, `${name} on ${JSON.stringify(route.match)}`).toEqual({
            "@type": FILTER_CONFIG_TYPE,
            disabled: true,
          });
        } else {
          expect(perRoute, `${name} on ${JSON.stringify(route.match)}`).toBeUndefined();
        }
      }
    }
    // Nor on the virtual host, where it would reach the gRPC routes too.
    for (const name of GRPC_FILTERS) {
      expect(at(virtualHostOf(config), "typed_per_filter_config", name)).toBeUndefined();
    }
    // Token routes are exactly the routes jwt_authn exempts, so the bridge only sees admitted calls.
    expect(tokenRoutes()).toHaveLength(3);
  });

  describe("rate limit on the token endpoint and revocation", () => {
    const limited = ["/auth/token", "/auth/revoke"];

    function limitOf(path: string): JsonObject {
      const route = obj(
        tokenRoutes().find((r) => at(r, "match", "path") === path),
        `route ${path}`,
      );
      return obj(
        at(route, "typed_per_filter_config", "envoy.filters.http.local_ratelimit"),
        `local_ratelimit on ${path}`,
      );
    }

    it("has no bucket in the filter itself, so every other route is unlimited", () => {
      const filter = httpFilterConfig(config, "envoy.filters.http.local_ratelimit");
      expect(filter.token_bucket).toBeUndefined();
      for (const route of routesOf(config)) {
        const path = at(route, "match", "path");
        if (typeof path === "string" && limited.includes(path)) continue;
        expect(
          at(route, "typed_per_filter_config", "envoy.filters.http.local_ratelimit"),
          JSON.stringify(route.match),
        ).toBeUndefined();
      }
    });

    it.each(limited)("limits %s with an enforced token bucket", (path) => {
      const limit = limitOf(path);
      expect(limit["@type"]).toBe(LOCAL_RATE_LIMIT_TYPE);
      const bucket = obj(limit.token_bucket, "token_bucket");
      expect(bucket.max_tokens).toBeGreaterThan(0);
      expect(bucket.tokens_per_fill).toBeGreaterThan(0);
      expect(seconds(bucket.fill_interval, "fill_interval")).toBeGreaterThan(0);
      // Both default to 0 %: without them the filter neither counts nor refuses.
      for (const key of ["filter_enabled", "filter_enforced"]) {
        expect(at(limit, key, "default_value"), key).toEqual({
          numerator: 100,
          denominator: "HUNDRED",
        });
      }
      // 429 by default; the client's backoff retries 429.
      if (limit.status !== undefined) expect(at(limit, "status", "code")).toBe("TooManyRequests");
    });

    it.each(limited)("answers %s's 429 with a retry-after the client honours", (path) => {
      const limit = limitOf(path);
      const headers = arr(limit.response_headers_to_add, "response_headers_to_add");
      const retryAfter = headers.find((h) => at(h, "header", "key") === "retry-after");
      const value = Number(str(at(retryAfter ?? null, "header", "value"), "retry-after"));
      expect(Number.isInteger(value)).toBe(true);
      // Long enough for the bucket to refill, short enough for the client to wait for it.
      const fill = seconds(at(limit, "token_bucket", "fill_interval"), "fill_interval");
      expect(value).toBeGreaterThanOrEqual(fill);
      expect(value).toBeLessThanOrEqual(CLIENT_MAX_RETRY_AFTER_SECONDS);
    });

    it("runs after cors, so a 429 carries CORS headers, and before jwt_authn", () => {
      const names = httpFiltersOf(config).map((f) => f.name);
      const index = names.indexOf("envoy.filters.http.local_ratelimit");
      expect(index).toBeGreaterThan(names.indexOf("envoy.filters.http.cors"));
      expect(index).toBeLessThan(names.indexOf("envoy.filters.http.jwt_authn"));
    });
  });

  it("matches the token routes before the catch-all gRPC route", () => {
    const routes = routesOf(config);
    expect(routes.at(-1)).toBe(grpcRoute());
    expect(at(grpcRoute(), "match")).toEqual({ prefix: "/" });
    for (const route of tokenRoutes()) {
      expect(routes.indexOf(route)).toBeLessThan(routes.indexOf(grpcRoutes()[0] ?? {}));
    }
  });

  it("does not cut gRPC streams at 15 s yet honours the client's grpc-timeout", () => {
    expect(grpcRoutes().length).toBeGreaterThan(0);
    for (const route of grpcRoutes()) {
      expect(at(route, "route", "timeout")).toBe("0s");
      // The client's grpc-timeout is the deadline, never shortened (0s = no cap on the header).
      expect(at(route, "route", "max_stream_duration", "grpc_timeout_header_max")).toBe("0s");
      // A `grpc: {}` matcher would not match the CORS preflight (OPTIONS): the browser gets 404.
      expect(at(route, "match", "grpc")).toBeUndefined();
    }
  });

  it("never caps a server stream, with or without a deadline", () => {
    const streams = demoPaths("server_streaming");
    expect(streams.length).toBeGreaterThan(0);
    for (const path of streams) {
      for (const headers of [{}, { "grpc-timeout": "60S" }, { "connect-timeout-ms": "60000" }]) {
        const route = routeFor(path, headers);
        expect(at(route, "route", "cluster"), path).toBe("grpc_backend");
        expect(at(route, "route", "max_stream_duration", "max_stream_duration"), path).toBe("0s");
      }
    }
  });

  it("caps a unary call without a deadline at a considered time", () => {
    const unary = demoPaths("unary");
    expect(unary.length).toBeGreaterThan(0);
    for (const path of [...unary, "/some.other.v1.Service/Method"]) {
      const route = routeFor(path);
      expect(at(route, "route", "cluster"), path).toBe("grpc_backend");
      const cap = seconds(at(route, "route", "max_stream_duration", "max_stream_duration"), path);
      expect(cap, path).toBeGreaterThan(0);
      // Well under stream_idle_timeout, which held such calls until now.
      expect(cap, path).toBeLessThanOrEqual(60);
      expect(cap).toBeLessThan(seconds(hcmOf(config).stream_idle_timeout, "stream_idle_timeout"));
    }
  });

  it("leaves a unary call with a deadline to that deadline, gRPC-Web and Connect alike", () => {
    for (const path of demoPaths("unary")) {
      // grpc-timeout: Envoy takes the header as the stream's deadline (grpc_timeout_header_max).
      const grpcWeb = routeFor(path, { "grpc-timeout": "60S" });
      expect(at(grpcWeb, "route", "max_stream_duration", "grpc_timeout_header_max")).toBe("0s");
      // connect-timeout-ms becomes grpc-timeout only in the bridge, after Envoy set the deadline:
      // such calls need a route without the cap, or a 60 s deadline would be cut at the cap.
      const connect = routeFor(path, {
        "connect-timeout-ms": "60000",
        "connect-protocol-version": "1",
      });
      expect(at(connect, "route", "max_stream_duration", "max_stream_duration")).toBe("0s");
    }
  });

  it("caps a unary call that carries connect-timeout-ms without being a Connect call", () => {
    for (const path of demoPaths("unary")) {
      // A gRPC-Web call with the header: the bridge would not turn it into a deadline.
      const route = routeFor(path, { "connect-timeout-ms": "600000", "x-grpc-web": "1" });
      const cap = at(route, "route", "max_stream_duration", "max_stream_duration");
      expect(seconds(cap, path)).toBeGreaterThan(0);
    }
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

  describe("edge limits (Envoy's edge best practices)", () => {
    it("caps downstream connections globally with the overload manager", () => {
      const monitors = arr(
        at(config, "overload_manager", "resource_monitors"),
        "resource_monitors",
      );
      const monitor = obj(
        monitors.find(
          (m) => at(m, "name") === "envoy.resource_monitors.global_downstream_max_connections",
        ),
        "global_downstream_max_connections monitor",
      );
      expect(at(monitor, "typed_config", "@type")).toBe(
        "type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig",
      );
      const max = at(monitor, "typed_config", "max_active_downstream_connections");
      expect(typeof max).toBe("number");
      expect(max).toBeGreaterThan(0);
    });

    it("watches the heap and stops accepting requests before Envoy runs out of memory", () => {
      const monitors = arr(
        at(config, "overload_manager", "resource_monitors"),
        "resource_monitors",
      );
      const heap = obj(
        monitors.find((m) => at(m, "name") === "envoy.resource_monitors.fixed_heap"),
        "fixed_heap monitor",
      );
      expect(at(heap, "typed_config", "@type")).toBe(
        "type.googleapis.com/envoy.extensions.resource_monitors.fixed_heap.v3.FixedHeapConfig",
      );
      expect(at(heap, "typed_config", "max_heap_size_bytes")).toBeGreaterThan(0);
      const actions = arr(at(config, "overload_manager", "actions"), "overload actions");
      const thresholds = Object.fromEntries(
        actions.map((a) => [
          at(a, "name"),
          at(a, "triggers", 0, "name") === "envoy.resource_monitors.fixed_heap"
            ? at(a, "triggers", 0, "threshold", "value")
            : undefined,
        ]),
      );
      const stop = Number(thresholds["envoy.overload_actions.stop_accepting_requests"]);
      expect(stop).toBeGreaterThan(0.5);
      expect(stop).toBeLessThan(1);
      expect(Number(thresholds["envoy.overload_actions.shrink_heap"])).toBeLessThan(stop);
    });

    it("limits every connection's buffer to 32 KiB, on the listener and on each cluster", () => {
      const listener = at(config, "static_resources", "listeners", 0);
      expect(at(listener ?? null, "per_connection_buffer_limit_bytes")).toBe(32768);
      for (const cluster of clustersOf(config)) {
        expect(cluster.per_connection_buffer_limit_bytes, String(cluster.name)).toBe(32768);
      }
    });
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

    it("lists only production (https) origins; the dev server's come from envoy/dev-config.mjs", () => {
      const origins = arr(corsPolicy().allow_origin_string_match, "origins").map((m) =>
        str(at(m, "exact"), "exact origin"),
      );
      for (const origin of origins) expect(new URL(origin).protocol, origin).toBe("https:");
      const result = spawnSync(process.execPath, [DEV_CONFIG], { encoding: "utf8" });
      expect(result.status, result.stderr).toBe(0);
      const dev = obj(parse(result.stdout) as Json, "dev config");
      const devPolicy = obj(
        at(virtualHostOf(dev), "typed_per_filter_config", "envoy.filters.http.cors"),
        "dev CorsPolicy",
      );
      expect(devPolicy.allow_origin_string_match).toEqual([
        ...arr(corsPolicy().allow_origin_string_match, "origins"),
        { exact: "http://localhost:5173" },
        { exact: "http://127.0.0.1:5173" },
      ]);
      // Nothing else differs from the shipped file.
      devPolicy.allow_origin_string_match = corsPolicy().allow_origin_string_match ?? null;
      expect(dev).toEqual(config);
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

    it("adds Vary: Origin to every answer, local replies included, keeping a backend's Vary", () => {
      const headers = arr(virtualHostOf(config).response_headers_to_add, "response_headers_to_add");
      const vary = headers.filter(
        (h) => str(at(h, "header", "key"), "key").toLowerCase() === "vary",
      );
      expect(vary).toEqual([
        { header: { key: "vary", value: "origin" }, append_action: "APPEND_IF_EXISTS_OR_ADD" },
      ]);
      // No route removes it again.
      for (const route of routesOf(config)) {
        expect(JSON.stringify(route.response_headers_to_remove ?? [])).not.toMatch(/vary/i);
      }
    });

    it("caches preflights for at most 7200 s", () => {
      const maxAge = Number(str(corsPolicy().max_age, "max_age"));
      expect(maxAge).toBeGreaterThan(0);
      expect(maxAge).toBeLessThanOrEqual(7200);
    });

    it("does not allow credentials, since tokens travel in a header", () => {
      expect(corsPolicy().allow_credentials).toBe(false);
    });

    it("answers preflights from unlisted origins itself instead of forwarding them", () => {
      // The default (true) sends them past jwt_authn (bypass_cors_preflight) to the backend.
      expect(corsPolicy().forward_not_matching_preflights).toBe(false);
    });

    it("allows every header Connect's cors.allowedHeaders lists, plus authorization and dpop", () => {
      const expected = [
        ...cors.allowedHeaders.map((h) => h.toLowerCase()),
        "authorization",
        "dpop",
      ];
      expect(expected.length).toBeGreaterThan(2);
      expect(headerList(corsPolicy().allow_headers, "allow_headers")).toEqual(
        expect.arrayContaining(expected),
      );
    });

    it("exposes every header Connect's cors.exposedHeaders lists, plus those the client reads", () => {
      const expected = [
        ...cors.exposedHeaders.map((h) => h.toLowerCase()),
        "dpop-nonce",
        "date",
        // The token endpoint's (and the edge's 429's) backoff hint.
        "retry-after",
        // The DPoP challenge (use_dpop_nonce) and its reason.
        "www-authenticate",
      ];
      expect(expected.length).toBeGreaterThan(2);
      expect(headerList(corsPolicy().expose_headers, "expose_headers")).toEqual(
        expect.arrayContaining(expected),
      );
    });

    it("lets a Connect unary call read every trailer the backend sends with a DPoP nonce challenge", async () => {
      // For Connect unary calls the bridge turns each gRPC trailer (but grpc-*) into a
      // trailer-<name> header; browsers hide it cross-origin unless it is exposed.
      const { trailers } = await dpopNonceRefusalNames();
      const needed = trailers
        .filter((name) => !name.startsWith("grpc-"))
        .map((name) => `trailer-${name.toLowerCase()}`);
      // Proves the capture saw the challenge, so the check is not vacuous.
      expect(needed).toContain("trailer-dpop-nonce");
      expect(headerList(corsPolicy().expose_headers, "expose_headers")).toEqual(
        expect.arrayContaining(needed),
      );
    });

    it("allows GET and POST, the methods Connect's cors.allowedMethods lists", () => {
      const methods = headerList(corsPolicy().allow_methods, "allow_methods").map((m) =>
        m.toUpperCase(),
      );
      expect(methods).toEqual(expect.arrayContaining([...cors.allowedMethods]));
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
      // The routed path without the query, never the forgeable x-envoy-original-path.
      expect(format.path).toBe("%REQ_WITHOUT_QUERY(:PATH)%");
      expect(JSON.stringify(config).toLowerCase()).not.toContain("x-envoy-original-path");
      expect(at(logs[0] ?? null, "typed_config", "log_format", "formatters")).toEqual([
        {
          name: "envoy.formatter.req_without_query",
          typed_config: {
            "@type":
              "type.googleapis.com/envoy.extensions.formatter.req_without_query.v3.ReqWithoutQuery",
          },
        },
      ]);
      expect(values).toContain(`%DYNAMIC_METADATA(${GRPC_STATUS_KEY})%`);
      expect(values).toContain("%ACCESS_LOG_TYPE%");
    });

    it("does not log %GRPC_STATUS%, which reads UNKNOWN or - for gRPC-Web and Connect calls", () => {
      // grpc_web and connect_grpc_bridge clear the upstream trailers it would read.
      expect(JSON.stringify(logs)).not.toContain("%GRPC_STATUS");
    });

    it("logs a call when it starts and periodically while it is open, not only when it ends", () => {
      const options = obj(hcmOf(config).access_log_options, "access_log_options");
      expect(options.flush_access_log_on_new_request).toBe(true);
      const interval = seconds(options.access_log_flush_interval, "access_log_flush_interval");
      expect(interval).toBeGreaterThan(0);
      // More often than stream_idle_timeout, so every stream that is still open shows up.
      expect(interval).toBeLessThan(seconds(hcmOf(config).stream_idle_timeout, "idle"));
      // The deprecated HCM-level fields are not used.
      expect(hcmOf(config).access_log_flush_interval).toBeUndefined();
      expect(hcmOf(config).flush_access_log_on_new_request).toBeUndefined();
    });

    it("never logs the authorization header or the DPoP proof", () => {
      const text = JSON.stringify(logs).toLowerCase();
      expect(text).not.toContain("authorization");
      expect(text).not.toContain("dpop");
    });
  });

  describe("gRPC status capture (Lua) for the access log", () => {
    const lua = httpFilterConfig(config, "envoy.filters.http.lua");
    const script = str(at(lua, "default_source_code", "inline_string"), "Lua inline_string");
    const [namespace, key] = GRPC_STATUS_KEY.split(":");

    it("runs next to the router, after grpc_web and the Connect bridge in the chain", () => {
      // Encoders run in reverse order: here it sees the trailers before either filter clears them.
      const names = httpFiltersOf(config).map((f) => f.name);
      expect(names.indexOf("envoy.filters.http.lua")).toBe(names.length - 2);
      expect(names.indexOf("envoy.filters.http.lua")).toBeGreaterThan(
        names.indexOf("envoy.filters.http.grpc_web"),
      );
      expect(names.indexOf("envoy.filters.http.lua")).toBeGreaterThan(
        names.indexOf("envoy.filters.http.connect_grpc_bridge"),
      );
    });

    it("sets exactly the dynamic metadata the access log reads", () => {
      expect(script).toContain(`dynamicMetadata():set("${namespace}", "${key}", status)`);
    });

    it("hooks responses only, streams the body through and reads the trailers", () => {
      expect(script).toContain("function envoy_on_response(handle)");
      expect(script).not.toContain("envoy_on_request");
      expect(script).toContain("handle:bodyChunks()");
      expect(script).toContain("handle:trailers()");
      // body() would buffer a whole server stream.
      expect(script).not.toMatch(/handle:body\(/);
    });

    it("maps plain HTTP errors to the codes Connect and gRPC clients derive from them", () => {
      const table = Object.fromEntries(
        [...script.matchAll(/\["(\d{3})"\] = "(\d+)"/g)].map((m) => [m[1], Number(m[2])]),
      );
      expect(Object.keys(table).length).toBeGreaterThan(0);
      for (let status = 300; status < 600; status++) {
        const expected = connectCodeFromHttpStatus(status);
        expect(grpcCodeFromHttpStatus(status), `HTTP ${status}`).toBe(expected);
        // Statuses missing from the table fall back to "2" (Unknown).
        expect(table[String(status)] ?? 2, `HTTP ${status}`).toBe(expected);
      }
      expect(script).toContain('HTTP_TO_GRPC[http_status] or "2"');
    });

    it("runs on every route to the gRPC backend and on no other", () => {
      for (const route of routesOf(config)) {
        const flag = at(
          route,
          "metadata",
          "filter_metadata",
          "envoy.filters.http.lua",
          "grpc_route",
        );
        const isGrpc = at(route, "route", "cluster") === "grpc_backend";
        expect(flag === true, JSON.stringify(route.match)).toBe(isGrpc);
      }
      expect(script).toContain('handle:metadata():get("grpc_route") ~= true');
    });
  });

  describe("jwt_authn", () => {
    const jwt = httpFilterConfig(config, "envoy.filters.http.jwt_authn");
    const provider = obj(at(jwt, "providers", "demo"), "provider demo");

    it("reads the token from the authorization header only and forwards it to the backend", () => {
      expect(provider.from_headers).toEqual([
        { name: "authorization", value_prefix: "Bearer " },
        { name: "authorization", value_prefix: "DPoP " },
      ]);
      expect(provider.from_params).toBeUndefined();
      expect(provider.from_cookies).toBeUndefined();
      expect(provider.forward).toBe(true);
    });

    it("verifies DPoP-bound tokens (authorization: DPoP <token>) at the edge too", () => {
      const prefixes = arr(provider.from_headers, "from_headers").map((h) => at(h, "value_prefix"));
      expect(prefixes).toContain("DPoP ");
      // The dpop proof header reaches the backend (nothing strips it), which checks the binding.
      expect(JSON.stringify(config)).not.toMatch(/request_headers_to_remove[^\]]*dpop/i);
    });

    it("refreshes the JWKS in the background and keeps the last good keys when a refresh fails", () => {
      const remote = obj(provider.remote_jwks, "remote_jwks");
      const asyncFetch = obj(remote.async_fetch, "remote_jwks.async_fetch");
      // false: the listener waits for the first fetch, so the first calls do not fail.
      expect(asyncFetch.fast_listener).toBe(false);
      const refetch = seconds(asyncFetch.failed_refetch_duration, "failed_refetch_duration");
      expect(refetch).toBeGreaterThan(0);
      expect(refetch).toBeLessThan(seconds(remote.cache_duration, "cache_duration"));
    });

    it("retries a failed JWKS fetch a bounded number of times with back-off", () => {
      const retry = obj(at(provider, "remote_jwks", "retry_policy"), "remote_jwks.retry_policy");
      expect(retry.num_retries).toBeGreaterThan(0);
      expect(retry.num_retries).toBeLessThanOrEqual(5);
      const backOff = obj(retry.retry_back_off, "retry_back_off");
      expect(seconds(backOff.base_interval, "base_interval")).toBeGreaterThan(0);
      expect(seconds(backOff.max_interval, "max_interval")).toBeLessThanOrEqual(
        seconds(at(provider, "remote_jwks", "http_uri", "timeout"), "http_uri.timeout"),
      );
    });

    it("refuses tokens without exp", () => {
      expect(provider.require_expiration).toBe(true);
    });

    it("gives each JWKS fetch attempt more than a second", () => {
      // Envoy uses max_interval as each attempt's timeout as well as the longest back-off.
      const backOff = obj(
        at(provider, "remote_jwks", "retry_policy", "retry_back_off"),
        "back-off",
      );
      expect(seconds(backOff.max_interval, "max_interval")).toBeGreaterThanOrEqual(2);
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

describe("envoy/README.md", () => {
  /** The README section under the heading that starts with `title`, up to the next `## `. */
  function section(title: string): string {
    const start = README.indexOf(`## ${title}`);
    expect(start, `section "${title}"`).toBeGreaterThanOrEqual(0);
    const end = README.indexOf("\n## ", start + 3);
    return README.slice(start, end === -1 ? undefined : end);
  }

  it("says connect_grpc_bridge is alpha with an unknown security posture, and how to run without it", () => {
    expect(README).toMatch(/connect_grpc_bridge[^.]*is an alpha extension/);
    expect(README).toMatch(/security posture\s+`unknown`/);
    // How: delete the filter; Connect clients switch to the gRPC-Web transport.
    expect(README).toMatch(/delete the `envoy\.filters\.http\.connect_grpc_bridge` entry/);
    expect(README).toContain("createGrpcWebTransport");
    // The config's own comment says the same.
    expect(readFileSync(ENVOY_YAML, "utf8")).toMatch(/ALPHA, security posture "unknown"/);
  });

  it("says jwt_authn verifies DPoP tokens at the edge and the backend checks the key binding, and why", () => {
    const dpop = section("DPoP-bound tokens");
    expect(dpop).toMatch(/At the edge, `jwt_authn` verifies the token/);
    expect(dpop).toMatch(/The backend checks the key binding/);
    for (const part of ["`dpop` proof", "`cnf.jkt`", "nonce"]) expect(dpop).toContain(part);
    expect(dpop).toContain("Envoy has no DPoP proof verification");
  });

  it("documents the TLS load balancer setting DPoP needs, and the public-URL alternative", () => {
    const dpop = section("DPoP-bound tokens");
    expect(dpop).toContain("xff_num_trusted_hops: 1");
    expect(dpop).toContain("--public-url");
    expect(dpop).toMatch(/DPoP-bound\s+token \(one with `cnf`\) sent as `Bearer`/);
    // The file itself keeps no trusted hops: the setting depends on what is in front of it.
    expect(hcmOf(config).xff_num_trusted_hops).toBeUndefined();
  });

  it("tells Connect users to set defaultTimeoutMs, and why the edge's 504 stays a 504 for them", () => {
    const deadlines = section("Deadlines and long streams");
    expect(deadlines).toContain("defaultTimeoutMs");
    expect(deadlines).toContain("`grpc-status: 4`");
  });

  it("documents the choices left as they are: strip_failure_response and the per-Envoy rate limit", () => {
    expect(README).toMatch(/`strip_failure_response` is unset/);
    const jwt = httpFilterConfig(config, "envoy.filters.http.jwt_authn");
    expect(jwt.strip_failure_response).toBeUndefined();
    expect(section("Rate limit on the token routes")).toMatch(/not a per-user limit/);
  });

  it("documents each trade-off: the unary cap, the buffer limit and the JWKS refresh", () => {
    expect(section("Deadlines and long streams")).toMatch(/capped at 30 s/);
    expect(section("Edge limits")).toMatch(/Connect unary\s+requests above 32 KiB fail/);
    expect(README).toMatch(/`async_fetch`/);
    // The numbers in the prose are the config's numbers.
    const catchAll = at(grpcRoute(), "route", "max_stream_duration", "max_stream_duration");
    expect(catchAll).toBe("30s");
    expect(
      at(config, "static_resources", "listeners", 0, "per_connection_buffer_limit_bytes"),
    ).toBe(32 * 1024);
  });
});

describe("local replies (jwt_authn's 401 and 403) to gRPC-Web calls", () => {
  const mappers = localReplyMappersOf(config);
  const JWT_MISSING = { status: 401, body: "Jwt is missing" };
  const WRONG_AUDIENCE = { status: 403, body: "Audiences in Jwt are not allowed" };

  it("has one mapper for 401, one for the edge's deadline and one for 403", () => {
    expect(mappers).toHaveLength(3);
  });

  /** A gRPC-Web call as the edge's deadline sees it: grpc_web already rewrote its content-type. */
  const GRPC_WEB_PAST_THE_BRIDGE = {
    requestContentType: "application/grpc",
    originalContentType: "application/grpc-web+proto",
    requestHeaders: { "x-grpc-web": "1" },
  };

  it.each([
    [504, "downstream duration timeout"],
    [408, "downstream duration timeout"],
  ])("answers the edge's %i to a gRPC-Web call as DeadlineExceeded (4)", (status, body) => {
    const reply = localReplyFor(config, { status, body, ...GRPC_WEB_PAST_THE_BRIDGE });
    expect(reply).toMatchObject({ status: 200, body: "" });
    expect(reply.headers["grpc-status"]).toBe("4");
    expect(reply.headers["grpc-message"]).toMatch(/^[\x20-\x24\x26-\x7e]+$/);
  });

  it("leaves the edge's 504 to a Connect call alone (the bridge removed connect-protocol-version)", () => {
    const reply = localReplyFor(config, {
      status: 504,
      body: "downstream duration timeout",
      requestContentType: "application/grpc+json",
      originalContentType: "application/json",
    });
    expect(reply.status).toBe(504);
    expect(reply.headers["grpc-status"]).toBeUndefined();
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
        requestHeaders: { "x-grpc-web": "1" },
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
