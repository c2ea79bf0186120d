import { abortReason, race, toTokenFetchError, withTimeout } from "../core/abort.js";
import { now } from "../core/clock.js";
import type { DpopSigner } from "../core/grant.js";
import type { SessionAnswer, SharedToken, SourceLink, TabLink } from "../core/tab-sharing.js";
import { TokenFetchCode, type TokenFetchError } from "../core/token-fetch-error.js";
import type { DpopKey } from "../dpop/dpop-proofs.js";
import { createTokenEvents, type TokenEvents } from "./events.js";
import { type Fetched, HEADER_SAFE, toFetched } from "./grant-result.js";
import type { ResolvedOptions } from "./options.js";
import { cleared, disposed, refusedAgain } from "./refusals.js";
import { revoke } from "./revoke.js";
import { createSession, type Session } from "./session.js";
import { createFlights, type Flights } from "./single-flight.js";
import { type Cached, createTokenCache, type TokenCache } from "./token-cache.js";
import { type Entry, expiresAt, isFresh, isUsable, newEntry } from "./token-lifetime.js";
import { listenForWakeUp } from "./wake-up.js";

/** A source's parts, and the steps that keep them, the other tabs and the listeners in step. */
export interface SourceState {
  readonly options: ResolvedOptions;
  readonly cache: TokenCache;
  readonly session: Session;
  readonly events: TokenEvents;
  readonly flights: Flights;
  readonly tabs: TabLink | undefined;
  /** The source's DPoP key, with `dpop`. */
  readonly dpop: DpopKey | undefined;
  /** The server refused `token` (here): dropped, and told to the other tabs. */
  rejectHere(token: string): void;
  /** `clear()` here: the session ends in every tab, and its grant state is revoked. */
  signOutHere(): void;
  /** A token for a caller; `rejected` is the refused token a new one must replace. */
  obtain(signal: AbortSignal | undefined, rejected: string | undefined): Promise<string>;
  /**
   * While a page restored from the back/forward cache asks the other tabs what it missed: what
   * a call waits for before it may use the cached token. `undefined` otherwise.
   */
  syncing(): Promise<void> | undefined;
  /** `dispose()`: lets go of the channel, the listeners and the fetch under way; signs nobody out. */
  dispose(): void;
  /** Whether `dispose()` was called. */
  disposed(): boolean;
}

/** Builds a source's parts from its checked options and links them to the other tabs. */
export function createSourceState(options: ResolvedOptions): SourceState {
  const { grant, timeoutMs, crossTab } = options;
  const events = createTokenEvents();
  const cache = createTokenCache();
  // The link to the other tabs (and the DPoP key it shares) is made once the steps and flights
  // it calls back exist, below; nothing uses either before then.
  let tabs: TabLink | undefined;
  let dpop: DpopKey | undefined;
  const session = createSession(events.emit, (error, until) => tabs?.failed(error, until));
  // Sign-out gives up the DPoP key, so the next session's proofs are not linked to this one's.
  const keys = { rotate: () => dpop?.rotate() };
  const steps = createSteps(options, cache, session, events, keys);
  const flights = createFlights(session, {
    run(signal, rejected) {
      const own = () => fetchOwn({ options, cache, dpop, failed: steps.failed }, signal, rejected);
      // Announced without the state: a tab that needs it asks, waiting for the lock. The epoch
      // tells the others whether the state they hold is now spent.
      const publish = (f: Fetched) => shared(f.entry, f.bound, cache.epochAfter(f.state));
      return tabs === undefined ? own() : tabs.fetch(own, publish, signal);
    },
    landed: (fetched, replacement) => steps.install(fetched, { from: "fetch", replacement }),
    adopted: () => cache.entry,
    failed: (error) => events.emit({ type: "error", error }),
  });
  // Another tab signed out without the state: the tab whose fetch made it revokes it.
  const revokeLeft = (held: { state: string; dpop: DpopSigner | undefined }) =>
    revoke(grant, held, timeoutMs, events.emit);
  tabs = crossTab?.link(
    linkFor(steps, cache, flights, options.refreshMarginMs, revokeLeft),
    timeoutMs,
  );
  dpop = options.dpop?.bind(tabs);
  // A grant that works outside a fetch (a sign-in by redirect) gets the key once, now.
  grant.attach?.({ dpop });
  const life = createLifecycle({ cache, session, flights, events, tabs });
  return {
    options,
    cache,
    session,
    events,
    flights,
    tabs,
    dpop,
    rejectHere(token) {
      if (!cache.isRejected(token)) tabs?.rejected(token);
      steps.reject(token);
    },
    signOutHere() {
      const dropped = steps.signOut(undefined, flights);
      const { state, signer } = dropped;
      tabs?.cleared(dropped.token, state !== undefined);
      if (state !== undefined) revoke(grant, { state, dpop: signer }, timeoutMs, events.emit);
    },
    obtain: (signal, rejected) => obtain(cache, flights, signal, rejected),
    ...life,
  };
}

