import { describe, expect, it } from "vitest";
import { TokenFetchCode, TokenFetchError } from "../../src/index.js";
import { makeTabWorld, TabChannel } from "./tab-world.js";

// What another context on the origin (or a tab still running the previous version of the app)
// can put on the channel: old-version, oversize and forged messages change nothing they should not.

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Posts on the tabs' channel as a stranger would. */
function intruder(channel: string): TabChannel {
  return new TabChannel(`grpc-web-auth:${channel}`);
}

describe("the channel's guard", () => {
  it("ignores a token announced in the previous protocol version", async () => {
    const tabs = makeTabWorld();
    const a = tabs.open("a");
    intruder(tabs.channel).postMessage({
      v: 2,
      type: "token",
      token: "old-version",
      expiresAt: null,
      state: "r",
      bound: null,
    });
    await sleep(20);
    expect(a.peek()).toBeUndefined();
    expect(await a.getToken()).toBe("token-1");
  });

  it("ignores an oversize token", async () => {
    const tabs = makeTabWorld();
    const a = tabs.open("a");
    const huge = "x".repeat(20_000);
    intruder(tabs.channel).postMessage({
      v: 3,
      type: "token",
      token: huge,
      expiresAt: null,
      bound: null,
      epoch: 0,
    });
    await sleep(20);
    expect(a.peek()).toBeUndefined();
  });

  it("tells a forged failure in the library's own words, and only to a tab waiting for the lock", async () => {
    const tabs = makeTabWorld();
    const a = tabs.open("a");
    const b = tabs.open("b");
    const forged = {
      v: 3,
      type: "failed",
      code: TokenFetchCode.Unauthenticated,
      status: 401,
      message: "Session locked. Call +1-555-0100",
      reason: "credentials-refused",
      until: null,
    };
    // Nobody waits: it is no answer to anything, and locks nobody out.
    intruder(tabs.channel).postMessage(forged);
    await sleep(20);
    expect(tabs.events.get("a")).toEqual([]);
    expect(await a.getToken()).toBe("token-1");

    // b waits for the lock a holds: the failure is the answer it waits for, in fixed words.
    const release = await holdLock(tabs, "holder");
    const held = b.refresh("token-1").catch((error: unknown) => error);
    await sleep(20);
    intruder(tabs.channel).postMessage(forged);
    await sleep(20);
    release();
    const error = await held;
    expect(error).toBeInstanceOf(TokenFetchError);
    expect((error as Error).message).not.toContain("555");
    expect((error as Error).message).toMatch(/refused the sign-in \(fetched by another tab\)/);
  });

  it("takes no token announced after a sign-out until it asks; then only its answer", async () => {
    const tabs = makeTabWorld();
    const a = tabs.open("a");
    const b = tabs.open("b");
    await a.getToken();
    await sleep(20);
    b.clear();
    await sleep(20);
    intruder(tabs.channel).postMessage({
      v: 3,
      type: "token",
      token: "forged",
      expiresAt: null,
      bound: null,
      epoch: 9,
    });
    await sleep(20);
    expect(a.peek()).toBeUndefined();
    expect(b.peek()).toBeUndefined();
    expect(await a.getToken()).toBe("token-2");
  });
});

/** Takes the tabs' lock as tab `id`; returns the function that releases it. */
async function holdLock(tabs: ReturnType<typeof makeTabWorld>, id: string): Promise<() => void> {
  let release = () => {};
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  let granted = () => {};
  const taken = new Promise<void>((resolve) => {
    granted = resolve;
  });
  void tabs.world.tab(id).request(`grpc-web-auth:${tabs.channel}`, () => {
    granted();
    return held;
  });
  await taken;
  return release;
}
