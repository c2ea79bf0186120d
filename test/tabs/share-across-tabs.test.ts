import { randomUUID } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { now } from "../../src/core/clock.js";
import {
  createTokenSource,
  shareAcrossTabs,
  type TokenEvent,
  TokenFetchCode,
  TokenFetchError,
  type TokenSource,
  type TokenSourceOptions,
} from "../../src/index.js";
import { useTestClock } from "../helpers/clock.js";
import { createFakeLockWorld, type FakeLockWorld } from "../helpers/fake-locks.js";
import { channelMessage, channelQuiet, nextEvent, sleep, waitFor } from "../helpers/wait.js";

// Several "tabs" in one process: each its own token source, sharing a fake Web Locks
// world and Node's real BroadcastChannel (which delivers between instances of a thread).
// The same scenarios run in four real Chromium pages in test/browser/.

const channels: BroadcastChannel[] = [];
afterEach(() => {
  for (const channel of channels.splice(0)) channel.close();
});

/** A BroadcastChannel constructor whose instances are closed after each test. */
class TrackedChannel extends BroadcastChannel {
  constructor(name: string) {
    super(name);
    channels.push(this);
  }
}

interface Tabs {
  world: FakeLockWorld;
  /** The Web Lock's name for this set of tabs. */
  lockName: string;
  fetches: () => number;
  open(id: string, extra?: Partial<TokenSourceOptions>): TokenSource;
  events: Map<string, TokenEvent[]>;
  /** Makes the next fetches hang until the returned function is called. */
  hold(): () => void;
}

function makeTabs(
  options: {
    lifetimeMs?: number;
    fetchDelayMs?: number;
    channel?: string;
    /** Makes a fetch fail with the error this returns (undefined: it succeeds). */
    failure?: () => Error | undefined;
  } = {},
) {
  const world = createFakeLockWorld();
  const channel = options.channel ?? randomUUID();
  let fetches = 0;
  let gate: Promise<void> | undefined;
  const events = new Map<string, TokenEvent[]>();
  const tabs: Tabs = {
    world,
    lockName: `grpc-web-auth:${channel}`,
    fetches: () => fetches,
    events,
    open(id, extra = {}) {
      const source = createTokenSource({
        fetchToken: async () => {
          fetches++;
          const n = fetches;
          // The fetch's latency: the other tabs' calls and messages arrive while it is under way.
          await sleep(options.fetchDelayMs ?? 30);
          if (gate) await gate;
          const failure = options.failure?.();
          if (failure !== undefined) throw failure;
          const token = `token-${n}`;
          return options.lifetimeMs === undefined
            ? token
            : { token, expiresAt: now() + options.lifetimeMs };
        },
        // Each tab its own lock manager, as each page has its own navigator.locks.
        crossTab: shareAcrossTabs(channel, {
          apis: { locks: world.tab(id), BroadcastChannel: TrackedChannel },
        }),
        ...extra,
      });
      const log: TokenEvent[] = [];
      events.set(id, log);
      source.subscribe((event) => log.push(event));
      return source;
    },
    hold() {
      let release = () => {};
      gate = new Promise((resolve) => {
        release = () => {
          gate = undefined;
          resolve();
        };
      });
      return release;
    },
  };
  return tabs;
}

