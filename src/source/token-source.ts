import { abortReason, race, toTokenFetchError, withTimeout } from "../core/abort.js";
import type { TokenGrant } from "../core/grant.js";
import type { SharedToken, TabLink } from "../core/tab-sharing.js";
import { TokenFetchCode, TokenFetchError } from "../core/token-fetch-error.js";
import type { TokenEvent, TokenSource } from "../core/token-source.js";
import { createTokenEvents } from "./events.js";
import { type Fetched, HEADER_SAFE, toFetched } from "./grant-result.js";
import { resolveOptions, type TokenSourceOptions } from "./options.js";
import { createSession, type Session } from "./session.js";
import { createFlights, type Flights } from "./single-flight.js";
import { type Cached, createTokenCache, type TokenCache } from "./token-cache.js";
import { type Entry, expiresAt, isFresh, isUsable, newEntry } from "./token-lifetime.js";

/**
 * Creates a token source: gets a token through its grant, caches it, refreshes it shortly before
 * it expires, and makes one request however many callers need a token at once.
 *
 * @example
 * ```ts
 * import { createTokenSource, passwordGrant } from "grpc-web-auth";
 *
 * const tokens = createTokenSource({
 *   fetchToken: passwordGrant({ endpoint: "/auth/token", credentials: () => form.credentials() }),
 * });
 * ```
 */
export function createTokenSource(options: TokenSourceOptions): TokenSource {
  const { grant, timeoutMs, refreshMarginMs, crossTab, dpop: proofs } = resolveOptions(options);
  const events = createTokenEvents();
  const cache = createTokenCache();
  const session = createSession(events.emit, (error, until) => tabs?.failed(error, until));

  const share = (entry: Entry): SharedToken => ({
    token: entry.token,
    expiresAt: expiresAt(entry),
    state: cache.state,
  });
  const state: SourceState = {
    cache,
    session,
    events,
    install(fetched, from, replacement) {
      const cached = cache.install(fetched, replacement);
      events.emit({ type: "token", expiresAt: expiresAt(cached), source: from });
      return cached;
    },
    reject(token, tell) {
      if (tell && !cache.isRejected(token)) tabs?.rejected(token);
      if (cache.reject(token)) events.emit({ type: "rejected" });
    },
    failed(error, tell, until) {
      // A refusal here also spends what the grant kept (the refresh token it was refused with);
      // another tab's refusal leaves this tab's state alone: that tab may have sent none.
      if (session.failed(error, tell, until) && tell) cache.state = undefined;
    },
    signOut(tell, signedOut) {
      const dropped = cache.retire(signedOut);
      session.reset();
      flights.abandon();
      grant.reset?.();
      if (tell) {
        tabs?.cleared(dropped.token);
        if (dropped.state !== undefined) revoke(grant, dropped.state, timeoutMs, events.emit);
      }
      events.emit({ type: "cleared" });
    },
    obtain: (signal, replacement) => obtain(state, signal, replacement),
    flights: undefined as never,
  };
  const tabs: TabLink | undefined = crossTab?.link(
    {
      adopt: (shared) => adopt(state, shared, refreshMarginMs),
      rejected: (token) => state.reject(token, false),
      cleared: (token) => state.signOut(false, token),
      current: () => (cache.entry && isFresh(cache.entry) ? share(cache.entry) : undefined),
      failed: (error, until) => state.failed(error, false, until),
    },
    timeoutMs,
  );
  const dpop = proofs?.bind(tabs);
  grant.attach?.({ dpop });

  /** Fetches a token with this source's own grant, bounded by timeoutMs. */
  const fetchOwn = async (signal: AbortSignal): Promise<Fetched> => {
    try {
      const result = await withTimeout(timeoutMs, signal, (bounded) =>
        grant({ signal: bounded, state: cache.state, dpop }),
      );
      const fetched = toFetched(result, refreshMarginMs);
      if (cache.isRejected(fetched.entry.token)) throw refusedAgain();
      return fetched;
    } catch (error) {
      const failure = toTokenFetchError(error, signal);
      // Told while this tab holds the lock, so the tabs in line fail with it, not fetch again;
      // but not a refusal made here without asking the server (no credentials in this tab).
      const local = failure.code === TokenFetchCode.Unauthenticated && failure.status === undefined;
      if (!signal.aborted) state.failed(failure, !local || failure.reason === "token-refused");
      throw failure;
    }
  };
  const flights = createFlights(session, {
    run(signal) {
      const own = () => fetchOwn(signal);
      // Published with the state it came with: the rotated refresh token, not the spent one.
      const publish = (f: Fetched) => ({ ...share(f.entry), state: f.state });
      return tabs === undefined ? own() : tabs.fetch(own, publish, signal);
    },
    landed: (fetched, replacement) => state.install(fetched, "fetch", replacement),
    adopted: () => cache.entry,
    failed: (error) => events.emit({ type: "error", error }),
  });
  state.flights = flights;

  return {
    ...sourceMethods(state),
    current: () => (cache.entry?.proven && isFresh(cache.entry) ? cache.entry.token : undefined),
    proven(token) {
      const cached = cache.known(token);
      if (cached === undefined || cached.proven) return;
      cached.proven = true;
      if (cached === cache.entry) session.proven();
    },
    proofFor: () => dpop,
  };
}