/**
 * A source's life in the page: it refreshes ahead when the page comes back, re-syncs after the
 * back/forward cache, and lets go of everything on `dispose()`.
 */
function createLifecycle(parts: {
  cache: TokenCache;
  session: Session;
  flights: Flights;
  events: TokenEvents;
  tabs: TabLink | undefined;
}): Pick<SourceState, "syncing" | "dispose" | "disposed"> {
  const { cache, session, flights, events, tabs } = parts;
  let ended = false;
  let syncing: Promise<void> | undefined;
  /** A stale or expired token is refreshed now, once for every tab, rather than at the next call. */
  const refreshAhead = () => {
    const { entry } = cache;
    if (ended || entry === undefined || isFresh(entry) || flights.active()) return;
    if (session.pending() !== undefined) return;
    flights.start({ rejected: undefined }).catch(() => {});
  };
  const stopListening = listenForWakeUp({
    woke: refreshAhead,
    restored() {
      if (tabs === undefined || syncing !== undefined) return refreshAhead();
      const asked = tabs.sync().finally(() => {
        if (syncing === asked) syncing = undefined;
        refreshAhead();
      });
      syncing = asked;
    },
  });
  return {
    syncing: () => syncing,
    dispose() {
      if (ended) return;
      ended = true;
      flights.abandon(disposed());
      stopListening();
      tabs?.close();
      events.clear();
    },
    disposed: () => ended,
  };
}

/** The steps a change of token takes, whether it started here or in another tab. */
function createSteps(
  options: ResolvedOptions,
  cache: TokenCache,
  session: Session,
  events: TokenEvents,
  keys: { rotate(): DpopSigner | undefined },
) {
  let bearerTold = false;
  return {
    install(fetched: Fetched, how: { from: "fetch" | "shared"; replacement: boolean }): Cached {
      const cached = cache.install(fetched, how.replacement);
      if (how.from === "fetch") cache.owner = fetched.state !== undefined;
      events.emit({ type: "token", expiresAt: expiresAt(cached), source: how.from });
      // A DPoP source given a bearer token says so once a session: an app may refuse it.
      if (options.dpop !== undefined && !fetched.bound && !bearerTold) {
        bearerTold = true;
        events.emit({ type: "bearer-token" });
      }
      return cached;
    },
    reject(token: string): void {
      if (cache.reject(token)) events.emit({ type: "rejected" });
    },
    /** A failure here (`tell` the other tabs) or in another tab (with its `until`). */
    failed(error: TokenFetchError, how: { tell: boolean; until?: number | undefined }): void {
      // A refusal here also spends what the grant kept (the refresh token it was refused with);
      // another tab's refusal leaves this tab's state alone: that tab may have sent none.
      if (session.failed(error, how) && how.tell) cache.state = undefined;
    },
    /** Ends the session; `signedOut` is the token another tab dropped, if it was there. */
    signOut(signedOut: string | undefined, flights: Flights) {
      const dropped = cache.retire(signedOut);
      session.reset();
      flights.abandon(cleared());
      options.grant.reset?.();
      // The old key still signs the revocation of what was bound to it.
      const signer = keys.rotate();
      bearerTold = false;
      events.emit({ type: "cleared" });
      return { ...dropped, signer };
    },
  };
}

type Steps = ReturnType<typeof createSteps>;

/** What the other tabs may do to this source. */
function linkFor(
  steps: Steps,
  cache: TokenCache,
  flights: Flights,
  refreshMarginMs: number,
  revokeLeft: (held: { state: string; dpop: DpopSigner | undefined }) => void,
): SourceLink {
  return {
    announced(offered) {
      // Signed out: only a token that answers this tab's own question is taken.
      if (cache.quiet) return false;
      // Another tab rotated the grant's state: the one held here is spent.
      if (offered.epoch > cache.epoch) {
        cache.epoch = offered.epoch;
        cache.state = undefined;
        cache.owner = false;
      }
      return adopt(steps, cache, offered, refreshMarginMs);
    },
    answered: (answer) => answered(steps, cache, flights, answer, refreshMarginMs),
    handedOver(answer) {
      if (cache.quiet) return;
      answered(steps, cache, flights, answer, refreshMarginMs);
      // The tab that made the state left: this one answers for it now.
      if (cache.state === answer.state) cache.owner = true;
    },
    rejected: (token) => steps.reject(token),
    cleared(token, revoked) {
      const owner = cache.owner;
      const dropped = steps.signOut(token, flights);
      const { state, signer } = dropped;
      if (!revoked && owner && state !== undefined) revokeLeft({ state, dpop: signer });
    },
    answer(asked) {
      const retired = asked !== undefined && cache.isRetired(asked);
      const { entry, state, epoch } = cache;
      // A stale token is not handed over: the asker refreshes, with the state, for every tab.
      const token = entry !== undefined && isFresh(entry) ? entry : undefined;
      if (token === undefined && state === undefined && !retired) return undefined;
      return { token: token && shared(token, token.bound, epoch), state, epoch, retired };
    },
    held: () => cache.entry?.token,
    epoch: () => cache.epoch,
    failed: (error, until) => steps.failed(error, { tell: false, until }),
  };
}