describe("crossTab: one token for all tabs", () => {
  it("makes one token request for a cold start in four tabs at once", async () => {
    const tabs = makeTabs();
    const sources = ["a", "b", "c", "d"].map((id) => tabs.open(id));
    const tokens = await Promise.all(sources.map((s) => s.getToken()));
    expect(tabs.fetches()).toBe(1);
    expect(new Set(tokens)).toEqual(new Set(["token-1"]));
    const shared = [...tabs.events.values()].flat().filter((e) => e.type === "token");
    expect(shared.filter((e) => e.type === "token" && e.source === "fetch")).toHaveLength(1);
  });

  it("hands a tab opened later the current token without fetching", async () => {
    const tabs = makeTabs();
    await tabs.open("a").getToken();
    const late = tabs.open("late");
    expect(await late.getToken()).toBe("token-1");
    expect(tabs.fetches()).toBe(1);
  });

  it("refreshes an expiring token once across the tabs", async () => {
    const clock = useTestClock();
    const tabs = makeTabs({ lifetimeMs: 400 });
    const sources = ["a", "b", "c", "d"].map((id) => tabs.open(id));
    await Promise.all(sources.map((s) => s.getToken()));
    // A tab that took the lock before it heard the token asks the others: let it finish, and the
    // answers land, before the token ages (a late answer would count as a token just heard).
    await waitFor(
      () =>
        tabs.world.holder(tabs.lockName) === undefined && !tabs.world.waiting(tabs.lockName).length,
      { what: "the cold start to release the lock" },
    );
    await channelQuiet(tabs.lockName, { what: "the cold start's answers to land" });
    clock.advance(250);
    const refreshed = await Promise.all(sources.map((s) => s.getToken()));
    expect(tabs.fetches()).toBe(2);
    expect(new Set(refreshed)).toEqual(new Set(["token-2"]));
  });

  it("lets the other tabs use the new token without fetching after one tab saw a rejection", async () => {
    const tabs = makeTabs();
    const [a, b, c] = ["a", "b", "c"].map((id) => tabs.open(id)) as [
      TokenSource,
      TokenSource,
      TokenSource,
    ];
    const first = await a.getToken();
    await Promise.all([b.getToken(), c.getToken()]);
    const bHeard = nextEvent(b, "token", { what: "tab b to hear of token-2" });
    expect(await a.refresh(first)).toBe("token-2");
    await bHeard;
    expect(await b.getToken()).toBe("token-2");
    expect(await c.refresh(first)).toBe("token-2");
    expect(tabs.fetches()).toBe(2);
  });

  it("never adopts a token another tab reported as rejected", async () => {
    const tabs = makeTabs();
    const a = tabs.open("a");
    const b = tabs.open("b");
    const first = await a.getToken();
    const aHeard = nextEvent(a, "rejected", { what: "tab a to hear b's rejection" });
    b.invalidate(first);
    await aHeard;
    expect(a.peek()).toBeUndefined();
  });

  it("hands the grant's rotated state to the other tabs with the token, never the spent one", async () => {
    const tabs = makeTabs();
    const seen: (string | undefined)[] = [];
    let rotations = 0;
    const rotating = async ({ state }: { state: string | undefined }) => {
      seen.push(state);
      rotations++;
      return { token: `rotated-${rotations}`, state: `refresh-${rotations}` };
    };
    const a = tabs.open("a", { fetchToken: rotating });
    const b = tabs.open("b", { fetchToken: rotating });
    const bHeard = nextEvent(b, "token", { what: "tab b to hear of rotated-1" });
    expect(await a.getToken()).toBe("rotated-1");
    await bHeard;
    // b took a's token; when b refreshes, it sends the refresh token a's fetch rotated to.
    expect(await b.getToken()).toBe("rotated-1");
    const aHeard = nextEvent(a, "token", { what: "tab a to hear of rotated-2" });
    expect(await b.refresh("rotated-1")).toBe("rotated-2");
    await aHeard;
    expect(await a.refresh("rotated-2")).toBe("rotated-3");
    expect(seen).toEqual([undefined, "refresh-1", "refresh-2"]);
  });

  it("does not stall when the tab holding the lock closes mid-fetch", async () => {
    const tabs = makeTabs();
    const release = tabs.hold();
    const a = tabs.open("a");
    const b = tabs.open("b");
    const aWaiting = a.getToken().catch((e: unknown) => e);
    await waitFor(() => tabs.world.holder(tabs.lockName) === "a", {
      what: "tab a to take the lock",
    });
    const bWaiting = b.getToken();
    await waitFor(() => tabs.world.waiting(tabs.lockName).includes("b"), {
      what: "tab b to wait for the lock",
    });
    expect(tabs.world.holder(tabs.lockName)).toBe("a");
    // Closing tab a: the browser releases its lock; b, next in line, fetches itself once no tab
    // answered its query. (A closed tab's fetch never lands; here the endpoint holds every
    // fetch, so it is let go only after b has asked and started its own.)
    tabs.world.closeTab("a");
    await waitFor(() => tabs.fetches() === 2, { what: "tab b to start its own fetch" });
    release();
    expect(await bWaiting).toMatch(/^token-/);
    expect(tabs.fetches()).toBe(2);
    await aWaiting;
  });

  it("steals the lock from a tab that froze while holding it", async () => {
    const tabs = makeTabs();
    const release = tabs.hold();
    const frozen = tabs.open("frozen");
    const other = tabs.open("other", { timeoutMs: 300 });
    frozen.getToken().catch(() => {});
    await waitFor(() => tabs.world.holder(tabs.lockName) === "frozen", {
      what: "the frozen tab to take the lock",
    });
    const started = Date.now();
    // The frozen tab's fetch never finishes. A healthy holder may wait up to 1 s for the tab
    // holding the refresh token and fetch for timeoutMs: the other tab waits 2 × 300 + 1000 ms
    // (1,600 ms), then takes the lock.
    const waiting = other.getToken();
    await waitFor(() => tabs.world.holder(tabs.lockName) !== "frozen", {
      what: "the other tab to steal the lock",
    });
    const stolenAfter = Date.now() - started;
    expect(tabs.world.holder(tabs.lockName)).toBe("other");
    // Not before 1,200 ms, not after 1,900 ms.
    expect(stolenAfter).toBeGreaterThanOrEqual(1_200);
    expect(stolenAfter).toBeLessThanOrEqual(1_900);
    release();
    expect(await waiting).toMatch(/^token-/);
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it("signs every tab out when one calls clear()", async () => {
    const tabs = makeTabs();
    const sources = ["a", "b", "c"].map((id) => tabs.open(id));
    await Promise.all(sources.map((s) => s.getToken()));
    const heard = sources.slice(1).map((s) => nextEvent(s, "cleared", { what: "the sign-out" }));
    sources[0]?.clear();
    await Promise.all(heard);
    for (const source of sources) expect(source.peek()).toBeUndefined();
    expect(tabs.events.get("b")?.at(-1)).toEqual({ type: "cleared" });
  });

  it("keeps two channels on one origin apart", async () => {
    const appOne = makeTabs({ channel: `one-${randomUUID()}` });
    const appTwo = makeTabs({ channel: `two-${randomUUID()}` });
    const [x, y] = [appOne.open("x"), appTwo.open("y")];
    await Promise.all([x.getToken(), y.getToken()]);
    expect(appOne.fetches() + appTwo.fetches()).toBe(2);
  });

  it("ignores malformed messages on the channel", async () => {
    const channel = randomUUID();
    const tabs = makeTabs({ channel });
    const a = tabs.open("a");
    const intruder = new TrackedChannel(`grpc-web-auth:${channel}`);
    const junks: unknown[] = [
      null,
      "x",
      // Well formed, but of the old version.
      { v: 1, type: "token", token: "t", expiresAt: null },
      { v: 1, type: "failed", code: 14, status: 503, message: "old version" },
      { v: 3, type: "token", token: "", epoch: 0, expiresAt: null, state: null },
      { v: 3, type: "token", token: "t", epoch: 0, expiresAt: "soon", state: null },
      { v: 3, type: "token", token: "t", epoch: 0, expiresAt: null, bound: 5 },
      { v: 3, type: "cleared", token: 5 },
      {
        v: 3,
        type: "token",
        token: "bad token with spaces",
        epoch: 0,
        expiresAt: null,
        state: null,
      },
      {
        v: 3,
        type: "failed",
        code: 1,
        status: null,
        message: "a cancel is not shared",
        reason: null,
        until: null,
      },
      {
        v: 3,
        type: "failed",
        code: 14,
        status: "503",
        message: "status is not a number",
        reason: null,
        until: null,
      },
      {
        v: 3,
        type: "failed",
        code: 99,
        status: null,
        message: "no such code",
        reason: null,
        until: null,
      },
      { v: 3, type: "failed", code: 14, status: null, reason: null, until: null },
      {
        v: 3,
        type: "failed",
        code: 16,
        status: 401,
        message: "no such reason",
        reason: "bored",
        until: null,
      },
      {
        v: 3,
        type: "failed",
        code: 14,
        status: 503,
        message: "until is not a number",
        reason: null,
        until: "later",
      },
    ];
    // Delivered in order: once a listener opened with tab a has the last, so has tab a.
    const delivered = channelMessage(`grpc-web-auth:${channel}`, {
      matches: (data) =>
        (data as { message?: unknown } | null)?.message === "until is not a number",
      what: "the last malformed message",
    });
    for (const junk of junks) intruder.postMessage(junk);
    await delivered;
    expect(a.peek()).toBeUndefined();
    expect(await a.getToken()).toBe("token-1");
  });

  it("fails the tabs waiting for the lock with a failed fetch's error instead of fetching in turn", async () => {
    const clock = useTestClock();
    let down = true;
    const tabs = makeTabs({
      failure: () =>
        down
          ? new TokenFetchError("the token endpoint answered 503 Service Unavailable", {
              code: TokenFetchCode.Unavailable,
              status: 503,
              bodyExcerpt: "upstream alice:wonderland down",
            })
          : undefined,
    });
    const sources = ["a", "b", "c", "d"].map((id) => tabs.open(id));
    const outcomes = await Promise.all(sources.map((s) => s.getToken().catch((e: unknown) => e)));

    expect(tabs.fetches()).toBe(1);
    for (const outcome of outcomes) {
      expect(outcome).toBeInstanceOf(TokenFetchError);
      expect(outcome).toMatchObject({ code: TokenFetchCode.Unavailable, status: 503 });
    }
    const relayed = outcomes.filter((e) => (e as Error).message.includes("another tab"));
    expect(relayed).toHaveLength(3);
    // What crosses the channel is the code, the status and the message: no body, no cause.
    for (const error of relayed as TokenFetchError[]) {
      expect(error.bodyExcerpt).toBeUndefined();
      expect(error.cause).toBeUndefined();
    }
    // Each tab that was waiting heard of the failure through its own "error" event.
    for (const log of tabs.events.values()) {
      expect(log.filter((e) => e.type === "error")).toHaveLength(1);
    }

    // Every tab waits out the backoff the failure started: fast failures, no request.
    down = false;
    const [b] = sources.slice(1) as [TokenSource];
    for (const source of sources) {
      await expect(source.getToken()).rejects.toMatchObject({
        code: TokenFetchCode.Unavailable,
        repeated: true,
      });
    }
    expect(tabs.fetches()).toBe(1);
    // A failure is an answer for the callers waiting on it, not a verdict: once the first
    // backoff (at most 1 s) is over, the next call fetches.
    clock.advance(1_000);
    expect(await b.getToken()).toBe("token-2");
    expect(tabs.fetches()).toBe(2);
  });

  it("does not fail a tab whose own fetch is under way with another tab's failure", async () => {
    const channel = randomUUID();
    const tabs = makeTabs({ channel, fetchDelayMs: 60 });
    const a = tabs.open("a");
    // a holds the lock and is fetching when another tab's failure arrives on the channel.
    const pending = a.getToken();
    await waitFor(() => tabs.fetches() === 1, { what: "a's fetch to start, after its ask" });
    const intruder = new TrackedChannel(`grpc-web-auth:${channel}`);
    intruder.postMessage({
      v: 3,
      type: "failed",
      code: 14,
      status: 503,
      message: "elsewhere",
      reason: null,
      until: null,
    });
    expect(await pending).toBe("token-1");
    expect(tabs.fetches()).toBe(1);
  });

  it("works per tab where Web Locks or BroadcastChannel are missing", async () => {
    let fetches = 0;
    const make = () =>
      createTokenSource({
        fetchToken: async () => `token-${++fetches}`,
        crossTab: shareAcrossTabs("per-tab"), // Node 20 has no navigator.locks
      });
    const [a, b] = [make(), make()];
    expect(await a.getToken()).toBe("token-1");
    expect(await b.getToken()).toBe("token-2");
  });

  it("rejects a channel that is not a non-empty string", () => {
    expect(() => shareAcrossTabs("")).toThrow(TypeError);
    expect(() => shareAcrossTabs("")).toThrow(/channel/);
    expect(() => shareAcrossTabs(42 as unknown as string)).toThrow(/channel/);
  });

  it("refuses a second live source on one channel in the same page", () => {
    const channel = randomUUID();
    const apis = { locks: createFakeLockWorld().tab("a"), BroadcastChannel: TrackedChannel };
    createTokenSource({
      fetchToken: async () => "t",
      crossTab: shareAcrossTabs(channel, { apis }),
    });
    expect(() =>
      createTokenSource({
        fetchToken: async () => "t",
        crossTab: shareAcrossTabs(channel, { apis }),
      }),
    ).toThrow(TypeError);
    expect(() =>
      createTokenSource({
        fetchToken: async () => "t",
        crossTab: shareAcrossTabs(channel, { apis }),
      }),
    ).toThrow(channel);
  });
});
