import { parseArgs } from "node:util";
import { DEFAULT_ALLOWED_ORIGINS } from "./cors.js";
import { MAX_REFRESH_TTL_SECONDS } from "./refresh-tokens.js";
import type { DemoServerOptions } from "./server.js";

/** A flag or environment variable with a value that cannot be used; `main` exits with code 2. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** What the command line asks for: server options, or just the usage text. */
export type CliConfig = { help: true } | { help: false; options: DemoServerOptions };

/** Usage text for `--help`. */
export const USAGE = `Usage: tsx demo/server/main.ts [flags]

Flags (environment variable in brackets; flags win):
  --port <n>          combined server port, 0 = any free port [PORT] (default 8787)
  --host <name>       interface to bind (default 127.0.0.1)
  --token-ttl <s>     access-token lifetime in seconds, 1-86400 [TOKEN_TTL_SECONDS] (default 300)
  --refresh-ttl <s>   refresh-token lifetime in seconds, 1-2592000 [REFRESH_TTL_SECONDS]
                      (default 86400)
  --dpop-nonces       require server nonces in DPoP proofs [DEMO_DPOP_NONCES=1]
  --public-url <url>  URL clients use to reach the server, for DPoP htu behind a proxy
                      [PUBLIC_URL] (default: http:// + the request's Host header)
  --users <list>      "name:password,..." [DEMO_USERS] (default "alice:wonderland,bob:builder")
  --origin <list>     extra CORS origins, comma separated [ALLOWED_ORIGINS]
                      (always allowed: ${DEFAULT_ALLOWED_ORIGINS.join(", ")})
  --test-mode         serve the /test/ routes and honour fail_after [DEMO_TEST_MODE=1]
  --behind-envoy      gRPC over h2c + token server, no CORS [DEMO_BEHIND_ENVOY=1]
  --grpc-port <n>     gRPC port with --behind-envoy [GRPC_PORT] (default 50051)
  --token-port <n>    token server port with --behind-envoy [TOKEN_PORT] (default 8081)
  --help              show this text
`;

/**
 * Parses flags (`--port 8787` or `--port=8787`) and environment variables into server options.
 * Throws {@link ConfigError} naming the flag or variable when a value is invalid.
 */
export function parseConfig(argv: readonly string[], env: NodeJS.ProcessEnv): CliConfig {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        port: { type: "string" },
        host: { type: "string" },
        "token-ttl": { type: "string" },
        "refresh-ttl": { type: "string" },
        "dpop-nonces": { type: "boolean" },
        "public-url": { type: "string" },
        users: { type: "string" },
        origin: { type: "string" },
        "test-mode": { type: "boolean" },
        "behind-envoy": { type: "boolean" },
        "grpc-port": { type: "string" },
        "token-port": { type: "string" },
        help: { type: "boolean" },
      },
    }).values;
  } catch (e) {
    throw new ConfigError(e instanceof Error ? e.message : String(e));
  }
  if (values.help) return { help: true };

  /** The flag's value if given, else the variable's; with the name to blame in errors. */
  const pick = (flag: string, variable?: string): { name: string; value: string } | undefined => {
    const fromFlag = values[flag];
    if (typeof fromFlag === "string") return { name: `--${flag}`, value: fromFlag };
    const fromEnv = variable === undefined ? undefined : env[variable];
    if (variable !== undefined && fromEnv !== undefined && fromEnv !== "") {
      return { name: variable, value: fromEnv };
    }
    return undefined;
  };
  const flag = (name: string, variable: string): boolean => {
    if (values[name] === true) return true;
    const raw = env[variable];
    if (raw === undefined || raw === "" || raw === "0" || raw === "false") return false;
    if (raw === "1" || raw === "true") return true;
    throw new ConfigError(`invalid ${variable}: expected 1 or 0, got "${raw}"`);
  };

  const options: DemoServerOptions = {};
  const port = pick("port", "PORT");
  if (port) options.port = integer(port, 0, 65_535);
  const host = pick("host");
  if (host) {
    if (host.value.trim() === "") throw new ConfigError("invalid --host: must not be empty");
    options.host = host.value;
  }
  const ttl = pick("token-ttl", "TOKEN_TTL_SECONDS");
  if (ttl) options.tokenTtlSeconds = integer(ttl, 1, 86_400);
  const refreshTtl = pick("refresh-ttl", "REFRESH_TTL_SECONDS");
  if (refreshTtl) options.refreshTtlSeconds = integer(refreshTtl, 1, MAX_REFRESH_TTL_SECONDS);
  options.dpopNonces = flag("dpop-nonces", "DEMO_DPOP_NONCES");
  const publicUrl = pick("public-url", "PUBLIC_URL");
  if (publicUrl) options.publicUrl = parsePublicUrl(publicUrl);
  const users = pick("users", "DEMO_USERS");
  if (users) options.users = parseUsers(users);
  const origins = pick("origin", "ALLOWED_ORIGINS");
  if (origins) options.allowedOrigins = parseOrigins(origins);
  options.testMode = flag("test-mode", "DEMO_TEST_MODE");
  options.behindEnvoy = flag("behind-envoy", "DEMO_BEHIND_ENVOY");
  const grpcPort = pick("grpc-port", "GRPC_PORT");
  if (grpcPort) options.grpcPort = integer(grpcPort, 0, 65_535);
  const tokenPort = pick("token-port", "TOKEN_PORT");
  if (tokenPort) options.tokenPort = integer(tokenPort, 0, 65_535);
  return { help: false, options };
}

function integer(source: { name: string; value: string }, min: number, max: number): number {
  const n = /^\d+$/.test(source.value) ? Number(source.value) : Number.NaN;
  if (!(n >= min && n <= max)) {
    throw new ConfigError(
      `invalid ${source.name}: expected an integer from ${min} to ${max}, got "${source.value}"`,
    );
  }
  return n;
}

function parseUsers(source: { name: string; value: string }): Record<string, string> {
  const users: Record<string, string> = {};
  for (const entry of source.value.split(",")) {
    const colon = entry.indexOf(":");
    const username = entry.slice(0, colon).trim();
    const password = entry.slice(colon + 1);
    // Never echo the entry: it holds a password.
    if (colon <= 0 || username === "" || password === "") {
      throw new ConfigError(`invalid ${source.name}: expected "name:password,name:password"`);
    }
    if (Object.hasOwn(users, username)) {
      throw new ConfigError(`invalid ${source.name}: user "${username}" appears twice`);
    }
    users[username] = password;
  }
  return users;
}

function parseOrigins(source: { name: string; value: string }): string[] {
  return source.value
    .split(",")
    .map((origin) => origin.trim())
    .filter((origin) => origin !== "")
    .map((origin) => {
      let parsed: URL | undefined;
      try {
        parsed = new URL(origin);
      } catch {}
      if (parsed?.origin !== origin) {
        throw new ConfigError(
          `invalid ${source.name}: "${origin}" is not an origin like "http://localhost:3000"`,
        );
      }
      return origin;
    });
}

function parsePublicUrl(source: { name: string; value: string }): string {
  let parsed: URL | undefined;
  try {
    parsed = new URL(source.value);
  } catch {}
  if (
    !parsed ||
    !/^https?:$/.test(parsed.protocol) ||
    source.value.includes("?") ||
    source.value.includes("#")
  ) {
    throw new ConfigError(
      `invalid ${source.name}: "${source.value}" is not an http(s) URL like "https://api.example"`,
    );
  }
  return source.value;
}