/**
 * Another tab answered this tab's question: a sign-out it missed applies first; then the newest
 * state is kept (a refresh token to fetch with) and a fresh token taken. Returns whether this tab
 * now has a fresh token.
 */
function answered(
  steps: Steps,
  cache: TokenCache,
  flights: Flights,
  answer: SessionAnswer,
  refreshMarginMs: number,
): boolean {
  if (answer.retired && cache.entry !== undefined) steps.signOut(cache.entry.token, flights);
  cache.quiet = false;
  if (answer.epoch > cache.epoch || (answer.epoch === cache.epoch && cache.state === undefined)) {
    cache.owner &&= cache.state === answer.state;
    cache.epoch = answer.epoch;
    cache.state = answer.state;
  }
  const { token } = answer;
  if (token === undefined || cache.isRejected(token.token)) return false;
  const entry = cache.entry;
  if (entry?.token === token.token) return isFresh(entry);
  const lifetimeMs = token.expiresAt === undefined ? undefined : token.expiresAt - now();
  if (lifetimeMs !== undefined && !isFresh(newEntry(token.token, lifetimeMs, refreshMarginMs))) {
    return false;
  }
  return adopt(steps, cache, token, refreshMarginMs);
}

/** A token as the tabs share it, with its binding and the session's epoch; never the state. */
function shared(entry: Entry, bound: boolean, epoch: number): SharedToken {
  return { token: entry.token, expiresAt: expiresAt(entry), bound, epoch };
}

/** Fetches a token with this source's own grant, bounded by timeoutMs. */
async function fetchOwn(
  own: {
    options: ResolvedOptions;
    cache: TokenCache;
    dpop: DpopKey | undefined;
    failed: Steps["failed"];
  },
  signal: AbortSignal,
  rejected: string | undefined,
): Promise<Fetched> {
  const { options, cache, dpop } = own;
  try {
    const result = await withTimeout(options.timeoutMs, signal, (bounded) =>
      options.grant({ signal: bounded, state: cache.state, dpop, rejected }),
    );
    const fetched = toFetched(result, {
      refreshMarginMs: options.refreshMarginMs,
      dpop: dpop !== undefined,
    });
    if (cache.isRejected(fetched.entry.token)) throw refusedAgain();
    return fetched;
  } catch (error) {
    const failure = toTokenFetchError(error, signal);
    // Told while this tab holds the lock, so the tabs in line fail with it, not fetch again;
    // but not a refusal made here without asking the server (no credentials in this tab).
    const local = failure.code === TokenFetchCode.Unauthenticated && failure.status === undefined;
    const tell = !local || failure.reason === "token-refused";
    if (!signal.aborted) own.failed(failure, { tell });
    throw failure;
  }
}

/** A token for a caller: from the flight, or the still-valid one when a refresh ahead failed. */
function obtain(
  cache: TokenCache,
  flights: Flights,
  signal: AbortSignal | undefined,
  rejected: string | undefined,
): Promise<string> {
  if (signal?.aborted) return Promise.reject(abortReason(signal));
  const stale = cache.entry;
  const token = flights.start({ rejected }).then(
    (next) => next.token,
    (error: unknown) => {
      // A refresh ahead of expiry failed: the current token is still good for a while.
      if (stale !== undefined && cache.entry === stale && isUsable(stale)) return stale.token;
      throw error;
    },
  );
  return race(token, { signal });
}

/** Takes a token another tab has, unless it is known bad, signed out of or already expired. */
function adopt(
  steps: Steps,
  cache: TokenCache,
  offered: SharedToken,
  refreshMarginMs: number,
): boolean {
  const { token } = offered;
  if (cache.isRejected(token) || cache.isRetired(token) || !HEADER_SAFE.test(token)) return false;
  if (cache.entry?.token === token) return true;
  const lifetimeMs = offered.expiresAt === undefined ? undefined : offered.expiresAt - now();
  if (lifetimeMs !== undefined && !(lifetimeMs > 0)) return false;
  const entry = newEntry(token, lifetimeMs, refreshMarginMs);
  const bound = offered.bound ?? true;
  // The state stays this tab's own: tokens travel without it.
  steps.install({ entry, state: cache.state, bound }, { from: "shared", replacement: false });
  return true;
}
