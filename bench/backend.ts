/** The servers and clients the benchmarks call through. */
import { setMaxListeners } from "node:events";
import {
  type ConnectRouter,
  createClient,
  createRouterTransport,
  type Interceptor,
  type Transport,
} from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { type DemoServer, type DemoServerOptions, startDemoServer } from "../demo/server/server.js";
import { DemoService } from "../gen/demo/v1/demo_pb.js";
import type { DemoClient } from "./compare-clients.js";
import type { Library } from "./library.js";

/** A demo user (demo/server/credentials.ts). */
export const DEMO_USER = { username: "alice", password: "wonderland" };

/** Concurrent calls the storms start at once; each holds a listener on the server's signal. */
const MAX_CONCURRENT_CALLS = 2_000;

/** Starts the demo backend on 127.0.0.1, a free port, in test mode. Close it when done. */
export function startBenchServer(options: DemoServerOptions = {}): Promise<DemoServer> {
  // Connect links every request in flight to the server's shutdown signal: 1,000 at once is the
  // point of a storm, not a leak, so Node's warning above 10 listeners would only be noise.
  setMaxListeners(MAX_CONCURRENT_CALLS);
  return startDemoServer({ host: "127.0.0.1", port: 0, testMode: true, ...options });
}

/** A DemoService client over gRPC-Web to `server`, through `interceptors`. */
export function grpcWebClient(server: DemoServer, interceptors: Interceptor[]): DemoClient {
  return createClient(DemoService, createGrpcWebTransport({ baseUrl: server.url, interceptors }));
}

/**
 * A token source for `server`'s endpoint and a gRPC-Web client through `createAuthInterceptor` on
 * it, with a count of the replays the interceptor announced.
 */
export function authenticatedClient(
  { createAuthInterceptor, createTokenSource, passwordGrant }: Library,
  server: DemoServer,
) {
  const tokens = createTokenSource({
    fetchToken: passwordGrant({ endpoint: server.tokenUrl, credentials: DEMO_USER }),
  });
  let replays = 0;
  const client = grpcWebClient(server, [
    createAuthInterceptor(tokens, { onReplay: () => replays++ }),
  ]);
  return { tokens, client, replays: () => replays };
}

/** Fetches a token from the demo server's endpoint with plain fetch, outside the library. */
export async function fetchTokenDirectly(server: DemoServer): Promise<string> {
  const res = await fetch(server.tokenUrl, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(DEMO_USER),
  });
  if (!res.ok) throw new Error(`token endpoint answered ${res.status}`);
  const { token } = (await res.json()) as { token: string };
  return token;
}

/** The DemoService in memory, with no auth check: what is left to time is the client side. */
function openRoutes(router: ConnectRouter): void {
  router.service(DemoService, {
    whoAmI: () => ({ subject: "alice" }),
    async *ticks(req) {
      for (let n = 1; n <= req.count; n++) yield { n, subject: "alice" };
    },
  });
}

/** Connect's in-memory router transport to the open DemoService, through `interceptors`. */
export function routerTransport(interceptors: Interceptor[]): Transport {
  return createRouterTransport(openRoutes, { transport: { interceptors } });
}
