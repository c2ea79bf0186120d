/**
 * Sustained adversity: what the token endpoint and the server see when things stay broken, with
 * real loopback servers. Each test counts requests and attempts, never timings.
 */
import {
  Code,
  ConnectError,
  createClient,
  createRouterTransport,
  type Interceptor,
} from "@connectrpc/connect";
import { afterEach, describe, expect, it, vi } from "vitest";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";
import {
  createAuthInterceptor,
  createTokenSource,
  passwordGrant,
  type TokenEvent,
  type TokenFetchError,
} from "../../src/index.js";
import type { TransportKind } from "../helpers/backend.js";
import { useTestClock } from "../helpers/clock.js";
import { makeJwt } from "../helpers/jwt.js";
import { TEST_USER } from "../helpers/token-endpoint.js";
import { sleep, waitFor } from "../helpers/wait.js";
import { startWorld } from "../helpers/world.js";

afterEach(() => {
  vi.restoreAllMocks();
});

/** The shared world over `kind`, with credentials the test can change and a call that gives its code. */
async function makeWorld(kind: TransportKind = "grpc-web", options: { expiresIn?: boolean } = {}) {
  let credentials = TEST_USER;
  const world = await startWorld({ transport: kind, credentials: () => credentials, ...options });
  /** Makes a call and returns its code (0: OK). */
  const call = async () => {
    try {
      await world.client.whoAmI({});
      return 0;
    } catch (error) {
      return ConnectError.from(error).code;
    }
  };
  const setCredentials = (next: typeof TEST_USER) => {
    credentials = next;
  };
  return { ...world, call, setCredentials };
}

const ended = (events: TokenEvent[]) => events.filter((e) => e.type === "session-ended");

describe("a backend that rejects every token", () => {
  it("makes at most 2 token requests for a burst of 1,000 calls, each call at most 2 attempts", async () => {
    const world = await makeWorld("router");
    world.authority.accepts = () => false;
    const codes = await Promise.all(Array.from({ length: 1000 }, () => world.call()));
    expect(world.endpoint.requests).toBeLessThanOrEqual(2);
    expect(codes.every((code) => code === Code.Unauthenticated)).toBe(true);
    expect(world.authority.seen.length).toBeLessThanOrEqual(2000);
    expect(ended(world.events)).toEqual([{ type: "session-ended", reason: "token-refused" }]);
  });

  it("makes at most 5 token requests for 50 sequential calls, each at most 2 attempts", async () => {
    const world = await makeWorld();
    world.authority.accepts = () => false;
    for (let i = 0; i < 50; i++) {
      const before = world.authority.seen.length;
      expect(await world.call()).toBe(Code.Unauthenticated);
      expect(world.authority.seen.length - before).toBeLessThanOrEqual(2);
    }
    expect(world.endpoint.requests).toBeLessThanOrEqual(5);
    expect(ended(world.events)).toHaveLength(1);
  });

  it("fails the later calls fast, marked as repeated, without a request or an attempt", async () => {
    const world = await makeWorld("router");
    world.authority.accepts = () => false;
    await world.call();
    const requests = world.endpoint.requests;
    const attempts = world.authority.seen.length;
    const error = await world.client.whoAmI({}).catch((e: unknown) => ConnectError.from(e));
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.Unauthenticated);
    expect(((error as ConnectError).cause as TokenFetchError).repeated).toBe(true);
    expect(world.endpoint.requests).toBe(requests);
    expect(world.authority.seen.length).toBe(attempts);
  });

  it("still costs one token request and no failed call for a one-off revocation", async () => {
    const world = await makeWorld("router");
    expect(await world.call()).toBe(0);
    world.authority.revokeAll();
    const codes = await Promise.all(Array.from({ length: 200 }, () => world.call()));
    expect(codes.every((code) => code === 0)).toBe(true);
    expect(world.endpoint.requests).toBe(2);
    expect(ended(world.events)).toHaveLength(0);
  });

  it("settles under revocation churn: after each revocation one request, then calls succeed", async () => {
    const world = await makeWorld("router");
    for (let round = 1; round <= 5; round++) {
      world.authority.revokeAll();
      const codes = await Promise.all(Array.from({ length: 20 }, () => world.call()));
      expect(codes.every((code) => code === 0)).toBe(true);
    }
    expect(world.endpoint.requests).toBe(5);
  });

  it("sends session-ended once, and again only after a call succeeded with a new token", async () => {
    const world = await makeWorld("router");
    const accepts = world.authority.accepts;
    world.authority.accepts = () => false;
    for (let i = 0; i < 10; i++) await world.call();
    expect(ended(world.events)).toHaveLength(1);
    world.authority.accepts = accepts;
    world.tokens.clear();
    expect(await world.call()).toBe(0);
    world.authority.accepts = () => false;
    for (let i = 0; i < 10; i++) await world.call();
    expect(ended(world.events)).toHaveLength(2);
  });
});

