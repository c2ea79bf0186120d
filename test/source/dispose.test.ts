import { describe, expect, it } from "vitest";
import { createTokenSource, shareAcrossTabs, TokenFetchCode } from "../../src/index.js";
import { makeTabWorld, TabChannel } from "../tabs/tab-world.js";

describe("dispose()", () => {
  it("frees the channel: a new source in the same page on it works at once, with no request", async () => {
    const tabs = makeTabWorld();
    const apis = { locks: tabs.world.tab("page"), BroadcastChannel: TabChannel };
    let fetches = 0;
    const make = () =>
      createTokenSource({
        fetchToken: async () => `token-${++fetches}`,
        crossTab: shareAcrossTabs(tabs.channel, { apis }),
      });
    const first = make();
    await first.getToken();
    first.dispose();

    const second = make();

    expect(await second.getToken()).toBe("token-1");
    expect(fetches).toBe(1);
  });

  it("fails later calls with Canceled, saying the source was disposed", async () => {
    const source = createTokenSource({ fetchToken: async () => "t" });
    source[Symbol.dispose]();
    await expect(source.getToken()).rejects.toMatchObject({
      code: TokenFetchCode.Canceled,
      message: expect.stringMatching(/disposed/),
    });
    await expect(source.refresh("t")).rejects.toMatchObject({ code: TokenFetchCode.Canceled });
    expect(() => source.clear()).toThrow(/disposed/);
    expect(source.peek()).toBeUndefined();
  });

  it("signs nobody out: the other tabs keep their token and hear nothing", async () => {
    const tabs = makeTabWorld();
    const a = tabs.open("a");
    const b = tabs.open("b");
    await a.getToken();
    expect(await b.getToken()).toBe("token-1");
    const heardBefore = tabs.events.get("b")?.length;

    a.dispose();
    await new Promise((resolve) => setTimeout(resolve, 20));

    expect(b.peek()).toMatchObject({ fresh: true });
    expect(tabs.events.get("b")).toHaveLength(heardBefore ?? 0);
    expect(tabs.server.signIns).toBe(1);
  });

  it("ends the wait of a caller whose fetch was under way, and lets go of the lock", async () => {
    const tabs = makeTabWorld();
    const a = tabs.open("a");
    const waiting = a.getToken();
    a.dispose();
    await expect(waiting).rejects.toMatchObject({ code: TokenFetchCode.Canceled });
    const b = tabs.open("b");
    expect(await b.getToken()).toMatch(/^token-/);
  });

  it("requires crossTab for a grant that keeps its refresh token in a store, naming the option", () => {
    const grant = Object.assign(async () => "t", { persistent: true });
    expect(() => createTokenSource({ fetchToken: grant })).toThrow(TypeError);
    expect(() => createTokenSource({ fetchToken: grant })).toThrow(/crossTab: shareAcrossTabs/);
  });
});
