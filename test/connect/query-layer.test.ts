import { Code, ConnectError } from "@connectrpc/connect";
import {
  type DefaultOptions,
  QueryClient,
  QueryObserver,
  type QueryObserverResult,
} from "@tanstack/query-core";
import { describe, expect, it, onTestFinished, vi } from "vitest";
import { type AuthInterceptorOptions, isRetryableError } from "../../src/index.js";
import { type GatedBackend, startGatedBackend } from "../helpers/gated-backend.js";
import { type World as SharedWorld, startWorld as startSharedWorld } from "../helpers/world.js";

// The recipe: TanStack Query retries what another try can help (the server was unavailable), at
// most 3 times, and never an auth failure: the interceptor already refreshed and replayed once.
// retryDelay 0 keeps the tests fast; an app keeps TanStack's default delay.
const recipe: DefaultOptions = {
  queries: { retry: (count, error) => count < 3 && isRetryableError(error), retryDelay: 0 },
};

interface World extends SharedWorld<GatedBackend> {
  queryClient: QueryClient;
  /** The WhoAmI query under `key`; counts its query-function runs in `runs`. */
  whoAmI(key: string): {
    queryKey: string[];
    queryFn: (ctx: { signal: AbortSignal }) => Promise<string>;
  };
  /** How often a query function ran: the attempts TanStack Query made. */
  runs: number;
}

async function startWorld(
  defaultOptions: DefaultOptions = recipe,
  interceptor: AuthInterceptorOptions = {},
): Promise<World> {
  const shared = await startSharedWorld({
    backend: (authority) => startGatedBackend(authority),
    transport: "grpc-web",
    interceptor,
  });
  const queryClient = new QueryClient({ defaultOptions });
  onTestFinished(() => queryClient.clear());
  const world: World = {
    ...shared,
    queryClient,
    runs: 0,
    whoAmI: (key) => ({
      queryKey: ["whoAmI", key],
      queryFn: async ({ signal }) => {
        world.runs++;
        return (await shared.client.whoAmI({}, { signal })).subject;
      },
    }),
  };
  return world;
}

/** Mounts a query as a component would (no framework): resolves once it settled. */
function observe(w: World, key: string): Promise<QueryObserverResult<string, Error>> {
  const observer = new QueryObserver<string, Error, string, string, string[]>(
    w.queryClient,
    w.whoAmI(key),
  );
  return new Promise((resolve) => {
    const unsubscribe = observer.subscribe((result) => {
      if (result.status !== "pending" && result.fetchStatus === "idle") {
        unsubscribe();
        resolve(result);
      }
    });
  });
}

const unavailable = () => new ConnectError("overloaded", Code.Unavailable);

