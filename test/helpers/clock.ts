import { onTestFinished, vi } from "vitest";
import { setClock } from "../../src/core/clock.js";

/** The world's clocks, ahead of real time by what the test advanced them. */
export interface TestClock {
  /** Moves the wall and the monotonic clock forward by `ms`, as if that much time had passed. */
  advance(ms: number): void;
}

/**
 * Moves time forward without waiting, so a token can expire or a backoff pass at once: swaps the
 * library's clocks (src/core/clock.ts) for real time plus an offset the test advances, and shifts
 * `Date.now()` by the same offset for what still reads it (the test servers, code not yet on the
 * clock module). Restored when the test finishes. Timers still run in real time: for a deadline
 * kept by `setTimeout`, use fake timers.
 */
export function useTestClock(): TestClock {
  let offset = 0;
  const realDateNow = Date.now.bind(Date);
  const realMonotonic = performance.now.bind(performance);
  const dateNow = vi.spyOn(Date, "now").mockImplementation(() => realDateNow() + offset);
  setClock({ now: () => realDateNow() + offset, monotonic: () => realMonotonic() + offset });
  onTestFinished(() => {
    setClock(undefined);
    dateNow.mockRestore();
  });
  return {
    advance(ms) {
      offset += ms;
    },
  };
}
