import { describe, expect, it, onTestFinished, vi } from "vitest";
import {
  createTokenSource,
  type PasswordGrantOptions,
  passwordGrant,
  shareAcrossTabs,
  type TokenEvent,
  TokenFetchError,
  type TokenSourceOptions,
} from "../../src/index.js";
import { type Authority, createAuthority } from "../helpers/authority.js";
import { useTestClock } from "../helpers/clock.js";
import { makeJwt } from "../helpers/jwt.js";
import { startTokenEndpoint, TEST_USER, type TokenEndpoint } from "../helpers/token-endpoint.js";
import { nextEvent, sleep, waitFor } from "../helpers/wait.js";

async function setup(options: { ttlSeconds?: number; expiresIn?: boolean; delayMs?: number } = {}) {
  const authority: Authority = createAuthority({ ttlSeconds: options.ttlSeconds ?? 300 });
  const endpoint: TokenEndpoint = await startTokenEndpoint(authority, options);
  onTestFinished(() => endpoint.close());
  const source = (
    extra: Partial<Omit<PasswordGrantOptions, "endpoint">> &
      Omit<Partial<TokenSourceOptions>, "fetchToken"> = {},
  ) => {
    const { credentials = TEST_USER, http, ...sourceOptions } = extra;
    return createTokenSource({
      fetchToken: passwordGrant({ endpoint: endpoint.url, credentials, http }),
      ...sourceOptions,
    });
  };
  return { authority, endpoint, source };
}

/** A fetchToken that counts calls and hands out numbered tokens expiring after `lifetimeMs`. */
function countingFetch(lifetimeMs?: number) {
  const calls = { count: 0 };
  const fetchToken = async () => {
    calls.count++;
    const token = `token-${calls.count}`;
    return lifetimeMs === undefined ? token : { token, expiresAt: Date.now() + lifetimeMs };
  };
  return { calls, fetchToken };
}