/** What a source's parts share: its cache, session, flights and the steps that tell listeners. */
interface SourceState {
  cache: TokenCache;
  session: Session;
  events: ReturnType<typeof createTokenEvents>;
  flights: Flights;
  install(fetched: Fetched, from: "fetch" | "shared", replacement: boolean): Cached;
  /** The server refused `token`; `tell` the other tabs. */
  reject(token: string, tell: boolean): void;
  failed(error: TokenFetchError, tell: boolean, until?: number): void;
  /** `clear()` here (`tell`), or in another tab (`signedOut`: the token it dropped). */
  signOut(tell: boolean, signedOut: string | undefined): void;
  obtain(signal: AbortSignal | undefined, replacement: boolean): Promise<string>;
}

/** The public methods of a source. */
function sourceMethods(state: SourceState): TokenSource {
  const { cache, session, flights, events } = state;
  return {
    getToken(requestOptions) {
      const signal = requestOptions?.signal;
      const current = cache.entry;
      if (current !== undefined && isFresh(current) && !signal?.aborted) {
        return Promise.resolve(current.token);
      }
      return state.obtain(signal, false);
    },
    refresh(rejected, requestOptions) {
      assertToken(rejected, "refresh");
      if (cache.isRetired(rejected)) return Promise.reject(signedOut());
      const before = cache.known(rejected);
      state.reject(rejected, true);
      const current = cache.entry;
      if (current !== undefined && current.gen > (before?.gen ?? 0) && isUsable(current)) {
        return Promise.resolve(current.token);
      }
      // The token that replaced this one was refused too: another will not help.
      if (!flights.active() && before !== undefined && session.refusedSince(before.gen)) {
        return Promise.reject(session.pending() ?? refusedAgain());
      }
      return state.obtain(requestOptions?.signal, true);
    },
    invalidate(rejected) {
      assertToken(rejected, "invalidate");
      const cached = cache.known(rejected);
      state.reject(rejected, true);
      if (cached?.replacement && !cached.proven) session.freshRefused(cached.gen, refusedAgain());
    },
    clear: () => state.signOut(true, undefined),
    subscribe: events.subscribe,
    peek() {
      const { entry } = cache;
      return entry && { expiresAt: expiresAt(entry), fresh: isFresh(entry) };
    },
  };
}

/** A token for a caller: from the flight, or the still-valid one when a refresh ahead failed. */
function obtain(
  { cache, flights }: SourceState,
  signal: AbortSignal | undefined,
  replacement: boolean,
): Promise<string> {
  if (signal?.aborted) return Promise.reject(abortReason(signal));
  const stale = cache.entry;
  const token = flights.start(replacement).then(
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
function adopt(state: SourceState, shared: SharedToken, refreshMarginMs: number): boolean {
  const { token } = shared;
  const { cache } = state;
  if (cache.isRejected(token) || cache.isRetired(token) || !HEADER_SAFE.test(token)) return false;
  if (cache.entry?.token === token) return true;
  const lifetimeMs = shared.expiresAt === undefined ? undefined : shared.expiresAt - Date.now();
  if (lifetimeMs !== undefined && !(lifetimeMs > 0)) return false;
  const entry = newEntry(token, lifetimeMs, refreshMarginMs);
  state.install({ entry, state: shared.state }, "shared", false);
  return true;
}

/**
 * Revokes the session's grant state at the server, bounded by timeoutMs; a failure reaches the
 * listeners as `revoke-failed` (a grant's own error is told by its name only: it may quote the
 * token).
 */
function revoke(
  grant: TokenGrant,
  held: string,
  timeoutMs: number,
  emit: (event: TokenEvent) => void,
): void {
  if (grant.revoke === undefined) return;
  const signal = AbortSignal.timeout(timeoutMs);
  const { revoke: send } = grant;
  // A revoke that throws at once, or returns no promise, must not break clear() either.
  race(
    Promise.resolve().then(() => send({ state: held, signal })),
    { signal },
  ).catch((error: unknown) => {
    const failure =
      error instanceof TokenFetchError
        ? error
        : signal.aborted
          ? new TokenFetchError(`the revocation did not finish within ${timeoutMs} ms`, {
              code: TokenFetchCode.Unavailable,
            })
          : new TokenFetchError(
              `the grant's revoke failed (${error instanceof Error ? error.name : typeof error})`,
              { code: TokenFetchCode.Internal },
            );
    emit({ type: "revoke-failed", error: failure });
  });
}

function assertToken(token: unknown, method: string): void {
  if (typeof token !== "string") {
    throw new TypeError(`${method}: the rejected token must be a string`);
  }
}

function refusedAgain(): TokenFetchError {
  return new TokenFetchError(
    "the server refused a token fetched to replace a refused one: a new token will not help",
    { code: TokenFetchCode.Unauthenticated, reason: "token-refused" },
  );
}

function signedOut(): TokenFetchError {
  return new TokenFetchError("the token belongs to a session that was signed out", {
    code: TokenFetchCode.Unauthenticated,
  });
}
