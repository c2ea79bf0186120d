/**
 * Password guessing at the demo token endpoint: per-account backoff (a bounded number of
 * passwords checked), and no sign-in in a content type a cross-site form can send.
 */
import { describe, expect, it } from "vitest";
import { createSignInThrottle } from "../../demo/server/sign-in-throttle.js";
import { postJson, startTestServer } from "./fixtures.js";

function statusCounts(statuses: number[]): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const status of statuses) counts[status] = (counts[status] ?? 0) + 1;
  return counts;
}

describe("per-account backoff at /auth/token", () => {
  it("checks 5 of 200 wrong passwords sent at once, refuses the right one during the wait unchecked, and accepts it after", async () => {
    // The throttle's clock stands still while the guesses arrive, however long they take here.
    let now = Date.now();
    const server = await startTestServer({ testMode: true, signInThrottle: { now: () => now } });
    const guesses = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        postJson(server.tokenUrl, { username: "alice", password: `guess-${i}` }),
      ),
    );
    expect(statusCounts(guesses.map((res) => res.status))).toEqual({ 401: 5, 429: 195 });
    expect(server.stats()).toMatchObject({
      passwordChecks: 5,
      throttledSignIns: 195,
      tokensIssued: 0,
    });
    const throttled = guesses.find((res) => res.status === 429) as Response;
    expect(throttled.headers.get("retry-after")).toBe("1");

    const early = await postJson(server.tokenUrl, { username: "alice", password: "wonderland" });
    expect(early.status).toBe(429);
    expect(server.stats().passwordChecks).toBe(5);

    now += 1_000;
    const right = await postJson(server.tokenUrl, { username: "alice", password: "wonderland" });
    expect(right.status).toBe(200);
    expect(server.stats()).toMatchObject({ passwordChecks: 6, tokensIssued: 1 });
    // Another account never waited.
    expect((await postJson(server.tokenUrl, { username: "bob", password: "builder" })).status).toBe(
      200,
    );
  });

  it("throttles an OAuth form sign-in with a 429 OAuth error, and an unknown username like a known one", async () => {
    const server = await startTestServer({ testMode: true });
    const form = (username: string) =>
      fetch(server.tokenUrl, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ grant_type: "password", username, password: "nope" }),
      });
    for (const username of ["alice", "nobody-here"]) {
      const statuses = [];
      for (let i = 0; i < 7; i++) statuses.push((await form(username)).status);
      expect(statuses, username).toEqual([400, 400, 400, 400, 400, 429, 429]);
    }
    const res = await form("alice");
    expect(await res.json()).toMatchObject({ error: "invalid_request" });
    expect(server.stats()).toMatchObject({ passwordChecks: 10, throttledSignIns: 5 });
  });

  it("doubles the wait per further wrong password, up to the longest wait", () => {
    let now = 0;
    const throttle = createSignInThrottle({ now: () => now });
    const waits = [];
    for (let i = 0; i < 12; i++) {
      now += throttle.waitMs("alice");
      throttle.checked("alice", false);
      waits.push(throttle.waitMs("alice"));
    }
    expect(waits).toEqual([0, 0, 0, 0, 1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000]);
    throttle.checked("alice", true);
    expect(throttle.waitMs("alice")).toBe(0);
  });

  it("tracks at most maxAccounts accounts, forgetting the least recently failed, and forgets quiet ones", () => {
    let now = 0;
    const throttle = createSignInThrottle({ now: () => now, maxAccounts: 3, freeFailures: 1 });
    for (const name of ["a", "b", "c", "d"]) throttle.checked(name, false);
    expect(throttle.size()).toBe(3);
    expect(throttle.waitMs("a")).toBe(0);
    expect(throttle.waitMs("d")).toBe(1_000);
    now += 900_001;
    expect(throttle.waitMs("d")).toBe(0);
  });

  it("rejects options it cannot use with a TypeError naming them", () => {
    expect(() => createSignInThrottle({ freeFailures: 0 })).toThrow(/freeFailures/);
    expect(() => createSignInThrottle({ baseDelayMs: 2_000, maxDelayMs: 1_000 })).toThrow(
      /maxDelayMs/,
    );
  });
});

describe("content types at /auth/token", () => {
  it("answers 415 to a sign-in sent as text/plain or with no content type, and checks no password", async () => {
    const server = await startTestServer({ testMode: true });
    const body = JSON.stringify({ username: "alice", password: "wonderland" });
    for (const headers of [
      { "content-type": "text/plain" },
      { "content-type": "text/plain;charset=UTF-8" },
      { "content-type": "multipart/form-data; boundary=x" },
      {},
    ]) {
      const res = await fetch(server.tokenUrl, { method: "POST", headers, body });
      expect(res.status, JSON.stringify(headers)).toBe(415);
      expect(await res.text()).not.toContain("wonderland");
    }
    expect(server.stats()).toMatchObject({ passwordChecks: 0, tokensIssued: 0 });
    const json = await postJson(server.tokenUrl, body, {
      "content-type": "application/json; charset=utf-8",
    });
    expect(json.status).toBe(200);
  });
});