describe("TanStack Query with isRetryableError as its retry", () => {
  it("succeeds after one replay and one token request when the token was revoked", async () => {
    const w = await startWorld();
    expect((await observe(w, "first")).data).toBe("alice");
    w.authority.revokeAll();
    const result = await observe(w, "second");
    expect(result.status).toBe("success");
    expect(result.data).toBe("alice");
    expect(w.endpoint.requests).toBe(2);
    // One run per query; the second was refused once and replayed once by the interceptor.
    expect(w.runs).toBe(2);
    expect(w.backend.calls).toHaveLength(3);
  });

  it("fails a query the server keeps refusing once: its retries add no token requests and no attempts beyond the one replay", async () => {
    const w = await startWorld();
    w.authority.accepts = () => false;
    const result = await observe(w, "refused");
    expect(result.status).toBe("error");
    expect(ConnectError.from(result.error).code).toBe(Code.Unauthenticated);
    expect(result.failureCount).toBe(1);
    expect(w.runs).toBe(1);
    expect(w.backend.calls).toHaveLength(2);
    expect(w.endpoint.requests).toBe(2);
  });

  it("makes fewer attempts and token requests than TanStack's default retry of 3 would for a server that keeps refusing", async () => {
    const counts = async (defaults: DefaultOptions) => {
      const w = await startWorld(defaults);
      w.authority.accepts = () => false;
      const result = await observe(w, "refused");
      expect(result.status).toBe("error");
      return { runs: w.runs, attempts: w.backend.calls.length, tokenRequests: w.endpoint.requests };
    };
    const withRecipe = await counts(recipe);
    expect(withRecipe).toEqual({ runs: 1, attempts: 2, tokenRequests: 2 });

    // TanStack's browser default (Node's is 0): 3 retries. Without waits they land inside the
    // token source's backoff and reach neither server: only the query function runs again.
    const immediate = await counts({ queries: { retry: 3, retryDelay: 0 } });
    expect(immediate.runs).toBeGreaterThan(withRecipe.runs);
    expect(immediate.attempts).toBeGreaterThanOrEqual(withRecipe.attempts);
    expect(immediate.tokenRequests).toBeGreaterThanOrEqual(withRecipe.tokenRequests);

    // With TanStack's default waits (1 s, 2 s, 4 s), which outlast the backoff, every retry
    // fetches a token and sends the call again. The waits pass on Date's clock, not in real time.
    onTestFinished(() => {
      vi.useRealTimers();
    });
    const defaultWaits = await counts({
      queries: {
        retry: 3,
        retryDelay: (failures) => {
          vi.setSystemTime(Date.now() + Math.min(1000 * 2 ** failures, 30_000));
          return 0;
        },
      },
    });
    vi.useRealTimers();
    expect(defaultWaits.runs).toBeGreaterThan(withRecipe.runs);
    expect(defaultWaits.attempts).toBeGreaterThan(withRecipe.attempts);
    expect(defaultWaits.tokenRequests).toBeGreaterThan(withRecipe.tokenRequests);
  });

  it("retries a call the server answered Unavailable, and the third attempt succeeds with one token request", async () => {
    const w = await startWorld();
    w.backend.failNext(2, unavailable);
    const result = await observe(w, "overloaded");
    expect(result.status).toBe("success");
    expect(result.data).toBe("alice");
    expect(w.runs).toBe(3);
    expect(w.backend.calls).toHaveLength(3);
    expect(w.endpoint.requests).toBe(1);
  });

  it("stops retrying Unavailable after 3 retries", async () => {
    const w = await startWorld();
    w.backend.failNext(10, unavailable);
    const result = await observe(w, "down");
    expect(result.status).toBe("error");
    expect(ConnectError.from(result.error).code).toBe(Code.Unavailable);
    expect(w.runs).toBe(4);
    expect(w.backend.calls).toHaveLength(4);
    expect(w.endpoint.requests).toBe(1);
  });

  it("does not retry a query that failed because the token endpoint refused the password", async () => {
    const w = await startWorld();
    w.endpoint.behave((_req, res) => {
      res.writeHead(401, { "content-type": "text/plain" }).end("bad credentials");
    });
    const result = await observe(w, "signed-out");
    expect(result.status).toBe("error");
    expect(ConnectError.from(result.error).code).toBe(Code.Unauthenticated);
    expect(w.runs).toBe(1);
    expect(w.backend.calls).toHaveLength(0);
    expect(w.endpoint.requests).toBe(1);
  });

  it("does not retry a PermissionDenied meaning expired when isRetryableError gets the interceptor's isAuthError", async () => {
    const isAuthError = (error: { code: number }) => error.code === Code.PermissionDenied;
    const run = async (defaults: DefaultOptions) => {
      const w = await startWorld(defaults, { isAuthError });
      w.backend.refuse = () => new ConnectError("token expired", Code.PermissionDenied);
      w.authority.accepts = () => false;
      const result = await observe(w, "expired");
      expect(result.status).toBe("error");
      return { runs: w.runs, error: result.error };
    };
    const told = await run({
      queries: {
        retry: (count, error) => count < 3 && isRetryableError(error, { isAuthError }),
        retryDelay: 0,
      },
    });
    expect(told.runs).toBe(1);
    expect(ConnectError.from(told.error).code).toBe(Code.PermissionDenied);

    // Not told: PermissionDenied looks retryable, and TanStack Query runs the query again.
    const untold = await run(recipe);
    expect(isRetryableError(new ConnectError("token expired", Code.PermissionDenied))).toBe(true);
    expect(untold.runs).toBeGreaterThan(told.runs);
  });

  it.each([
    ["the server refused the token that replaced a refused one", "token-refused"],
    ["the token endpoint refused the password", "credentials-refused"],
  ])("sends the app to its sign-in once, and drops its queries, when %s", async (_, reason) => {
    const w = await startWorld();
    if (reason === "token-refused") w.authority.accepts = () => false;
    else {
      w.endpoint.behave((_req, res) => {
        res.writeHead(401, { "content-type": "text/plain" }).end("bad credentials");
      });
    }
    const goToSignIn = vi.fn();
    w.tokens.subscribe((event) => {
      if (event.type !== "session-ended") return;
      goToSignIn(event.reason);
      void w.queryClient.cancelQueries();
      w.queryClient.clear();
    });
    const settled = await Promise.allSettled(
      ["profile", "settings", "inbox"].map((key) => w.queryClient.fetchQuery(w.whoAmI(key))),
    );
    expect(settled.map((s) => s.status)).toEqual(["rejected", "rejected", "rejected"]);
    expect(goToSignIn.mock.calls).toEqual([[reason]]);
    expect(w.queryClient.getQueryCache().getAll()).toEqual([]);
    expect(w.endpoint.requests).toBeLessThanOrEqual(2);
    expect(w.runs).toBe(3);
  });
});
