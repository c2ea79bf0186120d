import { type Client, createClient } from "@connectrpc/connect";
import { GrpcWebClientBase } from "grpc-web";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";
import { createGrpcWebInterceptors } from "../../src/grpc-web.js";
import {
  createAuthInterceptor,
  createTokenSource,
  passwordGrant,
  type ReplayEvent,
  type TokenEvent,
  type TokenSource,
} from "../../src/index.js";
import { type Authority, createAuthority } from "./authority.js";
import { type Backend, startBackend } from "./backend.js";
import { startTokenEndpoint, TEST_USER, type TokenEndpoint } from "./token-endpoint.js";

/** A token endpoint, the service behind it, and a client wired through the auth interceptor. */
export interface FaultWorld {
  authority: Authority;
  endpoint: TokenEndpoint;
  backend: Backend;
  /** The token source under test, talking to `endpoint` (or to what `via` put in front of it). */
  tokens: TokenSource;
  /** Everything `tokens.subscribe()` delivered. */
  events: TokenEvent[];
  /** Every replay the interceptor announced. */
  replays: ReplayEvent[];
  /** A DemoService client over the in-memory router transport. */
  client: Client<typeof DemoService>;
  /**
   * A client of Google's grpc-web runtime with the same token source, for `backend.url` (the test
   * file installs an XMLHttpRequest: see useXmlHttpRequest).
   */
  grpcWeb: GrpcWebClientBase;
  close(): Promise<void>;
}

export interface FaultWorldOptions {
  /** The token source's `timeoutMs`. Default: 3 000. */
  timeoutMs?: number;
  /** How long the healthy endpoint takes to mint a token. Default: 0. */
  delayMs?: number;
  /** Puts something in front of the endpoint: gets its URL, returns the URL the source uses. */
  via?: (endpointUrl: string) => Promise<string> | string;
}

/** Starts a world whose servers are closed by `close()`. */
export async function startFaultWorld(options: FaultWorldOptions = {}): Promise<FaultWorld> {
  const authority = createAuthority();
  const endpoint = await startTokenEndpoint(
    authority,
    options.delayMs === undefined ? {} : { delayMs: options.delayMs },
  );
  const backend = await startBackend(authority);
  const url = options.via === undefined ? endpoint.url : await options.via(endpoint.url);
  const tokens = createTokenSource({
    // A function: the tests sign in again after clear(), which forgets a credentials object.
    fetchToken: passwordGrant({ endpoint: url, credentials: () => TEST_USER }),
    timeoutMs: options.timeoutMs ?? 3_000,
  });
  const events: TokenEvent[] = [];
  tokens.subscribe((event) => events.push(event));
  const replays: ReplayEvent[] = [];
  const interceptor = createAuthInterceptor(tokens, { onReplay: (event) => replays.push(event) });
  const client = createClient(DemoService, backend.transport("router", [interceptor]));
  const grpcWeb = new GrpcWebClientBase({
    format: "binary",
    ...createGrpcWebInterceptors(tokens, { onReplay: (event) => replays.push(event) }),
  });
  return {
    authority,
    endpoint,
    backend,
    tokens,
    events,
    replays,
    client,
    grpcWeb,
    async close() {
      tokens.clear();
      await endpoint.close();
      await backend.close();
    },
  };
}

/** Reads a whole server stream of ticks into their numbers. */
export async function collectTicks(stream: AsyncIterable<{ n: number }>): Promise<number[]> {
  const ns: number[] = [];
  for await (const tick of stream) ns.push(tick.n);
  return ns;
}

/** Runs `start` and settles what it returns into its value or its error, and how long that took. */
export async function settle<T>(
  start: () => Promise<T>,
): Promise<{ value?: T; error?: unknown; ms: number }> {
  const started = performance.now();
  try {
    const value = await start();
    return { value, ms: performance.now() - started };
  } catch (error) {
    return { error, ms: performance.now() - started };
  }
}