describe("a token endpoint answering 503", () => {
  it("makes at most 6 POSTs for 30 sequential calls, then recovers within 10 s", async () => {
    const clock = useTestClock();
    const world = await makeWorld();
    world.endpoint.behave((_req, res) => {
      res.writeHead(503, { "content-type": "text/plain" }).end("down");
    });
    for (let i = 0; i < 30; i++) expect(await world.call()).toBe(Code.Unavailable);
    expect(world.endpoint.requests).toBeLessThanOrEqual(6);
    world.endpoint.behave(undefined);
    const recovered = Date.now();
    let code = -1;
    while (code !== 0 && Date.now() - recovered < 10_500) {
      code = await world.call();
      // The backoff's wait passes on the moved clock (Date.now() moves with it).
      if (code !== 0) clock.advance(100);
    }
    expect(code).toBe(0);
    expect(Date.now() - recovered).toBeLessThanOrEqual(10_500);
  });
});

describe("a wrong password", () => {
  it("is sent once for 10 calls, and again only when the credentials change", async () => {
    const world = await makeWorld();
    world.setCredentials({ username: "alice", password: "wrong" });
    for (let i = 0; i < 10; i++) expect(await world.call()).toBe(Code.Unauthenticated);
    expect(world.endpoint.requests).toBe(1);
    expect(ended(world.events)).toEqual([{ type: "session-ended", reason: "credentials-refused" }]);
    world.setCredentials(TEST_USER);
    expect(await world.call()).toBe(0);
    expect(world.endpoint.requests).toBe(2);
  });

  it("is sent again after clear()", async () => {
    const world = await makeWorld();
    world.setCredentials({ username: "alice", password: "wrong" });
    await world.call();
    await world.call();
    world.tokens.clear();
    await world.call();
    expect(world.endpoint.requests).toBe(2);
  });
});

describe("a token already expired by its own claims", () => {
  it("fails with Internal naming the claims, and later calls do not refetch", async () => {
    const world = await makeWorld();
    world.endpoint.behave((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          token: makeJwt({ sub: "alice", iat: 2_000_000_000, exp: 1_999_999_000 }),
        }),
      );
    });
    const error = await world.client.whoAmI({}).catch((e: unknown) => ConnectError.from(e));
    expect((error as ConnectError).code).toBe(Code.Internal);
    expect((error as ConnectError).message).toMatch(/exp 1999999000 ≤ iat 2000000000/);
    for (let i = 0; i < 10; i++) expect(await world.call()).toBe(Code.Internal);
    expect(world.endpoint.requests).toBe(1);
  });
});

describe("clear() while calls are in flight", () => {
  it("ends calls rejected after the logout without a token request, and peek() stays empty", async () => {
    const world = await makeWorld("router");
    expect(await world.call()).toBe(0);
    const requests = world.endpoint.requests;
    // The server holds every call until the logout, then refuses it.
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const accepts = world.authority.accepts;
    world.authority.accepts = () => false;
    let holding = 0;
    const slow: Interceptor = (next) => async (req) => {
      holding++;
      await held;
      return next(req);
    };
    const client = createClient(
      DemoService,
      world.backend.transport("router", [createAuthInterceptor(world.tokens), slow]),
    );
    const calls = Array.from({ length: 20 }, () =>
      client.whoAmI({}).then(
        () => 0,
        (e: unknown) => ConnectError.from(e).code,
      ),
    );
    await waitFor(() => holding === 20, { what: "the server to hold all 20 calls" });
    world.tokens.clear();
    release();
    const codes = await Promise.all(calls);
    expect(codes.every((code) => code === Code.Unauthenticated || code === Code.Canceled)).toBe(
      true,
    );
    expect(world.endpoint.requests).toBe(requests);
    expect(world.tokens.peek()).toBeUndefined();
    world.authority.accepts = accepts;
  });
});

