import { afterEach, describe, expect, it, vi } from "vitest";
import { now, setClock } from "../../src/core/clock.js";
import { createTokenSource } from "../../src/index.js";
import { makeTabWorld } from "../tabs/tab-world.js";

// The page comes back (visible, online, restored from the back/forward cache): a stale or
// expired token is refreshed then, once, not by the first call; no timer fires in between.

afterEach(() => {
  vi.unstubAllGlobals();
  setClock(undefined);
});

/** A window and document the sources listen to, as a browser page's. */
function stubPage() {
  const page = new EventTarget();
  const doc = Object.assign(new EventTarget(), { visibilityState: "hidden" });
  vi.stubGlobal("window", page);
  vi.stubGlobal("document", doc);
  return {
    show() {
      doc.visibilityState = "visible";
      doc.dispatchEvent(new Event("visibilitychange"));
    },
    online: () => page.dispatchEvent(new Event("online")),
    restore: () => page.dispatchEvent(Object.assign(new Event("pageshow"), { persisted: true })),
  };
}

/** Moves both clocks forward by `ms`, as a machine that slept. */
function sleepMachine(ms: number) {
  const [wall, mono] = [Date.now(), performance.now()];
  setClock({
    now: () => wall + ms + (Date.now() - wall),
    monotonic: () => mono + (performance.now() - mono),
  });
}

describe("waking up", () => {
  it("refreshes a token that expired while the machine slept when the page becomes visible, before any call", async () => {
    const page = stubPage();
    let fetches = 0;
    const source = createTokenSource({
      fetchToken: async () => ({ token: `token-${++fetches}`, expiresAt: now() + 60_000 }),
    });
    expect(await source.getToken()).toBe("token-1");
    sleepMachine(3 * 3_600_000);

    page.show();

    await vi.waitFor(() => expect(source.peek()?.fresh).toBe(true), { timeout: 1_000 });
    expect(fetches).toBe(2);
    expect(await source.getToken()).toBe("token-2");
    expect(fetches).toBe(2);
  });

  it("refreshes a stale token when the page comes back online, and leaves a fresh one alone", async () => {
    const page = stubPage();
    let fetches = 0;
    const source = createTokenSource({
      fetchToken: async () => ({ token: `token-${++fetches}`, expiresAt: Date.now() + 400 }),
    });
    await source.getToken();
    page.online();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(fetches).toBe(1);
    await vi.waitFor(() => expect(source.peek()?.fresh).toBe(false), { timeout: 1_000 });

    page.online();

    await vi.waitFor(() => expect(fetches).toBe(2), { timeout: 1_000 });
  });

  it("makes one fetch for four tabs waking at once", async () => {
    const page = stubPage();
    const tabs = makeTabWorld({ lifetimeMs: 60_000 });
    const sources = ["a", "b", "c", "d"].map((id) => tabs.open(id));
    await Promise.all(sources.map((s) => s.getToken()));
    sleepMachine(3_600_000);

    page.show();

    await vi.waitFor(() => expect(sources.every((s) => s.peek()?.fresh)).toBe(true), {
      timeout: 2_000,
    });
    expect(tabs.server).toMatchObject({ signIns: 1, refreshes: 1, reuse: 0 });
  });

  it("applies a sign-out a page restored from the back/forward cache missed before its next call", async () => {
    const tabs = makeTabWorld();
    const a = tabs.open("a");
    const page = stubPage();
    const restored = tabs.open("restored");
    await a.getToken();
    expect(await restored.getToken()).toBe("token-1");
    const port = tabs.ports.get("restored");
    if (port === undefined) throw new Error("no port");
    port.frozen = true;
    a.clear();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(restored.peek()).toBeDefined();

    port.frozen = false;
    page.restore();
    const next = restored.getToken();

    expect(await next).toBe("token-2");
    expect(tabs.events.get("restored")?.some((e) => e.type === "cleared")).toBe(true);
    expect(tabs.server.signIns).toBe(2);
  });
});