describe("createTokenSource", () => {
  it("posts the username and password as JSON and returns the token", async () => {
    const { authority, endpoint, source } = await setup();
    let seen: { method?: string | undefined; type?: string | undefined; body?: unknown } = {};
    endpoint.behave((req, res, body) => {
      seen = { method: req.method, type: req.headers["content-type"], body: JSON.parse(body) };
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ token: authority.mint("alice") }));
    });
    const token = await source().getToken();
    expect(token).toBe(authority.minted[0]);
    expect(seen.method).toBe("POST");
    expect(seen.type).toMatch(/^application\/json/);
    expect(seen.body).toEqual({ username: TEST_USER.username, password: TEST_USER.password });
  });

  it("makes one request for 100 concurrent cold callers", async () => {
    const { endpoint, source } = await setup({ delayMs: 50 });
    const tokens = source();
    const results = await Promise.all(Array.from({ length: 100 }, () => tokens.getToken()));
    expect(endpoint.requests).toBe(1);
    expect(new Set(results).size).toBe(1);
  });

  it("serves the cached token without another request", async () => {
    const { endpoint, source } = await setup();
    const tokens = source();
    const first = await tokens.getToken();
    for (let i = 0; i < 10; i++) expect(await tokens.getToken()).toBe(first);
    expect(endpoint.requests).toBe(1);
  });

  it("accepts access_token with expires_in, OAuth style", async () => {
    const { endpoint, source } = await setup();
    endpoint.behave((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ access_token: "opaque-access-token", expires_in: 120 }));
    });
    const tokens = source();
    expect(await tokens.getToken()).toBe("opaque-access-token");
    const expiresAt = tokens.peek()?.expiresAt ?? 0;
    expect(Math.abs(expiresAt - (Date.now() + 120_000))).toBeLessThan(1_000);
  });

  it("asks the credentials function before every fetch", async () => {
    const { endpoint, source } = await setup();
    let asked = 0;
    const tokens = source({
      credentials: async () => {
        asked++;
        return TEST_USER;
      },
    });
    await tokens.getToken();
    tokens.clear();
    await tokens.getToken();
    expect(asked).toBe(2);
    expect(endpoint.requests).toBe(2);
  });

  it("refreshes a token inside the refresh margin before handing it out", async () => {
    const { calls, fetchToken } = countingFetch(600);
    // The 30 s margin is capped at half the 600 ms lifetime: refresh after 300 ms.
    const clock = useTestClock();
    const tokens = createTokenSource({ fetchToken });
    expect(await tokens.getToken()).toBe("token-1");
    clock.advance(100);
    expect(await tokens.getToken()).toBe("token-1");
    clock.advance(300);
    expect(await tokens.getToken()).toBe("token-2");
    expect(calls.count).toBe(2);
  });

  it("does not refetch on every call for tokens shorter than the margin", async () => {
    const { calls, fetchToken } = countingFetch(1_000);
    const tokens = createTokenSource({ fetchToken, refreshMarginMs: 60_000 });
    for (let i = 0; i < 50; i++) await tokens.getToken();
    expect(calls.count).toBe(1);
  });

  it("uses a refreshMarginMs of 0 to keep a token until it expires", async () => {
    const { calls, fetchToken } = countingFetch(300);
    const clock = useTestClock();
    const tokens = createTokenSource({ fetchToken, refreshMarginMs: 0 });
    await tokens.getToken();
    clock.advance(200);
    expect(await tokens.getToken()).toBe("token-1");
    clock.advance(150);
    expect(await tokens.getToken()).toBe("token-2");
    expect(calls.count).toBe(2);
  });

  for (const skewHours of [1, -1]) {
    it(`measures lifetime from arrival when the issuer's clock is ${skewHours > 0 ? "ahead" : "behind"} by an hour`, async () => {
      const { authority, endpoint, source } = await setup({ ttlSeconds: 600 });
      authority.issuerSkewMs = skewHours * 3_600_000;
      const tokens = source();
      const first = await tokens.getToken();
      for (let i = 0; i < 20; i++) expect(await tokens.getToken()).toBe(first);
      expect(endpoint.requests).toBe(1);
      // 600 s less one second of rounding for whole-second claims, from the local arrival time.
      const expiresAt = tokens.peek()?.expiresAt ?? 0;
      expect(Math.abs(expiresAt - (Date.now() + 599_000))).toBeLessThan(2_000);
      expect(authority.accepts(first)).toBe(true);
    });
  }

  it("uses an opaque token with no expiry until the server rejects it", async () => {
    const { calls, fetchToken } = countingFetch();
    const tokens = createTokenSource({ fetchToken });
    for (let i = 0; i < 5; i++) expect(await tokens.getToken()).toBe("token-1");
    expect(tokens.peek()).toEqual({ expiresAt: undefined, fresh: true });
    expect(await tokens.refresh("token-1")).toBe("token-2");
    expect(calls.count).toBe(2);
  });

  it("treats a JWT whose payload is not base64 JSON as opaque", async () => {
    const tokens = createTokenSource({ fetchToken: async () => "aaa.%%%.ccc" });
    expect(await tokens.getToken()).toBe("aaa.%%%.ccc");
    expect(tokens.peek()?.expiresAt).toBeUndefined();
  });

  it("reads expiry from the JWT exp and iat when there is no expires_in", async () => {
    const now = Math.floor(Date.now() / 1000);
    const jwt = makeJwt({ sub: "alice", iat: now, exp: now + 100 });
    const tokens = createTokenSource({ fetchToken: async () => jwt });
    await tokens.getToken();
    const expiresAt = tokens.peek()?.expiresAt ?? 0;
    expect(Math.abs(expiresAt - (Date.now() + 99_000))).toBeLessThan(1_500);
  });

  it("uses a JWT without iat whose exp has passed by the local clock, expiry unknown", async () => {
    // The signer's clock may be ahead of this one's: the server decides, not the client.
    const jwt = makeJwt({ sub: "alice", exp: Math.floor(Date.now() / 1000) - 60 });
    const tokens = createTokenSource({ fetchToken: async () => jwt });
    expect(await tokens.getToken()).toBe(jwt);
    expect(tokens.peek()).toEqual({ expiresAt: undefined, fresh: true });
  });

  it("reads a JWT without iat against the endpoint's Date header when there is one", async () => {
    const serverDate = Date.now() - 3_600_000;
    const jwt = makeJwt({ sub: "alice", exp: Math.floor(serverDate / 1000) + 100 });
    const tokens = createTokenSource({ fetchToken: async () => ({ token: jwt, serverDate }) });
    await tokens.getToken();
    const expiresAt = tokens.peek()?.expiresAt ?? 0;
    expect(Math.abs(expiresAt - (Date.now() + 99_000))).toBeLessThan(1_500);
  });

  it("refuses a JWT expired by its own claims, naming them", async () => {
    const now = Math.floor(Date.now() / 1000);
    const jwt = makeJwt({ sub: "alice", iat: now, exp: now - 1 });
    const tokens = createTokenSource({ fetchToken: async () => jwt });
    const error = (await tokens.getToken().catch((e: unknown) => e)) as TokenFetchError;
    expect(error).toMatchObject({ code: 13 });
    expect(error.message).toContain(`its claims say exp ${now - 1} ≤ iat ${now}`);
    expect(error.message).not.toContain(jwt);
  });

  it("fails with Internal when a custom expiresAt looks like seconds", async () => {
    const tokens = createTokenSource({
      fetchToken: async () => ({ token: "t", expiresAt: Math.floor(Date.now() / 1000) + 60 }),
    });
    const error = (await tokens.getToken().catch((e: unknown) => e)) as TokenFetchError;
    expect(error).toMatchObject({ code: 13 });
    expect(error.message).toMatch(/looks like seconds/);
  });

  describe("refresh", () => {
    it("fetches once for many concurrent callers refreshing the same rejected token", async () => {
      const { endpoint, source } = await setup({ delayMs: 30 });
      const tokens = source();
      const rejected = await tokens.getToken();
      const fresh = await Promise.all(Array.from({ length: 50 }, () => tokens.refresh(rejected)));
      expect(endpoint.requests).toBe(2);
      expect(new Set(fresh).size).toBe(1);
      expect(fresh[0]).not.toBe(rejected);
    });

    it("returns the newer token at once when the rejected one is no longer cached", async () => {
      const { calls, fetchToken } = countingFetch();
      const tokens = createTokenSource({ fetchToken });
      const first = await tokens.getToken();
      const second = await tokens.refresh(first);
      expect(await tokens.refresh(first)).toBe(second);
      expect(calls.count).toBe(2);
    });

    it("never hands out a token the server rejected, even if the endpoint returns it again", async () => {
      const tokens = createTokenSource({ fetchToken: async () => "same-token" });
      const first = await tokens.getToken();
      const error = await tokens.refresh(first).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TokenFetchError);
      expect((error as TokenFetchError).code).toBe(16);
      expect((error as TokenFetchError).message).not.toContain("same-token");
    });

    it("fails at once with Unauthenticated when the token that replaced the rejected one was refused too", async () => {
      const { calls, fetchToken } = countingFetch();
      const tokens = createTokenSource({ fetchToken });
      const events: TokenEvent[] = [];
      tokens.subscribe((event) => events.push(event));
      const first = await tokens.getToken();
      const second = await tokens.refresh(first);
      tokens.invalidate(second);
      await expect(tokens.refresh(first)).rejects.toMatchObject({
        code: 16,
        reason: "token-refused",
      });
      expect(calls.count).toBe(2);
      expect(events).toContainEqual({ type: "session-ended", reason: "token-refused" });
    });

    it("fails with Unauthenticated for a token from before clear(), without fetching", async () => {
      const { calls, fetchToken } = countingFetch();
      const tokens = createTokenSource({ fetchToken });
      const old = await tokens.getToken();
      tokens.clear();
      await expect(tokens.refresh(old)).rejects.toMatchObject({ code: 16 });
      expect(calls.count).toBe(1);
    });

    it("invalidate drops the token without fetching", async () => {
      const { calls, fetchToken } = countingFetch();
      const tokens = createTokenSource({ fetchToken });
      tokens.invalidate(await tokens.getToken());
      expect(calls.count).toBe(1);
      expect(tokens.peek()).toBeUndefined();
      expect(await tokens.getToken()).toBe("token-2");
    });
  });

  describe("single flight and aborts", () => {
    it("aborts only the caller's wait; the shared fetch goes on for the others", async () => {
      const { endpoint, source } = await setup({ delayMs: 200 });
      const tokens = source();
      const controller = new AbortController();
      const aborted = tokens.getToken({ signal: controller.signal });
      const other = tokens.getToken();
      setTimeout(() => controller.abort(), 20);
      await expect(aborted).rejects.toMatchObject({ name: "AbortError" });
      await expect(other).resolves.toMatch(/^ey/);
      expect(endpoint.requests).toBe(1);
      expect(tokens.peek()?.fresh).toBe(true);
    });

    it("rejects at once with an already aborted signal", async () => {
      const { calls, fetchToken } = countingFetch();
      const tokens = createTokenSource({ fetchToken });
      await expect(tokens.getToken({ signal: AbortSignal.abort() })).rejects.toMatchObject({
        name: "AbortError",
      });
      expect(calls.count).toBe(0);
    });

    it("finishes a fetch that every caller stopped waiting for, without an unhandled rejection", async () => {
      const { endpoint, source } = await setup({ delayMs: 100 });
      endpoint.behave(async (_req, res) => {
        // A slow answer, so every caller has stopped waiting before it fails.
        await sleep(100);
        res.writeHead(500).end();
      });
      const tokens = source({ http: undefined, timeoutMs: 300 });
      const failed = nextEvent(tokens, "error", { what: "the abandoned fetch to fail" });
      const controller = new AbortController();
      const waiting = tokens.getToken({ signal: controller.signal });
      controller.abort();
      await expect(waiting).rejects.toMatchObject({ name: "AbortError" });
      await failed;
    });

    it("bounds a fetchToken that never settles by timeoutMs", async () => {
      const tokens = createTokenSource({
        fetchToken: () => new Promise<string>(() => {}),
        timeoutMs: 100,
      });
      const started = Date.now();
      const error = (await tokens.getToken().catch((e: unknown) => e)) as TokenFetchError;
      expect(error).toBeInstanceOf(TokenFetchError);
      expect(error.code).toBe(14);
      expect(Date.now() - started).toBeLessThan(1_000);
    });

    it("falls back to the still-valid token when a refresh ahead of expiry fails", async () => {
      const clock = useTestClock();
      let call = 0;
      const tokens = createTokenSource({
        fetchToken: async () => {
          call++;
          if (call > 1) throw new TokenFetchError("down", { code: 14 });
          return { token: "still-good", expiresAt: Date.now() + 1_000 };
        },
      });
      await tokens.getToken();
      clock.advance(600);
      expect(await tokens.getToken()).toBe("still-good");
      expect(call).toBe(2);
    });
  });

  describe("clear and subscribe", () => {
    it("clear forgets the token and cancels a fetch under way", async () => {
      const { endpoint, source } = await setup({ delayMs: 100 });
      const tokens = source();
      await tokens.getToken();
      tokens.clear();
      expect(tokens.peek()).toBeUndefined();
      const waiting = tokens.getToken();
      await waitFor(() => endpoint.inFlight === 1, {
        what: "the second fetch to reach the endpoint",
      });
      tokens.clear();
      await expect(waiting).rejects.toMatchObject({ name: "TokenFetchError", code: 1 });
      await tokens.getToken();
      expect(endpoint.requests).toBe(3);
    });

    it("tells listeners about tokens, failures, rejections and clears without the token", async () => {
      const { endpoint, source } = await setup();
      const tokens = source();
      const events: TokenEvent[] = [];
      const unsubscribe = tokens.subscribe((event) => events.push(event));
      const token = await tokens.getToken();
      await tokens.refresh(token);
      endpoint.behave((_req, res) => {
        res.writeHead(401).end("no");
      });
      tokens.clear();
      await tokens.getToken().catch(() => {});
      unsubscribe();
      await tokens.refresh("x").catch(() => {});
      expect(events.map((e) => e.type)).toEqual([
        "token",
        "rejected",
        "token",
        "cleared",
        "session-ended",
        "error",
      ]);
      expect(events).toContainEqual({ type: "session-ended", reason: "credentials-refused" });
      const text = JSON.stringify(events);
      expect(text).not.toContain(token);
      expect(text).not.toContain(TEST_USER.password);
    });

    it("keeps working when a listener throws, and reports the error with console.error", async () => {
      const { calls, fetchToken } = countingFetch();
      const tokens = createTokenSource({ fetchToken });
      const uncaught: unknown[] = [];
      const onUncaught = (e: unknown) => uncaught.push(e);
      process.on("uncaughtException", onUncaught);
      const consoleError = vi.spyOn(console, "error").mockImplementation(() => {});
      try {
        tokens.subscribe(() => {
          throw new Error("listener bug");
        });
        expect(await tokens.getToken()).toBe("token-1");
        await waitFor(() => consoleError.mock.calls.length > 0, { what: "the listener's error" });
        expect(consoleError).toHaveBeenCalledTimes(1);
        expect(consoleError.mock.calls[0]?.[0]).toMatchObject({ message: "listener bug" });
      } finally {
        consoleError.mockRestore();
        process.off("uncaughtException", onUncaught);
      }
      expect(calls.count).toBe(1);
      expect(uncaught).toHaveLength(0);
    });
  });

  describe("bad options", () => {
    const fetchToken = async () => "t";
    const bad: [string, () => unknown, RegExp][] = [
      ["no fetchToken", () => createTokenSource({} as TokenSourceOptions), /fetchToken/],
      [
        "the old endpoint and credentials options",
        () =>
          createTokenSource({
            endpoint: "/t",
            credentials: TEST_USER,
          } as unknown as TokenSourceOptions),
        /fetchToken: passwordGrant\(\{ endpoint, credentials \}\)/,
      ],
      [
        "endpoint next to fetchToken",
        () =>
          createTokenSource({
            endpoint: "/t",
            credentials: TEST_USER,
            fetchToken,
          } as unknown as TokenSourceOptions),
        /passwordGrant/,
      ],
      [
        "endpoint without credentials",
        () => createTokenSource({ endpoint: "/t" } as unknown as TokenSourceOptions),
        /passwordGrant/,
      ],
      [
        "http next to fetchToken",
        () => createTokenSource({ fetchToken, http: {} } as unknown as TokenSourceOptions),
        /http/,
      ],
      [
        "a negative refreshMarginMs",
        () => createTokenSource({ fetchToken, refreshMarginMs: -1 }),
        /refreshMarginMs/,
      ],
      ["a negative timeoutMs", () => createTokenSource({ fetchToken, timeoutMs: -5 }), /timeoutMs/],
      ["a zero timeoutMs", () => createTokenSource({ fetchToken, timeoutMs: 0 }), /timeoutMs/],
      [
        "a NaN refreshMarginMs",
        () => createTokenSource({ fetchToken, refreshMarginMs: Number.NaN }),
        /refreshMarginMs/,
      ],
      [
        "fetchToken that is not a function",
        () => createTokenSource({ fetchToken: "t" } as unknown as TokenSourceOptions),
        /fetchToken/,
      ],
      [
        "crossTab: true",
        () => createTokenSource({ fetchToken, crossTab: true } as unknown as TokenSourceOptions),
        /crossTab.*shareAcrossTabs/,
      ],
      [
        "crossTab as a channel name",
        () => createTokenSource({ fetchToken, crossTab: "app" } as unknown as TokenSourceOptions),
        /crossTab.*shareAcrossTabs/,
      ],
      ["shareAcrossTabs without a channel", () => shareAcrossTabs(""), /shareAcrossTabs: channel/],
      [
        "passwordGrant without credentials",
        () => passwordGrant({ endpoint: "http://127.0.0.1/t" } as PasswordGrantOptions),
        /^passwordGrant: credentials/,
      ],
      [
        "passwordGrant credentials of the wrong shape",
        () =>
          passwordGrant({
            endpoint: "http://127.0.0.1/t",
            credentials: { user: "a" },
          } as unknown as PasswordGrantOptions),
        /^passwordGrant: credentials/,
      ],
      [
        "passwordGrant with an empty endpoint",
        () => passwordGrant({ endpoint: "", credentials: TEST_USER }),
        /^passwordGrant: endpoint/,
      ],
      [
        "passwordGrant with a relative endpoint and no http in Node",
        () => passwordGrant({ endpoint: "/t", credentials: TEST_USER }),
        /^passwordGrant: endpoint "\/t" is relative/,
      ],
    ];
    for (const [name, construct, message] of bad) {
      it(`throws a TypeError naming the option for ${name}`, () => {
        expect(construct).toThrow(TypeError);
        expect(construct).toThrow(message);
      });
    }

    it("refresh and invalidate reject a token that is not a string", () => {
      const tokens = createTokenSource({ fetchToken: async () => "t" });
      expect(() => tokens.refresh(undefined as unknown as string)).toThrow(TypeError);
      expect(() => tokens.invalidate(42 as unknown as string)).toThrow(TypeError);
    });
  });
});
