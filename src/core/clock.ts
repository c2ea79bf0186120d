/**
 * The library's two clocks, read in one place: the wall clock (`now`, shared by every tab and the
 * server's `Date`) and a monotonic one (`elapsed`, for ages and deadlines; immune to clock jumps).
 * Tests swap them through {@link setClock}; apps never need to.
 */
export interface Clock {
  /** Milliseconds since the epoch, on this machine's wall clock. */
  now(): number;
  /** Milliseconds on a monotonic clock with an arbitrary origin. */
  monotonic(): number;
}

const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
};

let clock: Clock = systemClock;

/** Milliseconds since the epoch, on the wall clock. */
export function now(): number {
  return clock.now();
}

/** Milliseconds on the monotonic clock. */
export function monotonic(): number {
  return clock.monotonic();
}

/** Internal, for tests: replaces the clocks; `undefined` restores the system's. */
export function setClock(replacement: Clock | undefined): void {
  clock = replacement ?? systemClock;
}