describe("clocks that disagree", () => {
  it("uses a token whose signer is an hour behind the endpoint's Date header", async () => {
    const world = await makeWorld();
    world.endpoint.behave((_req, res) => {
      const iat = Math.floor(Date.now() / 1000) - 3600;
      const token = world.authority.mint("alice");
      // The token the service accepts, and a Date header an hour after the signer's clock.
      res.writeHead(200, {
        "content-type": "application/json",
        date: new Date(iat * 1000 + 7_200_000).toUTCString(),
      });
      res.end(JSON.stringify({ token }));
    });
    for (let i = 0; i < 10; i++) expect(await world.call()).toBe(0);
    expect(world.endpoint.requests).toBe(1);
  });

  it("uses an exp-only JWT while the page's clock runs 10 minutes fast and there is no Date header", async () => {
    const realNow = Date.now.bind(Date);
    let requests = 0;
    const tokens = createTokenSource({
      fetchToken: async () => {
        requests++;
        // exp 5 minutes ahead by the real clock: already past by the page's fast clock.
        return makeJwt({ sub: "alice", exp: Math.floor(realNow() / 1000) + 300 });
      },
    });
    vi.spyOn(Date, "now").mockImplementation(() => realNow() + 600_000);
    for (let i = 0; i < 10; i++) await tokens.getToken();
    expect(requests).toBe(1);
    expect(tokens.peek()).toEqual({ expiresAt: undefined, fresh: true });
  });
});

describe("a replay", () => {
  it("sends what is left of the deadline in its timeout header", async () => {
    const timeouts: (string | null)[] = [];
    let first = true;
    const routes = createRouterTransport(
      (router) =>
        router.service(DemoService, {
          whoAmI(_req, ctx) {
            timeouts.push(ctx.requestHeader.get("connect-timeout-ms"));
            if (first) {
              first = false;
              throw new ConnectError("revoked", Code.Unauthenticated);
            }
            return { subject: "alice" };
          },
        }),
      {
        transport: {
          interceptors: [
            createAuthInterceptor(
              createTokenSource({
                fetchToken: async () => {
                  // The fetch's duration is the subject: the replay's deadline is shorter by it.
                  await sleep(150);
                  return `token-${Date.now()}`;
                },
              }),
            ),
          ],
        },
      },
    );
    const client = createClient(DemoService, routes);
    await client.whoAmI({}, { timeoutMs: 5_000 });
    expect(timeouts).toHaveLength(2);
    const [before, after] = timeouts.map(Number) as [number, number];
    expect(before).toBeLessThanOrEqual(5_000);
    expect(after).toBeLessThanOrEqual(before - 150);
    expect(after).toBeGreaterThan(0);
  });
});

describe("app code that throws", () => {
  it("reports a throwing listener and onReplay with console.error where there is no reportError", async () => {
    const reported = vi.spyOn(console, "error").mockImplementation(() => {});
    const world = await makeWorld("router");
    world.tokens.subscribe(() => {
      throw new Error("listener broke");
    });
    const client = createClient(
      DemoService,
      world.backend.transport("router", [
        createAuthInterceptor(world.tokens, {
          onReplay: () => {
            throw new Error("onReplay broke");
          },
        }),
      ]),
    );
    await client.whoAmI({});
    world.authority.revokeAll();
    await client.whoAmI({});
    const messages = await waitFor(
      () => {
        const reports = reported.mock.calls.map(([error]) => (error as Error).message);
        return reports.includes("listener broke") && reports.includes("onReplay broke") && reports;
      },
      { what: "both errors to be reported" },
    );
    expect(messages).toContain("listener broke");
    expect(messages).toContain("onReplay broke");
  });
});

describe("messages that tell the truth", () => {
  it("says an expiresAt below 1e12 looks like seconds", async () => {
    const tokens = createTokenSource({
      fetchToken: async () => ({ token: "t", expiresAt: Math.floor(Date.now() / 1000) + 60 }),
    });
    await expect(tokens.getToken()).rejects.toThrow(/looks like seconds/);
  });

  it("refuses a relative endpoint in Node with a TypeError at construction", () => {
    expect(() => passwordGrant({ endpoint: "/auth/token", credentials: TEST_USER })).toThrow(
      /relative/,
    );
  });

  it("says a network failure may be CORS", async () => {
    const tokens = createTokenSource({
      fetchToken: passwordGrant({
        endpoint: "http://127.0.0.1:9/auth/token",
        credentials: TEST_USER,
      }),
    });
    const error = await tokens.getToken().catch((e: unknown) => e as TokenFetchError);
    expect((error as TokenFetchError).message).toMatch(/CORS/);
  });
});
