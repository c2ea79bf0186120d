/** What the auth interceptor costs per call, in memory and over loopback HTTP. */
import { createClient } from "@connectrpc/connect";
import type { DemoServer } from "../demo/server/server.js";
import { DemoService } from "../gen/demo/v1/demo_pb.js";
import type { TokenSource } from "../src/index.js";
import { DEMO_USER, fetchTokenDirectly, grpcWebClient, routerTransport } from "./backend.js";
import {
  compareClients,
  type Overhead,
  type OverheadOptions,
  staticBearer,
} from "./compare-clients.js";
import type { Library } from "./library.js";

/**
 * A token source holding a token good for an hour, already fetched; with `dpop`, one that proves
 * possession of its key (`dpopProofs()`) on every call.
 */
async function warmStaticSource(
  { createTokenSource, dpopProofs }: Library,
  dpop = false,
): Promise<TokenSource> {
  // As long as a real ES256 JWT, so the header costs what it would.
  const token = `eyJhbGciOiJFUzI1NiJ9.${"x".repeat(180)}.${"y".repeat(86)}`;
  const tokens = createTokenSource({
    fetchToken: async () => ({ token, expiresAt: Date.now() + 3_600_000 }),
    ...(dpop ? { dpop: dpopProofs() } : {}),
  });
  await tokens.getToken();
  return tokens;
}

/**
 * Calls through Connect's in-memory router transport (no server-side auth), bare vs with
 * `createAuthInterceptor` and a cached token: the interceptor's own cost, with no network to hide it.
 */
export async function measureMemoryOverhead(
  lib: Library,
  options: OverheadOptions,
): Promise<Overhead> {
  const { createAuthInterceptor } = lib;
  const tokens = await warmStaticSource(lib);
  const bare = createClient(DemoService, routerTransport([]));
  const auth = createClient(DemoService, routerTransport([createAuthInterceptor(tokens)]));
  return compareClients(bare, auth, options);
}

/**
 * What DPoP costs the client per call: through Connect's in-memory router transport (which checks
 * no token and no proof), `createAuthInterceptor` on a warm Bearer source vs on the same source
 * with `dpop: dpopProofs()`, which signs a fresh ECDSA P-256 proof for every call.
 */
export async function measureMemoryDpopOverhead(
  lib: Library,
  options: OverheadOptions,
): Promise<Overhead> {
  const { createAuthInterceptor } = lib;
  const bearer = createClient(
    DemoService,
    routerTransport([createAuthInterceptor(await warmStaticSource(lib))]),
  );
  const dpop = createClient(
    DemoService,
    routerTransport([createAuthInterceptor(await warmStaticSource(lib, true))]),
  );
  return compareClients(bearer, dpop, options);
}

/**
 * Calls through the gRPC-Web transport to the demo backend on loopback. The backend needs a token,
 * so "bare" sets a token fetched beforehand with a one-line interceptor; "intercepted" uses
 * `createAuthInterceptor` with a warm token source from the same endpoint.
 */
export async function measureHttpOverhead(
  { createAuthInterceptor, createTokenSource, passwordGrant }: Library,
  server: DemoServer,
  options: OverheadOptions,
): Promise<Overhead> {
  const tokens = createTokenSource({
    fetchToken: passwordGrant({ endpoint: server.tokenUrl, credentials: DEMO_USER }),
  });
  await tokens.getToken();
  const bare = grpcWebClient(server, [staticBearer(await fetchTokenDirectly(server))]);
  const auth = grpcWebClient(server, [createAuthInterceptor(tokens)]);
  return compareClients(bare, auth, options);
}
