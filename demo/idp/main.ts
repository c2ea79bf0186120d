/**
 * The demo's identity provider: panva's `oidc-provider` (a certified OpenID provider) with its
 * development login (any login, any password), one public client `spa` whose redirect URI is the
 * web origin's `sign-in.html`, DPoP, revocation and JWT access tokens for one API; beside it the
 * demo's DemoService verifying those tokens (JWKS, DPoP proofs), and a stats port for tests.
 *
 *   node --import tsx demo/idp/main.ts [--port 9090] [--api-port 9091] [--stats-port 9092]
 *     [--origin http://127.0.0.1:5173]… [--access-token-ttl 60]
 *
 * Development only: the provider keeps everything in memory and its login accepts anyone.
 */
import { createServer } from "node:http";
import { parseArgs } from "node:util";
import { startOidcProvider } from "./provider.js";
import { startResourceServer } from "./resource-server.js";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "9090" },
    "api-port": { type: "string", default: "9091" },
    "stats-port": { type: "string", default: "9092" },
    origin: { type: "string", multiple: true, default: ["http://127.0.0.1:5173"] },
    "access-token-ttl": { type: "string", default: "60" },
  },
});
const port = (name: string, value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new TypeError(`--${name} must be a port`);
  return n;
};

const origins = values.origin;
const provider = await startOidcProvider({
  port: port("port", values.port),
  redirectUris: origins.map((origin) => `${origin}/sign-in.html`),
  corsOrigins: origins,
  accessTokenTtl: Number(values["access-token-ttl"]),
  resource: "urn:grpc-web-auth:api",
});
const api = await startResourceServer(provider, {
  port: port("api-port", values["api-port"]),
  corsOrigins: origins,
});

// What a test counts: the provider's token and revocation requests, the API's calls.
const stats = createServer((req, res) => {
  if (req.url === "/stats" && req.method === "GET") {
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ provider: provider.stats(), api: api.stats() }));
  } else if (req.url === "/reset" && req.method === "POST") {
    provider.reset();
    api.resetStats();
    res.statusCode = 204;
    res.end();
  } else {
    res.statusCode = 404;
    res.end();
  }
});
await new Promise<void>((resolve) =>
  stats.listen(port("stats-port", values["stats-port"]), "127.0.0.1", resolve),
);

process.stdout.write(
  `identity provider ${provider.issuer} (client "spa", redirect ${provider.redirectUris.join(", ")}); API ${api.url}\n`,
);
const stop = () => {
  stats.close();
  void Promise.all([api.close(), provider.close()]).then(() => process.exit(0));
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
