/**
 * The page side of the browser benchmark (bench/browser.ts bundles it with esbuild): the same
 * bare-vs-intercepted comparison as over HTTP in Node, through the gRPC-Web transport of Chromium;
 * then Bearer against DPoP, both through the interceptor.
 */
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { DemoService } from "../gen/demo/v1/demo_pb.js";
import {
  createAuthInterceptor,
  createTokenSource,
  dpopProofs,
  passwordGrant,
} from "../src/index.js";
import {
  compareClients,
  type Overhead,
  type OverheadOptions,
  staticBearer,
} from "./compare-clients.js";

/** What the benchmark page is told, through `page.evaluate`. */
export interface BrowserBenchOptions extends OverheadOptions {
  baseUrl: string;
  tokenUrl: string;
  credentials: { username: string; password: string };
}

/** `globalThis.grpcWebAuthBench` on the page. */
export interface BrowserBench {
  run(options: BrowserBenchOptions): Promise<Overhead>;
  runDpop(options: BrowserBenchOptions): Promise<Overhead>;
}

async function run(options: BrowserBenchOptions): Promise<Overhead> {
  const { baseUrl, tokenUrl, credentials } = options;
  const tokens = createTokenSource({
    fetchToken: passwordGrant({ endpoint: tokenUrl, credentials }),
  });
  // Warms the source; the bare client sends the same token, set by a one-line interceptor.
  const token = await tokens.getToken();
  const transport = (interceptor: Interceptor) =>
    createGrpcWebTransport({ baseUrl, interceptors: [interceptor] });
  const bare = createClient(DemoService, transport(staticBearer(token)));
  const auth = createClient(DemoService, transport(createAuthInterceptor(tokens)));
  return compareClients(bare, auth, options);
}

/**
 * `createAuthInterceptor` on a Bearer source vs on a DPoP source (`dpop: dpopProofs()`), each
 * signed in with passwordGrant. The DPoP side signs a proof per call in the page (WebCrypto) and
 * the backend verifies it, so the ratio is what DPoP costs a call end to end on loopback.
 */
async function runDpop(options: BrowserBenchOptions): Promise<Overhead> {
  const { baseUrl, tokenUrl, credentials } = options;
  const grant = () => passwordGrant({ endpoint: tokenUrl, credentials });
  const bearerTokens = createTokenSource({ fetchToken: grant() });
  const dpopTokens = createTokenSource({ fetchToken: grant(), dpop: dpopProofs() });
  await bearerTokens.getToken();
  await dpopTokens.getToken();
  const client = (interceptor: Interceptor) =>
    createClient(DemoService, createGrpcWebTransport({ baseUrl, interceptors: [interceptor] }));
  const bearer = client(createAuthInterceptor(bearerTokens));
  const dpop = client(createAuthInterceptor(dpopTokens));
  return compareClients(bearer, dpop, options);
}

(globalThis as { grpcWebAuthBench?: BrowserBench }).grpcWebAuthBench = { run, runDpop };
