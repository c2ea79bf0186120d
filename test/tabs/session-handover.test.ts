import { describe, expect, it, vi } from "vitest";
import { createTokenSource, shareAcrossTabs } from "../../src/index.js";
import { makeTabWorld, TabChannel } from "./tab-world.js";

// A tab joins any live session: what its siblings hold is handed over when it asks, whatever the
// age of their access token; the refresh token crosses the channel only in answers, and a spent
// one is never presented again.

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("joining a session", () => {
  it("gives a tab opened after the siblings' token went stale the session: one refresh with the handed-over refresh token, no sign-in", async () => {
    // 400 ms tokens are refreshed after 200 ms; a second sign-in would fail (no credentials).
    const tabs = makeTabWorld({ lifetimeMs: 400, signIns: false });
    const first = tabs.open("first");
    expect(await first.getToken()).toBe("token-1");
    await vi.waitFor(() => expect(first.peek()?.fresh).toBe(false), { timeout: 1_000 });

    const late = tabs.open("late");
    expect(await late.getToken()).toBe("token-2");

    expect(tabs.server).toMatchObject({ signIns: 1, refreshes: 1, reuse: 0 });
    expect(tabs.server.presented).toEqual([undefined, "refresh-1"]);
    // The first tab takes the refreshed token without fetching.
    await vi.waitFor(() => expect(first.peek()?.fresh).toBe(true), { timeout: 1_000 });
    expect(await first.getToken()).toBe("token-2");
    expect(tabs.server.presented).toHaveLength(2);
  });

  it("gives a reloaded tab the session another tab holds, even when the reloaded tab had refreshed last", async () => {
    const tabs = makeTabWorld({ lifetimeMs: 400, signIns: false });
    const a = tabs.open("a");
    // Each page has its own window; b's says when b goes away.
    const pageB = new EventTarget();
    vi.stubGlobal("window", pageB);
    const b = tabs.open("b");
    vi.unstubAllGlobals();
    await a.getToken();
    await b.getToken();
    await vi.waitFor(() => expect(a.peek()?.fresh).toBe(false), { timeout: 1_000 });
    // b refreshes (asking a for the refresh token first), then b is reloaded.
    expect(await b.getToken()).toBe("token-2");
    pageB.dispatchEvent(new Event("pagehide"));
    b.dispose();
    tabs.world.closeTab("b");
    // a takes b's token, unasked, without the refresh token; then lets it go stale.
    const sharedWithA = () => tabs.events.get("a")?.filter((e) => e.type === "token").length;
    await vi.waitFor(() => expect(sharedWithA()).toBe(2), { timeout: 1_000 });
    await vi.waitFor(() => expect(a.peek()?.fresh).toBe(false), { timeout: 1_000 });

    const reloaded = tabs.open("b");
    expect(await reloaded.getToken()).toBe("token-3");
    expect(tabs.server).toMatchObject({ signIns: 1, refreshes: 2, reuse: 0 });
  });

  it("hands a source disposed in this page's session to its successor on the channel, with no request", async () => {
    const tabs = makeTabWorld({ lifetimeMs: 60_000, signIns: false });
    const locks = tabs.world.tab("page");
    const apis = { locks, BroadcastChannel: TabChannel };
    const make = () =>
      createTokenSource({
        fetchToken: async ({ state }) => {
          tabs.server.presented.push(state);
          return { token: `token-${tabs.server.presented.length}`, state: "refresh-1" };
        },
        crossTab: shareAcrossTabs(tabs.channel, { apis }),
      });
    const first = make();
    expect(await first.getToken()).toBe("token-1");
    first.dispose();

    const second = make();

    expect(await second.getToken()).toBe("token-1");
    expect(tabs.server.presented).toEqual([undefined]);
  });

  it("rotates the refresh token across three tabs calling for 2 s on 300 ms tokens without presenting a spent one", async () => {
    const tabs = makeTabWorld({ lifetimeMs: 300, signIns: false });
    const sources = ["a", "b", "c"].map((id) => tabs.open(id));
    const started = Date.now();
    await Promise.all(
      sources.map(async (source) => {
        while (Date.now() - started < 2_000) {
          await source.getToken();
          await sleep(5 + Math.random() * 40);
        }
      }),
    );
    expect(tabs.server.signIns).toBe(1);
    expect(tabs.server.refreshes).toBeGreaterThanOrEqual(5);
    expect(tabs.server.reuse).toBe(0);
  });

  it("announces a fetched token without its refresh token; a tab that asks gets it", async () => {
    const tabs = makeTabWorld({ lifetimeMs: 400 });
    const heard: unknown[] = [];
    const listener = new TabChannel(`grpc-web-auth:${tabs.channel}`);
    listener.onmessage = (event: MessageEvent) => heard.push(event.data);
    const a = tabs.open("a");
    await a.getToken();
    await vi.waitFor(() => expect(heard).toHaveLength(2), { timeout: 1_000 });
    expect(heard.map((m) => (m as { type: string }).type)).toEqual(["query", "token"]);
    expect(JSON.stringify(heard)).not.toContain("refresh-1");
  });
});
