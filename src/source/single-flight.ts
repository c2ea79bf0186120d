import { toTokenFetchError } from "../core/abort.js";
import type { TokenFetchError } from "../core/token-fetch-error.js";
import type { Fetched } from "./grant-result.js";
import type { Session } from "./session.js";
import type { Cached } from "./token-cache.js";

/** What a flight does, and what it tells the source when it lands. */
export interface FlightPlan {
  /**
   * Fetches (or, across tabs, takes another tab's token: undefined); `rejected` is the refused
   * token the fetch replaces, if any.
   */
  run(signal: AbortSignal, rejected: string | undefined): Promise<Fetched | undefined>;
  /** A fetched token arrived. */
  landed(fetched: Fetched, replacement: boolean): Cached;
  /** The token another tab published was taken meanwhile. */
  adopted(): Cached | undefined;
  /** The fetch failed. */
  failed(error: TokenFetchError): void;
}

/** One fetch at a time for all callers. */
export interface Flights {
  /** The fetch under way, or a new one; `rejected`: the refused token it must replace. */
  start(why: { rejected: string | undefined }): Promise<Cached>;
  /** Whether a fetch is under way. */
  active(): boolean;
  /**
   * Sign-out or dispose: the fetch under way belongs to a session that ended here; its callers
   * get `reason` (Canceled).
   */
  abandon(reason: TokenFetchError): void;
}

interface Flight {
  controller: AbortController;
  promise: Promise<Cached> | undefined;
  /** A refused token this flight replaces (the first one it was asked to). */
  rejected: string | undefined;
}

export function createFlights(session: Session, plan: FlightPlan): Flights {
  let flight: Flight | undefined;

  const fly = async (self: Flight): Promise<Cached> => {
    const { signal } = self.controller;
    try {
      const fetched = await plan.run(signal, self.rejected);
      // clear() came first: this token belongs to a session that ended.
      if (flight !== self) throw signal.reason;
      flight = undefined;
      session.fetched();
      const landed =
        fetched === undefined ? plan.adopted() : plan.landed(fetched, self.rejected !== undefined);
      if (landed === undefined) throw signal.reason;
      return landed;
    } catch (error) {
      const failure = toTokenFetchError(error, signal);
      if (flight === self) {
        flight = undefined;
        plan.failed(failure);
      }
      throw failure;
    }
  };

  return {
    start({ rejected }) {
      if (flight?.promise !== undefined) {
        flight.rejected ??= rejected;
        return flight.promise;
      }
      const repeated = session.pending();
      if (repeated !== undefined) return Promise.reject(repeated);
      const self: Flight = { controller: new AbortController(), promise: undefined, rejected };
      flight = self;
      const promise = fly(self);
      self.promise = promise;
      // Every caller may have stopped waiting; the outcome is still handled.
      promise.catch(() => {});
      return promise;
    },
    active: () => flight !== undefined,
    abandon(reason) {
      const abandoned = flight;
      flight = undefined;
      abandoned?.controller.abort(reason);
    },
  };
}
