import { type ChildProcess, spawn } from "node:child_process";
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { stringify } from "yaml";
import {
  at,
  clusterOf,
  endpointAddressesOf,
  httpFilterConfig,
  type JsonObject,
  obj,
} from "./envoy-yaml.js";

/** The absolute path of the executable `name` on PATH, or undefined. */
export function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir === "") continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return undefined;
}

/** A TCP port on loopback that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => {
        if (typeof address === "object" && address !== null) resolve(address.port);
        else reject(new Error("no port"));
      });
    });
  });
}

/** Where a test Envoy listens and where it finds its upstreams. */
export interface LivePorts {
  listener: number;
  admin: number;
  /** Every grpc_backend endpoint is pointed here. */
  grpc: number;
  token: number;
}

/**
 * A copy of `config` with every port replaced by `ports`, listening on loopback only. Everything
 * else (filters, routes, timeouts, CORS, jwt_authn) stays exactly as shipped.
 */
export function withPorts(config: JsonObject, ports: LivePorts): JsonObject {
  const copy = structuredClone(config);
  obj(at(copy, "admin", "address", "socket_address"), "admin address").port_value = ports.admin;
  const listener = obj(
    at(copy, "static_resources", "listeners", 0, "address", "socket_address"),
    "listener address",
  );
  listener.address = "127.0.0.1";
  listener.port_value = ports.listener;
  for (const address of endpointAddressesOf(clusterOf(copy, "grpc_backend"))) {
    address.port_value = ports.grpc;
  }
  for (const address of endpointAddressesOf(clusterOf(copy, "token_service"))) {
    address.port_value = ports.token;
  }
  const providers = obj(
    httpFilterConfig(copy, "envoy.filters.http.jwt_authn").providers,
    "jwt_authn providers",
  );
  for (const provider of Object.values(providers)) {
    const httpUri = obj(at(provider, "remote_jwks", "http_uri"), "remote_jwks.http_uri");
    const uri = new URL(String(httpUri.uri));
    uri.port = String(ports.token);
    httpUri.uri = uri.href;
  }
  return copy;
}

/** One access-log entry, as the JSON format in envoy.yaml writes it. */
export type AccessLogEntry = Record<string, string | number | null>;

/** The access-log entries in Envoy's output: every line that is a JSON object. */
export function accessLogEntries(output: string): AccessLogEntry[] {
  const entries: AccessLogEntry[] = [];
  for (const line of output.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      entries.push(JSON.parse(line) as AccessLogEntry);
    } catch {
      // A line cut by the output limit, or not ours.
    }
  }
  return entries;
}

/**
 * Waits until Envoy has logged the end of the call whose `x-user-agent` was `marker`, and returns
 * that entry; fails after 10 s with what was logged.
 */
export async function finalLogEntryFor(
  envoy: RunningEnvoy,
  marker: string,
): Promise<AccessLogEntry> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const entry = accessLogEntries(envoy.output()).find(
      (e) => e.client_user_agent === marker && e.access_log_type === "DownstreamEnd",
    );
    if (entry) return entry;
    await sleep(100);
  }
  throw new Error(`no DownstreamEnd access-log entry for ${marker}:\n${envoy.output()}`);
}

/** A running Envoy started by {@link startEnvoy}. */
export interface RunningEnvoy {
  /** Base URL of the listener, e.g. `http://127.0.0.1:43121`. */
  url: string;
  /** Base URL of the admin API (`/clusters`, `/stats`), on loopback. */
  adminUrl: string;
  /** What Envoy printed so far (access log and warnings), for failure messages. */
  output(): string;
  /** Stops Envoy and removes its temporary config. */
  close(): Promise<void>;
}

const OUTPUT_LIMIT = 64 * 1024;

/**
 * Writes `config` with `ports` to a temporary file, starts `envoyPath` on it and waits until the
 * admin API says it is LIVE (listeners up, clusters initialised).
 */
export async function startEnvoy(
  envoyPath: string,
  config: JsonObject,
  ports: LivePorts,
): Promise<RunningEnvoy> {
  const dir = mkdtempSync(join(tmpdir(), "grpc-web-auth-envoy-"));
  const configPath = join(dir, "envoy.yaml");
  writeFileSync(configPath, stringify(withPorts(config, ports)));

  let output = "";
  const child: ChildProcess = spawn(
    envoyPath,
    [
      "-c",
      configPath,
      "--disable-hot-restart",
      "--concurrency",
      "1",
      "--log-level",
      "warn",
      // The access log is written through a buffer flushed every 10 s by default.
      "--file-flush-interval-msec",
      "100",
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString("utf8")).slice(-OUTPUT_LIMIT);
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let hasExited = false;
  void exited.then(() => {
    hasExited = true;
  });

  const close = async () => {
    if (!hasExited) {
      child.kill("SIGTERM");
      const killed = await Promise.race([exited.then(() => true), sleep(5_000, false)]);
      if (!killed) child.kill("SIGKILL");
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    await waitUntilLive(`http://127.0.0.1:${ports.admin}/ready`, () => hasExited);
  } catch (e) {
    await close();
    throw new Error(`Envoy did not become ready: ${String(e)}\n${output}`);
  }
  return {
    url: `http://127.0.0.1:${ports.listener}`,
    adminUrl: `http://127.0.0.1:${ports.admin}`,
    output: () => output,
    close,
  };
}

async function waitUntilLive(readyUrl: string, hasExited: () => boolean): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (hasExited()) throw new Error("envoy exited");
    try {
      const res = await fetch(readyUrl);
      if (res.ok && (await res.text()).trim() === "LIVE") return;
    } catch {
      // Not listening yet.
    }
    await sleep(100);
  }
  throw new Error("timed out after 20 s");
}
