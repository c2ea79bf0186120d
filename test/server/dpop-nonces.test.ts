import { afterEach, describe, expect, it, vi } from "vitest";
import { createDpopNonces } from "../../demo/server/dpop-nonces.js";

afterEach(() => {
  vi.useRealTimers();
});

describe("DPoP nonces", () => {
  it("keeps one nonce for a period, then accepts the previous one for one more period only", () => {
    vi.useFakeTimers();
    const nonces = createDpopNonces({ rotateSeconds: 30 });
    const first = nonces.current();
    vi.advanceTimersByTime(29_000);
    expect(nonces.current()).toBe(first);
    vi.advanceTimersByTime(2_000);
    const second = nonces.current();
    expect(second).not.toBe(first);
    expect(nonces.isValid(first)).toBe(true);
    expect(nonces.isValid(second)).toBe(true);
    vi.advanceTimersByTime(30_000);
    expect(nonces.isValid(first)).toBe(false);
    expect(nonces.isValid(second)).toBe(true);
  });

  it("forgets both nonces after two idle periods", () => {
    vi.useFakeTimers();
    const nonces = createDpopNonces({ rotateSeconds: 30 });
    const first = nonces.current();
    vi.advanceTimersByTime(61_000);
    expect(nonces.isValid(first)).toBe(false);
  });

  it.each([undefined, "", 42, "made-up"])("refuses %j", (nonce) => {
    expect(createDpopNonces().isValid(nonce)).toBe(false);
  });

  it("rejects a rotation period that is not a positive integer", () => {
    expect(() => createDpopNonces({ rotateSeconds: 0 })).toThrow(/rotateSeconds/);
    expect(() => createDpopNonces({ rotateSeconds: 1.5 })).toThrow(/rotateSeconds/);
  });
});
