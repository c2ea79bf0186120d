/**
 * The page side of the browser benchmark (bench/browser.ts bundles it with esbuild): the same
 * bare-vs-intercepted comparison as over HTTP in Node, through the gRPC-Web transport of Chromium;
 * then Bearer against DPoP, both through the interceptor; then one DPoP proof against one bare
 * signature with the same key.
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
import { type Comparison, compareInterleaved } from "./measure.js";

/** What the benchmark page is told, through `page.evaluate`. */
export interface BrowserBenchOptions extends OverheadOptions {
  baseUrl: string;
  tokenUrl: string;
  credentials: { username: string; password: string };
}

/** How many proofs {@link BrowserBench.runProofCost} times: rounds × proofs per side per round. */
export interface ProofCostOptions {
  rounds: number;
  proofsPerRound: number;
}

/** `globalThis.grpcWebAuthBench` on the page. */
export interface BrowserBench {
  run(options: BrowserBenchOptions): Promise<Overhead>;
  runDpop(options: BrowserBenchOptions): Promise<Overhead>;
  runProofCost(options: ProofCostOptions): Promise<Comparison>;
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

/** The URL the proofs are for: a DemoService method, as the interceptor proves it. */
const PROOF_URL = "https://api.example.com/demo.v1.DemoService/WhoAmI";

/**
 * What one DPoP proof costs against its floor, with no network: the library's signer path (a
 * source with `dpop: dpopProofs({ keyPair })`, `proofFor(token).prove(url, token)`) against a bare
 * `crypto.subtle.sign` (ECDSA P-256, SHA-256) with the same non-extractable key over as many
 * bytes as a proof signs. Candidate / baseline: proof / sign.
 */
async function runProofCost(options: ProofCostOptions): Promise<Comparison> {
  const keyPair = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, [
    "sign",
    "verify",
  ])) as CryptoKeyPair;
  // A token of a usual JWT access token's length; the source reads no claims from it.
  const token = `eyJ${"x".repeat(797)}`;
  const tokens = createTokenSource({
    fetchToken: async () => token,
    dpop: dpopProofs({ keyPair }),
  });
  await tokens.getToken();
  const scheme = tokens.proofFor?.(token);
  if (scheme === undefined) throw new Error("the DPoP source gave no proof scheme for its token");
  // The bare side signs what a proof signs: its header and claims, as many bytes.
  const { dpop } = (await scheme.prove(PROOF_URL, token)).headers;
  const signed = new TextEncoder().encode(dpop?.slice(0, dpop.lastIndexOf(".")) ?? "");
  const algorithm = { name: "ECDSA", hash: "SHA-256" };
  return compareInterleaved(
    async (n) => {
      for (let i = 0; i < n; i++) await crypto.subtle.sign(algorithm, keyPair.privateKey, signed);
    },
    async (n) => {
      for (let i = 0; i < n; i++) await scheme.prove(PROOF_URL, token);
    },
    { rounds: options.rounds, callsPerRound: options.proofsPerRound },
  );
}

(globalThis as { grpcWebAuthBench?: BrowserBench }).grpcWebAuthBench = {
  run,
  runDpop,
  runProofCost,
};
