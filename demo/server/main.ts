/**
 * CLI entry of the demo backend: `tsx demo/server/main.ts [--test-mode] [--port 8787] ...`.
 * Exits with code 2 on invalid flags or environment variables; stops cleanly on SIGINT/SIGTERM.
 */
import { ConfigError, parseConfig, USAGE } from "./config.js";
import { DEFAULT_USERS } from "./credentials.js";
import { startDemoServer } from "./server.js";

async function main(): Promise<void> {
  let config: ReturnType<typeof parseConfig>;
  try {
    config = parseConfig(process.argv.slice(2), process.env);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    process.stderr.write(`demo server: ${e.message}\n\n${USAGE}`);
    process.exit(2);
  }
  if (config.help) {
    process.stdout.write(USAGE);
    return;
  }
  const { options } = config;
  const server = await startDemoServer(options);

  const lines = [`demo server: listening on ${server.url}`];
  if (server.grpcUrl) lines.push(`  gRPC (h2c):  ${server.grpcUrl}`);
  else lines.push("  Connect and gRPC-Web (HTTP/1.1); native gRPC needs --behind-envoy");
  lines.push(`  token:       POST ${server.tokenUrl}`);
  lines.push(`  revoke:      POST ${server.revokeUrl}`);
  lines.push(`  JWKS:        GET  ${server.jwksUrl}`);
  if (options.dpopNonces) lines.push("  DPoP:        nonces required");
  if (options.testMode) lines.push(`  test routes: ${server.url}/test/ (test mode)`);
  lines.push(`  users:       ${Object.keys(options.users ?? DEFAULT_USERS).join(", ")}`);
  process.stdout.write(`${lines.join("\n")}\n`);

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(1); // A second signal means "now".
    stopping = true;
    process.stdout.write(`demo server: ${signal}, shutting down\n`);
    server.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

main().catch((e: unknown) => {
  process.stderr.write(`demo server: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
