import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";

/** Absolute path of the shipped Envoy config. */
export const ENVOY_YAML = fileURLToPath(new URL("../../envoy/envoy.yaml", import.meta.url));

/** A parsed YAML value. */
export type Json = null | boolean | number | string | Json[] | JsonObject;
/** A parsed YAML mapping. */
export type JsonObject = { [key: string]: Json };

/** Parses an Envoy config file (default: the shipped one) into plain values. */
export function loadEnvoyConfig(path: string = ENVOY_YAML): JsonObject {
  return obj(parse(readFileSync(path, "utf8")) as Json, path);
}

/** `value` as a mapping; throws naming `what` when it is anything else. */
export function obj(value: Json | undefined, what: string): JsonObject {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TypeError(`${what}: expected a mapping, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** `value` as a list; throws naming `what` when it is anything else. */
export function arr(value: Json | undefined, what: string): Json[] {
  if (!Array.isArray(value)) {
    throw new TypeError(`${what}: expected a list, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** `value` as a string; throws naming `what` when it is anything else. */
export function str(value: Json | undefined, what: string): string {
  if (typeof value !== "string") {
    throw new TypeError(`${what}: expected a string, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** Follows `keys` from `root`, each step a mapping key or a list index. */
export function at(root: Json, ...keys: Array<string | number>): Json | undefined {
  let node: Json | undefined = root;
  for (const key of keys) {
    if (typeof node !== "object" || node === null) return undefined;
    node = Array.isArray(node)
      ? typeof key === "number"
        ? node[key]
        : undefined
      : (node as JsonObject)[String(key)];
  }
  return node;
}

/** The only listener's only network filter: the HTTP connection manager's typed config. */
export function hcmOf(config: JsonObject): JsonObject {
  const listeners = arr(at(config, "static_resources", "listeners"), "listeners");
  if (listeners.length !== 1) throw new TypeError(`expected one listener, got ${listeners.length}`);
  const filters = arr(at(listeners, 0, "filter_chains", 0, "filters"), "network filters");
  const hcm = filters
    .map((f) => obj(f, "network filter"))
    .find((f) => f.name === "envoy.filters.network.http_connection_manager");
  return obj(hcm?.typed_config, "http_connection_manager typed_config");
}

/** The HTTP filters of the connection manager, in order. */
export function httpFiltersOf(config: JsonObject): JsonObject[] {
  return arr(hcmOf(config).http_filters, "http_filters").map((f) => obj(f, "http filter"));
}

/** The typed config of the HTTP filter called `name`. */
export function httpFilterConfig(config: JsonObject, name: string): JsonObject {
  const filter = httpFiltersOf(config).find((f) => f.name === name);
  return obj(filter?.typed_config, `typed_config of ${name}`);
}

/** The only virtual host of the static route config. */
export function virtualHostOf(config: JsonObject): JsonObject {
  const hosts = arr(at(hcmOf(config), "route_config", "virtual_hosts"), "virtual_hosts");
  if (hosts.length !== 1) throw new TypeError(`expected one virtual host, got ${hosts.length}`);
  return obj(hosts[0], "virtual host");
}

/** The routes of the only virtual host, in match order. */
export function routesOf(config: JsonObject): JsonObject[] {
  return arr(virtualHostOf(config).routes, "routes").map((r) => obj(r, "route"));
}

/** All static clusters. */
export function clustersOf(config: JsonObject): JsonObject[] {
  return arr(at(config, "static_resources", "clusters"), "clusters").map((c) => obj(c, "cluster"));
}

/** The static cluster called `name`. */
export function clusterOf(config: JsonObject, name: string): JsonObject {
  return obj(
    clustersOf(config).find((c) => c.name === name),
    `cluster ${name}`,
  );
}

/** The socket addresses of a cluster's endpoints. */
export function endpointAddressesOf(cluster: JsonObject): JsonObject[] {
  const groups = arr(at(cluster, "load_assignment", "endpoints"), "endpoints");
  return groups.flatMap((group) =>
    arr(at(group, "lb_endpoints"), "lb_endpoints").map((lb) =>
      obj(at(lb, "endpoint", "address", "socket_address"), "socket_address"),
    ),
  );
}
