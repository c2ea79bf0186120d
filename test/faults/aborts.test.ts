import { getEventListeners } from "node:events";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { TokenFetchError } from "../../src/index.js";
import {
  collectTicks,
  type FaultWorld,
  type FaultWorldOptions,
  settle,
  startFaultWorld,
} from "../helpers/fault-world.js";
import { answerAfter, mintFrom } from "../helpers/hostile-endpoint.js";
import { findLeaks, useQuietProcess } from "../helpers/leak-watch.js";
import { TEST_USER } from "../helpers/token-endpoint.js";

// A caller that stops waiting, a deadline that passes, a logout in the middle: the call in
// question settles at once with the right code, every other caller is unaffected, one request
// is made, and nothing is left behind.

/** Generous: these calls settle in milliseconds; a call stuck until the fetch ends takes longer. */
const PROMPTLY_MS = 1_500;
const SLOW_FETCH_MS = 2_500;

const worlds: FaultWorld[] = [];
const watch = useQuietProcess(async () => {
  for (const w of worlds.splice(0)) await w.close();
});

async function world(options: FaultWorldOptions = {}): Promise<FaultWorld> {
  const w = await startFaultWorld(options);
  worlds.push(w);
  return w;
}

/** The token endpoint mints, but only after `ms`. */
function slowMint(w: FaultWorld, ms = SLOW_FETCH_MS) {
  w.endpoint.behave(answerAfter(ms, mintFrom(w.authority)));
}

function expectNoLeaks(w: FaultWorld, values: unknown[]) {
  const secrets: Record<string, string> = { "the password": TEST_USER.password };
  w.authority.minted.forEach((token, i) => {
    secrets[`minted token ${i}`] = token;
  });
  expect(findLeaks([...values, ...w.events, ...watch().consoleCalls()], secrets)).toEqual([]);
}

function abortAfter(ms: number): AbortController {
  const controller = new AbortController();
  setTimeout(() => controller.abort(), ms);
  return controller;
}

/** Polls until the endpoint has received `n` requests. */
async function requestsReach(w: FaultWorld, n: number) {
  await expect.poll(() => w.endpoint.requests, { timeout: 5_000, interval: 5 }).toBe(n);
}

describe("a caller that aborts during a shared token fetch", () => {
  it("stops waiting alone: getToken() rejects with its AbortError while the others get the token from one request", async () => {
    const w = await world({ delayMs: 300 });
    const controller = abortAfter(30);
    const others = Array.from({ length: 4 }, () => w.tokens.getToken());

    const aborted = await settle(() => w.tokens.getToken({ signal: controller.signal }));

    expect(aborted.error).toMatchObject({ name: "AbortError" });
    expect(aborted.ms).toBeLessThan(PROMPTLY_MS);
    const tokens = await Promise.all(others);
    expect(new Set(tokens)).toEqual(new Set(w.authority.minted));
    expect(w.endpoint.requests).toBe(1);
    // The aborted wait took its abort listener with it.
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
    expectNoLeaks(w, [aborted.error]);
  });

  it("removes its abort listener from a long-lived signal once its token arrives", async () => {
    const w = await world({ delayMs: 50 });
    const controller = new AbortController();
    for (let i = 0; i < 20; i++) {
      await w.tokens.getToken({ signal: controller.signal });
      if (i % 5 === 0) w.tokens.clear();
    }
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
  });

  it("ends its call with Canceled while the other unary and streaming calls go through on one request", async () => {
    const w = await world({ delayMs: 300 });
    const controller = abortAfter(30);
    const others = Promise.all([
      w.client.whoAmI({}),
      w.client.whoAmI({}),
      collectTicks(w.client.ticks({ count: 2 })),
    ]);

    const aborted = await settle(() =>
      collectTicks(w.client.ticks({ count: 2 }, { signal: controller.signal })),
    );

    expect(ConnectError.from(aborted.error).code).toBe(Code.Canceled);
    expect(aborted.ms).toBeLessThan(PROMPTLY_MS);
    const [a, b, ticks] = await others;
    expect([a.subject, b.subject, ticks]).toEqual(["alice", "alice", [1, 2]]);
    expect(w.endpoint.requests).toBe(1);
    // The aborted call never reached the service.
    expect(w.authority.seen).toHaveLength(3);
    expectNoLeaks(w, [aborted.error]);
  });

  it("ends at once, without a request, when its signal was aborted before it started", async () => {
    const w = await world();
    const signal = AbortSignal.abort();

    const direct = await settle(() => w.tokens.getToken({ signal }));
    const call = await settle(() => w.client.whoAmI({}, { signal }));

    expect(direct.error).toMatchObject({ name: "AbortError" });
    expect(ConnectError.from(call.error).code).toBe(Code.Canceled);
    expect(w.endpoint.requests).toBe(0);
    expect(w.authority.seen).toEqual([]);
    expectNoLeaks(w, [direct.error, call.error]);
  });

  it("ends its call with Canceled while its replay waits for the refreshed token; the refresh goes on for the others", async () => {
    const w = await world();
    await w.client.whoAmI({});
    w.authority.revokeAll();
    slowMint(w, 300);
    const other = w.client.whoAmI({});
    const controller = new AbortController();
    const aborting = settle(() => w.client.whoAmI({}, { signal: controller.signal }));
    await requestsReach(w, 2);
    controller.abort();

    const aborted = await aborting;

    expect(ConnectError.from(aborted.error).code).toBe(Code.Canceled);
    expect((await other).subject).toBe("alice");
    expect(w.endpoint.requests).toBe(2);
    // Only the call that went on was replayed.
    expect(w.replays).toHaveLength(1);
    expectNoLeaks(w, [aborted.error]);
  });
});

