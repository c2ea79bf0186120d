/**
 * The replay rules, one table, every adapter: Connect's interceptor over the Connect protocol and
 * over gRPC-Web, and the interceptors for Google's grpc-web runtime. Each row is a situation a
 * call can meet; each adapter must end it the same way, with the same counts of attempts (at the
 * API), token fetches and replays. Tokens come from oidc-provider, DPoP-bound; the API verifies
 * them against the provider's JWKS.
 */
import { Code, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { GrpcWebClientBase, type Metadata } from "grpc-web";
import { generateKeyPair } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";
import { createGrpcWebInterceptors } from "../../src/grpc-web.js";
import {
  createAuthInterceptor,
  createTokenSource,
  dpopProofs,
  type ReplayEvent,
  refreshTokenGrant,
  type TokenEvent,
  type TokenSource,
} from "../../src/index.js";
import { drain, grpcWebTicks, grpcWebWhoAmI } from "../helpers/grpc-web-calls.js";
import { type OidcProvider, startOidcProvider } from "../helpers/oidc-provider.js";
import { signIn } from "../helpers/oidc-sign-in.js";
import { type ResourceServer, startResourceServer } from "../helpers/resource-server.js";
import { sleep } from "../helpers/wait.js";
import { useXmlHttpRequest } from "../helpers/xhr.js";

useXmlHttpRequest();

type Adapter = "connect protocol" | "grpc-web protocol" | "grpc-web runtime";
const ADAPTERS: Adapter[] = ["connect protocol", "grpc-web protocol", "grpc-web runtime"];

/** How a call ended, the same for every adapter. */
interface Outcome {
  /** 0 for success, else the gRPC code. */
  code: number;
  /** Stream messages received. */
  ticks?: number;
}

interface Call {
  kind: "unary" | "stream";
  /** The caller aborts as soon as the source starts fetching a token (Connect only). */
  abortOnFetch?: boolean;
  /** A deadline this far from the start. */
  timeoutMs?: number;
  /** Stream: `fail_after`, refused after this many messages. */
  failAfter?: number;
}

/** What the test sets up around one call. */
interface World {
  api: ResourceServer;
  tokens: TokenSource;
  /** Token fetches the source made. */
  fetches: () => number;
  replays: ReplayEvent[];
  events: TokenEvent[];
  /** Refuse at the API every token fetched from now on. */
  denyNewTokens(): void;
  /** Make every later token fetch take this long. */
  slowFetches(ms: number): void;
  /** Make the app's isAuthError throw. */
  throwingPredicate(): void;
  call(call: Call): Promise<Outcome>;
}

interface Row {
  name: string;
  /** The adapters the row applies to. Default: all. */
  adapters?: Adapter[];
  call: Call;
  /** Before the call (after a warm-up call proved the first token). */
  setup(world: World): void;
  expected: Outcome & {
    /** Attempts the API saw for the call. */
    attempts: number;
    fetches: number;
    replays: number;
    sessionEnded?: string;
  };
}

const ROWS: Row[] = [
  {
    name: "a unary call refused before any data replays once with a new token",
    call: { kind: "unary" },
    setup: (w) => revokeCurrent(w),
    expected: { code: 0, attempts: 2, fetches: 1, replays: 1 },
  },
  {
    name: "a stream refused before its first message replays once with a new token",
    call: { kind: "stream" },
    setup: (w) => revokeCurrent(w),
    expected: { code: 0, ticks: 3, attempts: 2, fetches: 1, replays: 1 },
  },
  {
    name: "a stream refused after data is not replayed, and its token is dropped",
    call: { kind: "stream", failAfter: 2 },
    setup: () => {},
    expected: { code: Code.Unauthenticated, ticks: 2, attempts: 1, fetches: 0, replays: 0 },
  },
  {
    name: "a DPoP nonce challenge is answered with one replay and no token fetch",
    call: { kind: "unary" },
    setup: (w) => w.api.rotateNonce(),
    expected: { code: 0, attempts: 2, fetches: 0, replays: 0 },
  },
  {
    name: "a nonce challenge and a refused token each get their one replay",
    call: { kind: "unary" },
    setup: (w) => {
      w.api.rotateNonce();
      revokeCurrent(w);
    },
    expected: { code: 0, attempts: 3, fetches: 1, replays: 1 },
  },
  {
    name: "a refused replacement ends the call after two attempts and ends the session",
    call: { kind: "unary" },
    setup: (w) => {
      revokeCurrent(w);
      w.denyNewTokens();
    },
    expected: {
      code: Code.Unauthenticated,
      attempts: 2,
      fetches: 1,
      replays: 1,
      sessionEnded: "token-refused",
    },
  },
  {
    name: "a deadline that passes while the replacement is fetched ends the call with DeadlineExceeded",
    call: { kind: "unary", timeoutMs: 400 },
    setup: (w) => {
      revokeCurrent(w);
      w.slowFetches(3_000);
    },
    expected: { code: Code.DeadlineExceeded, attempts: 1, fetches: 1, replays: 0 },
  },
  {
    name: "a caller that aborts while the replacement is fetched gets Canceled at once",
    // Google's runtime has no per-call abort for unary calls.
    adapters: ["connect protocol", "grpc-web protocol"],
    call: { kind: "unary", abortOnFetch: true },
    setup: (w) => {
      revokeCurrent(w);
      w.slowFetches(3_000);
    },
    expected: { code: Code.Canceled, attempts: 1, fetches: 1, replays: 0 },
  },
  {
    name: "an isAuthError that throws counts as no: no replay, the refusal reaches the caller",
    call: { kind: "unary" },
    setup: (w) => {
      revokeCurrent(w);
      w.throwingPredicate();
    },
    expected: { code: Code.Unauthenticated, attempts: 1, fetches: 0, replays: 0 },
  },
];

/** Refuses the source's current token at the API. */
function revokeCurrent(w: World): void {
  const token = w.tokens.current?.();
  if (token === undefined) throw new Error("the warm-up call proved no token");
  w.api.revokeAccessToken(token);
}

async function startWorld(provider: OidcProvider, adapter: Adapter): Promise<World> {
  const api = await startResourceServer(provider, { requireNonce: true });
  const keyPair = await generateKeyPair("ES256");
  const { refresh_token } = await signIn(provider, { dpop: keyPair });
  const grant = refreshTokenGrant({
    endpoint: provider.token,
    clientId: provider.clientId,
    refreshToken: refresh_token,
  });
  let fetches = 0;
  let deny = false;
  let delayMs = 0;
  let throwing = false;
  const fetchStarted = new EventTarget();
  const tokens = createTokenSource({
    fetchToken: async (context) => {
      fetches++;
      fetchStarted.dispatchEvent(new Event("fetch"));
      // Time is the subject: a token endpoint slower than the call's deadline.
      if (delayMs > 0) await sleep(delayMs);
      const result = await grant(context);
      const token = typeof result === "string" ? result : result.token;
      if (deny) api.revokeAccessToken(token);
      return result;
    },
    dpop: dpopProofs({ keyPair }),
  });
  const events: TokenEvent[] = [];
  tokens.subscribe((event) => events.push(event));
  const replays: ReplayEvent[] = [];
  const options = {
    onReplay: (event: ReplayEvent) => replays.push(event),
    isAuthError: (error: { code: number }) => {
      if (throwing) throw new Error("the app's predicate broke");
      return error.code === Code.Unauthenticated;
    },
  };
  const world: World = {
    api,
    tokens,
    fetches: () => fetches,
    replays,
    events,
    denyNewTokens: () => {
      deny = true;
    },
    slowFetches: (ms) => {
      delayMs = ms;
    },
    throwingPredicate: () => {
      throwing = true;
    },
    call: callVia(adapter, api, tokens, options, fetchStarted),
  };
  return world;
}

function callVia(
  adapter: Adapter,
  api: ResourceServer,
  tokens: TokenSource,
  options: {
    onReplay: (event: ReplayEvent) => void;
    isAuthError: (error: { code: number }) => boolean;
  },
  fetchStarted: EventTarget,
): World["call"] {
  if (adapter === "grpc-web runtime") {
    const client = new GrpcWebClientBase({
      format: "binary",
      ...createGrpcWebInterceptors(tokens, { ...options, baseUrl: api.url }),
    });
    return async ({ kind, timeoutMs, failAfter }) => {
      const metadata: Metadata =
        timeoutMs === undefined ? {} : { deadline: String(Date.now() + timeoutMs) };
      if (kind === "stream") {
        const outcome = await drain(
          grpcWebTicks(client, api.url, { count: 3, failAfter: failAfter ?? 0 }, metadata),
        );
        return { code: outcome.error?.code ?? 0, ticks: outcome.ticks.length };
      }
      try {
        await grpcWebWhoAmI(client, api.url, metadata);
        return { code: 0 };
      } catch (error) {
        return { code: (error as { code: number }).code };
      }
    };
  }
  const interceptors: Interceptor[] = [createAuthInterceptor(tokens, options)];
  const transport =
    adapter === "connect protocol"
      ? createConnectTransport({ baseUrl: api.url, interceptors })
      : createGrpcWebTransport({ baseUrl: api.url, interceptors });
  const client = createClient(DemoService, transport);
  return async ({ kind, timeoutMs, failAfter, abortOnFetch }) => {
    const controller = new AbortController();
    if (abortOnFetch) {
      fetchStarted.addEventListener("fetch", () => controller.abort(), { once: true });
    }
    const callOptions = {
      signal: controller.signal,
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
    };
    let ticks = 0;
    try {
      if (kind === "stream") {
        const stream = client.ticks({ count: 3, failAfter: failAfter ?? 0 }, callOptions);
        for await (const _ of stream) ticks++;
        return { code: 0, ticks };
      }
      await client.whoAmI({}, callOptions);
      return { code: 0 };
    } catch (error) {
      const code = (error as { code: number }).code;
      return kind === "stream" ? { code, ticks } : { code };
    }
  };
}

describe.each(ADAPTERS)("the replay table through the %s", (adapter) => {
  let provider: OidcProvider;
  beforeAll(async () => {
    provider = await startOidcProvider();
  });
  afterAll(() => provider.close());

  const rows = ROWS.filter((row) => row.adapters?.includes(adapter) ?? true);
  it.each(rows)("$name", async (row) => {
    const world = await startWorld(provider, adapter);
    try {
      // Warm-up: learn the nonce, prove the first token.
      expect((await world.call({ kind: "unary" })).code).toBe(0);
      row.setup(world);
      world.api.resetStats();
      const fetchesBefore = world.fetches();
      const replaysBefore = world.replays.length;

      const outcome = await world.call(row.call);

      const { expected } = row;
      expect(outcome).toEqual(
        row.call.kind === "stream"
          ? { code: expected.code, ticks: expected.ticks }
          : { code: expected.code },
      );
      const stats = world.api.stats();
      const method = row.call.kind === "stream" ? "Ticks" : "WhoAmI";
      expect(stats.calls[method] ?? 0).toBe(expected.attempts);
      expect(world.fetches() - fetchesBefore).toBe(expected.fetches);
      expect(world.replays.length - replaysBefore).toBe(expected.replays);
      const ended = world.events.filter((event) => event.type === "session-ended");
      expect(ended).toEqual(
        expected.sessionEnded === undefined
          ? []
          : [{ type: "session-ended", reason: expected.sessionEnded }],
      );
    } finally {
      world.tokens.clear();
      await world.api.close();
    }
  });
});
