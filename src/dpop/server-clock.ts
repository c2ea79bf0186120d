import { now } from "../core/clock.js";

/**
 * Below this, a server's `Date` (whole seconds, read after the answer's trip) cannot tell a
 * skewed clock from a good one: offsets this small are taken as none.
 */
export const CLOCK_RESOLUTION_MS = 2_000;

/** Origins whose offset is kept; beyond it the oldest is forgotten. */
const MAX_ORIGINS = 64;

/**
 * The servers' clocks, as their answers' `Date` headers told them: what a DPoP proof's `iat` is
 * signed on (RFC 9449 §11.1 lets servers refuse a proof whose `iat` is off their clock).
 */
export interface ServerClock {
  /**
   * Learns the clock of `origin`'s server from an answer's `Date` header. Returns whether it
   * changed the clock proofs for that origin are signed on.
   */
  learn(origin: string, date: string | null | undefined): boolean;
  /**
   * Milliseconds since the epoch on `origin`'s server clock: this machine's, corrected by what
   * that origin's answers told; for an origin not heard from yet, by the last one that told.
   */
  now(origin: string): number;
}

export function createServerClock(): ServerClock {
  const offsets = new Map<string, number>();
  let latest = 0;
  const offsetOf = (origin: string) => offsets.get(origin) ?? latest;
  return {
    learn(origin, date) {
      if (typeof date !== "string" || date === "") return false;
      const server = Date.parse(date);
      if (Number.isNaN(server)) return false;
      let offset = server - now();
      if (Math.abs(offset) < CLOCK_RESOLUTION_MS) offset = 0;
      const before = offsetOf(origin);
      latest = offset;
      offsets.delete(origin);
      if (offsets.size >= MAX_ORIGINS) offsets.delete(offsets.keys().next().value as string);
      offsets.set(origin, offset);
      return Math.abs(offset - before) >= CLOCK_RESOLUTION_MS;
    },
    now: (origin) => now() + offsetOf(origin),
  };
}