describe("a call whose deadline passes while it waits for a token", () => {
  it("ends with DeadlineExceeded on time while the fetch goes on for a call without a deadline", async () => {
    const w = await world();
    slowMint(w, 600);
    const patient = w.client.whoAmI({});

    const late = await settle(() => w.client.whoAmI({}, { timeoutMs: 100 }));

    expect(ConnectError.from(late.error).code).toBe(Code.DeadlineExceeded);
    expect(late.ms).toBeGreaterThanOrEqual(90);
    expect(late.ms).toBeLessThan(100 + PROMPTLY_MS);
    expect((await patient).subject).toBe("alice");
    expect(w.endpoint.requests).toBe(1);
    expect(w.authority.seen).toHaveLength(1);
    expectNoLeaks(w, [late.error]);
  });

  it("ends with DeadlineExceeded when it passes during the replay's refresh, and is not replayed", async () => {
    const w = await world();
    await w.client.whoAmI({});
    w.authority.revokeAll();
    slowMint(w, 600);

    const late = await settle(() => collectTicks(w.client.ticks({ count: 2 }, { timeoutMs: 150 })));

    expect(ConnectError.from(late.error).code).toBe(Code.DeadlineExceeded);
    expect(late.ms).toBeLessThan(150 + PROMPTLY_MS);
    expect(w.replays).toEqual([]);
    // The refresh it started still serves the next call.
    expect(await collectTicks(w.client.ticks({ count: 2 }))).toEqual([1, 2]);
    expect(w.endpoint.requests).toBe(2);
    expectNoLeaks(w, [late.error]);
  });
});

describe("clear() during a token fetch", () => {
  it("gives every waiting getToken() Canceled at once, never hands out the abandoned token, and a later call succeeds", async () => {
    const w = await world({ delayMs: 300 });
    const waiting = Array.from({ length: 3 }, () => settle(() => w.tokens.getToken()));
    await requestsReach(w, 1);
    const clearedAt = performance.now();
    w.tokens.clear();

    const results = await Promise.all(waiting);

    for (const { error } of results) {
      expect(error).toBeInstanceOf(TokenFetchError);
      expect((error as TokenFetchError).code).toBe(Code.Canceled);
    }
    expect(performance.now() - clearedAt).toBeLessThan(PROMPTLY_MS);
    // The endpoint still minted for the abandoned request: that token is never used.
    await expect.poll(() => w.authority.minted.length, { timeout: 5_000 }).toBe(1);
    const abandoned = w.authority.minted[0];
    const token = await w.tokens.getToken();
    expect(token).not.toBe(abandoned);
    expect(w.authority.minted).toEqual([abandoned, token]);
    expect(w.events.map((event) => event.type)).toEqual(["cleared", "token"]);
    expectNoLeaks(
      w,
      results.map((result) => result.error),
    );
  });

  it("ends waiting unary and streaming calls with Canceled caused by a TokenFetchError, and a later call succeeds", async () => {
    const w = await world({ delayMs: 300 });
    const waiting = [
      settle(() => w.client.whoAmI({})),
      settle(() => collectTicks(w.client.ticks({ count: 2 }))),
    ];
    await requestsReach(w, 1);
    w.tokens.clear();

    const results = await Promise.all(waiting);

    for (const { error, ms } of results) {
      expect(error).toBeInstanceOf(ConnectError);
      expect((error as ConnectError).code).toBe(Code.Canceled);
      expect((error as ConnectError).cause).toBeInstanceOf(TokenFetchError);
      expect(((error as ConnectError).cause as TokenFetchError).code).toBe(Code.Canceled);
      expect(ms).toBeLessThan(300 + PROMPTLY_MS);
    }
    expect(w.authority.seen).toEqual([]);
    expect((await w.client.whoAmI({})).subject).toBe("alice");
    expect(w.endpoint.requests).toBe(2);
    expectNoLeaks(
      w,
      results.map((result) => result.error),
    );
  });

  it("ends a call whose replay waits for the refreshed token with Canceled, without a second attempt", async () => {
    const w = await world();
    await w.client.whoAmI({});
    w.authority.revokeAll();
    slowMint(w, 300);
    const call = settle(() => w.client.whoAmI({}));
    await requestsReach(w, 2);
    w.tokens.clear();

    const { error } = await call;

    expect(ConnectError.from(error).code).toBe(Code.Canceled);
    expect(w.replays).toEqual([]);
    // One attempt with the revoked token, none after the clear.
    expect(w.authority.seen).toHaveLength(2);
    w.endpoint.behave(undefined);
    expect((await w.client.whoAmI({})).subject).toBe("alice");
    expectNoLeaks(w, [error]);
  });
});
