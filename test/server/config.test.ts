import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { describe, expect, it, onTestFinished } from "vitest";
import { ConfigError, parseConfig } from "../../demo/server/config.js";

const root = fileURLToPath(new URL("../..", import.meta.url));

/** Runs `main.ts` under tsx with a clean environment; killed when the test finishes. */
function startMain(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, ["--import", "tsx", "demo/server/main.ts", ...args], {
    cwd: root,
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk;
  });
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk;
  });
  return { child, stdout: () => stdout, stderr: () => stderr };
}

async function exitCode(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  const [code] = await once(child, "exit");
  return code as number | null;
}

/** The URL `main.ts` says it listens on, once it has said so. */
function listeningUrl(main: ReturnType<typeof startMain>): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    main.child.stdout?.on("data", () => {
      const match = /listening on (http:\/\/\S+)/.exec(main.stdout());
      if (match?.[1]) resolve(match[1]);
    });
    main.child.once("exit", () => reject(new Error(`main exited: ${main.stderr()}`)));
  });
}

describe("parseConfig", () => {
  it("leaves every option to its default when no flags or variables are given", () => {
    expect(parseConfig([], {})).toEqual({
      help: false,
      options: { dpopNonces: false, testMode: false, behindEnvoy: false },
    });
  });

  it("reads every flag, in both `--flag value` and `--flag=value` forms", () => {
    const config = parseConfig(
      [
        "--port=9000",
        "--host",
        "0.0.0.0",
        "--token-ttl",
        "60",
        "--refresh-ttl=3600",
        "--dpop-nonces",
        "--public-url",
        "https://api.example/backend",
        "--users=carol:pa:ss,dave:x",
        "--origin",
        "https://a.example, http://localhost:3000",
        "--test-mode",
        "--behind-envoy",
        "--grpc-port=0",
        "--token-port",
        "8082",
      ],
      {},
    );
    expect(config).toEqual({
      help: false,
      options: {
        port: 9000,
        host: "0.0.0.0",
        tokenTtlSeconds: 60,
        refreshTtlSeconds: 3600,
        dpopNonces: true,
        publicUrl: "https://api.example/backend",
        users: { carol: "pa:ss", dave: "x" },
        allowedOrigins: ["https://a.example", "http://localhost:3000"],
        testMode: true,
        behindEnvoy: true,
        grpcPort: 0,
        tokenPort: 8082,
      },
    });
  });

  it("reads environment variables, and flags win over them", () => {
    const env = {
      PORT: "8000",
      TOKEN_TTL_SECONDS: "30",
      REFRESH_TTL_SECONDS: "120",
      DEMO_DPOP_NONCES: "1",
      PUBLIC_URL: "http://localhost:8080",
      DEMO_USERS: "erin:pw",
      ALLOWED_ORIGINS: "https://b.example",
      DEMO_TEST_MODE: "1",
      DEMO_BEHIND_ENVOY: "0",
    };
    expect(parseConfig([], env)).toEqual({
      help: false,
      options: {
        port: 8000,
        tokenTtlSeconds: 30,
        refreshTtlSeconds: 120,
        dpopNonces: true,
        publicUrl: "http://localhost:8080",
        users: { erin: "pw" },
        allowedOrigins: ["https://b.example"],
        testMode: true,
        behindEnvoy: false,
      },
    });
    expect(parseConfig(["--port", "1234"], env)).toMatchObject({ options: { port: 1234 } });
  });

  it.each([
    [["--port", "http"], {}, "--port"],
    [["--port", "70000"], {}, "--port"],
    [["--port", "-1"], {}, "--port"],
    [[], { PORT: "eighty" }, "PORT"],
    [["--token-ttl", "0"], {}, "--token-ttl"],
    [[], { TOKEN_TTL_SECONDS: "1.5" }, "TOKEN_TTL_SECONDS"],
    [["--users", "alice"], {}, "--users"],
    [["--users", "alice:x,alice:y"], {}, "--users"],
    [["--origin", "localhost:5173"], {}, "--origin"],
    [["--origin", "http://localhost:5173/"], {}, "--origin"],
    [[], { DEMO_TEST_MODE: "yes" }, "DEMO_TEST_MODE"],
    [["--refresh-ttl", "0"], {}, "--refresh-ttl"],
    [["--refresh-ttl", "2592001"], {}, "--refresh-ttl"],
    [[], { REFRESH_TTL_SECONDS: "1h" }, "REFRESH_TTL_SECONDS"],
    [[], { DEMO_DPOP_NONCES: "on" }, "DEMO_DPOP_NONCES"],
    [["--public-url", "api.example"], {}, "--public-url"],
    [["--public-url", "ftp://api.example"], {}, "--public-url"],
    [[], { PUBLIC_URL: "https://api.example/?x=1" }, "PUBLIC_URL"],
    [["--grpc-port", "x"], {}, "--grpc-port"],
    [["--nope"], {}, "--nope"],
    [["--port"], {}, "--port"],
  ])("rejects %j with env %j, naming %s", (argv, env, name) => {
    expect(() => parseConfig(argv, env)).toThrow(ConfigError);
    expect(() => parseConfig(argv, env)).toThrow(name);
  });

  it("never puts a password into an error message", () => {
    expect(() => parseConfig(["--users", "alice:hunter2,:secret"], {})).toThrow(
      expect.objectContaining({ message: expect.not.stringMatching(/hunter2|secret/) }),
    );
  });
});

describe("main.ts", () => {
  it("requires DPoP nonces with --dpop-nonces", async () => {
    const main = startMain(["--port", "0", "--dpop-nonces"]);
    const url = await listeningUrl(main);
    expect(main.stdout()).toContain("nonces required");
    const res = await fetch(`${url}/auth/token`, { method: "POST", body: "{}" });
    expect(res.headers.get("dpop-nonce")).toMatch(/^[A-Za-z0-9_-]{16,}$/);
    main.child.kill("SIGTERM");
    expect(await exitCode(main.child)).toBe(0);
  });

  it("exits with code 2 and names the flag when a value is invalid", async () => {
    const main = startMain(["--port", "abc"]);
    expect(await exitCode(main.child)).toBe(2);
    expect(main.stderr()).toContain("invalid --port");
  });

  it("prints its URLs, serves tokens and exits with code 0 on SIGTERM", async () => {
    const main = startMain(["--port", "0", "--test-mode"], { DEMO_USERS: "zoe:pw" });
    const url = await listeningUrl(main);
    expect(main.stdout()).toContain(`${url}/auth/token`);
    expect(main.stdout()).toContain(`${url}/auth/revoke`);
    const json = { "content-type": "application/json" };
    const res = await fetch(`${url}/auth/token`, {
      method: "POST",
      headers: json,
      body: JSON.stringify({ username: "zoe", password: "pw" }),
    });
    expect(res.status).toBe(200);
    const { refresh_token } = (await res.json()) as { refresh_token: string };
    const refreshed = await fetch(`${url}/auth/token`, {
      method: "POST",
      headers: json,
      body: JSON.stringify({ grant_type: "refresh_token", refresh_token }),
    });
    expect(refreshed.status).toBe(200);
    main.child.kill("SIGTERM");
    expect(await exitCode(main.child)).toBe(0);
    expect(main.stdout() + main.stderr()).not.toMatch(/"pw"|:pw|eyJ/);
    expect(main.stdout() + main.stderr()).not.toContain(refresh_token);
  });
});
