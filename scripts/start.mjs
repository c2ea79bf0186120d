/**
 * `npm start`: the demo backend in test mode on :8787 and the Vite dev server for demo/web on
 * :5173, until Ctrl-C or SIGTERM, which stops both. Each runs in its own process group, so
 * stopping takes their children too.
 */
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const HOST = "127.0.0.1";
const API_PORT = 8787;
// The backend allows CORS from :5173 by default: keep the two in step.
const WEB_PORT = 5173;
const API_URL = `http://${HOST}:${API_PORT}`;
// The demo identity provider for "Sign in with OpenID" (demo/idp/main.ts); its API is on :9091.
const IDP_PORT = 9090;
const WEB_URL = `http://${HOST}:${WEB_PORT}/`;
const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 5_000;

const repoRoot = fileURLToPath(new URL("..", import.meta.url));
const require = createRequire(import.meta.url);
const viteCli = join(dirname(require.resolve("vite/package.json")), "bin", "vite.js");

const services = [
  {
    name: "backend",
    what: "demo backend",
    port: API_PORT,
    // `node --import tsx` rather than the tsx CLI: one process, which gets our signals directly.
    args: ["--import", "tsx", "demo/server/main.ts", "--test-mode", "--port", String(API_PORT)],
    env: {},
    readyUrl: `${API_URL}/test/stats`,
  },
  {
    name: "idp",
    what: "demo identity provider (oidc-provider)",
    port: IDP_PORT,
    // Its API on IDP_PORT + 1 and its stats on IDP_PORT + 2; redirects to the web origin.
    args: [
      "--import",
      "tsx",
      "demo/idp/main.ts",
      "--port",
      String(IDP_PORT),
      "--origin",
      WEB_URL.replace(/\/$/, ""),
    ],
    env: {},
    readyUrl: `http://${HOST}:${IDP_PORT + 2}/stats`,
  },
  {
    name: "web",
    what: "Vite dev server",
    port: WEB_PORT,
    // The root vite.config.ts serves demo/web's pages.
    args: [viteCli, "--host", HOST, "--port", String(WEB_PORT), "--strictPort"],
    env: { VITE_API_URL: API_URL },
    readyUrl: WEB_URL,
  },
];

/** Running children by service name. */
const running = new Map();
let stopping = false;

function say(line) {
  process.stdout.write(`start: ${line}\n`);
}

async function main() {
  for (const service of services) {
    const problem = await portProblem(service.port);
    if (problem !== undefined) {
      process.stderr.write(`start: ${problem}\n`);
      process.exit(1);
    }
  }
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
    process.on(signal, () => void stop(0, `${signal}: stopping the backend and the dev server`));
  }
  // Last resort if we exit any other way: no orphans.
  process.on("exit", () => {
    for (const child of running.values()) killGroup(child, "SIGKILL");
  });

  for (const service of services) launch(service);
  try {
    await Promise.all(services.map((service) => waitUntilReady(service)));
  } catch (e) {
    await stop(1, e instanceof Error ? e.message : String(e));
    return;
  }
  say("ready.");
  process.stdout.write(
    [
      "",
      `  Open the demo:  ${WEB_URL}`,
      `  Backend:        ${API_URL} (TEST MODE: its /test/ routes are on, so the page's`,
      '                  "Revoke all tokens" button works; never run test mode in production)',
      "  Users:          alice / wonderland, bob / builder",
      `  OpenID:         http://${HOST}:${IDP_PORT} (oidc-provider, any login): ${WEB_URL}sign-in.html`,
      "",
      "  Press Ctrl-C to stop both.",
      "",
    ].join("\n"),
  );
}

/** Why the port cannot be used, or undefined when it is free. */
function portProblem(port) {
  const owner = services.find((service) => service.port === port)?.what;
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once("error", (error) => {
      resolve(
        error.code === "EADDRINUSE"
          ? `port ${port} (${owner}) is already in use on ${HOST}. Is the demo already running ` +
              `(npm start, npm run server)? Stop that process (find it with: lsof -i :${port}) and try again.`
          : `cannot listen on ${HOST}:${port} (${owner}): ${error.message}`,
      );
    });
    probe.listen(port, HOST, () => probe.close(() => resolve(undefined)));
  });
}

function launch(service) {
  const child = spawn(process.execPath, service.args, {
    cwd: repoRoot,
    env: { ...process.env, ...service.env },
    stdio: ["ignore", "pipe", "pipe"],
    // Its own process group, so that stopping it reaches its children, and Ctrl-C reaches us only.
    detached: true,
  });
  running.set(service.name, child);
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on("line", (line) => {
      process.stdout.write(`[${service.name}] ${line}\n`);
    });
  }
  child.once("exit", (code, signal) => {
    running.delete(service.name);
    if (!stopping) {
      void stop(1, `the ${service.what} exited unexpectedly (${signal ?? `exit code ${code}`})`);
    }
  });
  child.once("error", (error) => {
    running.delete(service.name);
    if (!stopping) void stop(1, `could not start the ${service.what}: ${error.message}`);
  });
}

async function waitUntilReady(service) {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!stopping) {
    try {
      const res = await fetch(service.readyUrl, { signal: AbortSignal.timeout(2_000) });
      await res.body?.cancel();
      if (res.ok) return;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      throw new Error(
        `the ${service.what} did not answer at ${service.readyUrl} within ${READY_TIMEOUT_MS / 1000} s`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Stops both services (SIGTERM, then SIGKILL after a while) and exits with `code`. */
async function stop(code, reason) {
  if (stopping) return;
  stopping = true;
  (code === 0 ? process.stdout : process.stderr).write(`start: ${reason}\n`);
  await Promise.all(
    [...running.values()].map(
      (child) =>
        new Promise((resolve) => {
          const timer = setTimeout(() => {
            killGroup(child, "SIGKILL");
            resolve();
          }, STOP_TIMEOUT_MS);
          child.once("exit", () => {
            clearTimeout(timer);
            // Whatever the service started and left behind goes too.
            killGroup(child, "SIGKILL");
            resolve();
          });
          killGroup(child, "SIGTERM");
        }),
    ),
  );
  say("stopped.");
  process.exit(code);
}

function killGroup(child, signal) {
  try {
    process.kill(-child.pid, signal);
  } catch {
    // The group is gone already.
  }
}

await main();
