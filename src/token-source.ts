import { abortReason, raceSignal, toTokenFetchError, withTimeout } from "./abort.js";
import { type Fetched, HEADER_SAFE, toFetched } from "./grant-result.js";
import type { ProofScheme } from "./proof-scheme.js";
import { reportError } from "./report-error.js";
import { createSession } from "./session.js";
import { resolveOptions } from "./source-options.js";
import type { SharedToken, SourceLink, TabLink } from "./tab-sharing.js";
import { TokenFetchCode, TokenFetchError } from "./token-fetch-error.js";
import { type Entry, expiresAt, isFresh, isUsable, newEntry } from "./token-lifetime.js";
import type { TokenEvent, TokenSource, TokenSourceOptions } from "./token-source-api.js";

export type {
  TokenEvent,
  TokenInfo,
  TokenRequestOptions,
  TokenSource,
  TokenSourceOptions,
} from "./token-source-api.js";

/** What the interceptors of this library get from a source made by {@link createTokenSource}. */
export interface SourceInternals {
  /** The cached token, synchronously, when it is fresh and a call succeeded with it. */
  fresh(): string | undefined;
  /** A call succeeded with `token`. */
  proven(token: string): void;
  /** What proves possession of the source's key on each attempt (DPoP), if anything. */
  proofs: ProofScheme | undefined;
}

const internals = new WeakMap<TokenSource, SourceInternals>();

/** The fast-path hooks of a source made by {@link createTokenSource}; other sources have none. */
export function internalsOf(source: TokenSource): SourceInternals | undefined {
  return internals.get(source);
}

interface Cached extends Entry {
  /** Counts tokens this source has held, so "newer than" has a meaning. */
  gen: number;
  /** Fetched because the token before it was refused. */
  replacement: boolean;
  /** A call succeeded with it. */
  proven: boolean;
}

interface Flight {
  /** Aborted by clear(): the fetch belongs to a session that ended. */
  controller: AbortController;
  promise: Promise<Cached>;
  replacement: boolean;
}

const REMEMBERED_TOKENS = 64;

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

  let entry: Cached | undefined;
  let flight: Flight | undefined;
  /** The grant's state (a refresh token), kept with the token. */
  let state: string | undefined;
  let generation = 0;
  /** Tokens of this session, by value: what refresh() compares generations with. */
  const known = new Map<string, Cached>();
  const rejected = new Set<string>();
  // Tokens of a session that was signed out: nothing may revive them or fetch for them.
  const retired = new Set<string>();
  const listeners = new Set<(event: TokenEvent) => void>();
  const session = createSession(emit, (error, until) => tabs?.failed(error, until));

  function emit(event: TokenEvent): void {
    for (const listener of listeners) {
      try {
        listener(event);
      } catch (error) {
        // A broken listener must not break token handling.
        reportError(error);
      }
    }
  }

  function install(fetched: Fetched, from: "fetch" | "shared", replacement: boolean): Cached {
    const cached: Cached = { ...fetched.entry, gen: ++generation, replacement, proven: false };
    entry = cached;
    state = fetched.state;
    remember(known, cached.token, cached);
    emit({ type: "token", expiresAt: expiresAt(cached), source: from });
    return cached;
  }

  function markRejected(token: string, tell: boolean): void {
    if (tell && !rejected.has(token)) tabs?.rejected(token);
    remember(rejected, token, token);
    if (entry?.token === token) {
      entry = undefined;
      emit({ type: "rejected" });
    }
  }

  /** A failure: a refusal also spends what the grant kept (a refresh token it was refused with). */
  function failed(error: TokenFetchError, tell: boolean, until?: number): void {
    if (session.failed(error, tell, until)) state = undefined;
  }

  function forget(tell: boolean, signedOut: string | undefined): void {
    const dropped = entry?.token;
    for (const token of known.keys()) remember(retired, token, token);
    if (signedOut !== undefined) remember(retired, signedOut, signedOut);
    known.clear();
    const held = state;
    entry = state = undefined;
    session.reset();
    if (flight !== undefined) {
      const { controller } = flight;
      flight = undefined;
      controller.abort(
        new TokenFetchError("the token source was cleared", { code: TokenFetchCode.Canceled }),
      );
    }
    grant.reset?.();
    if (tell) {
      tabs?.cleared(dropped);
      if (held !== undefined) revoke(held);
    }
    emit({ type: "cleared" });
  }

  /** Revokes the session's grant state at the server: best effort, bounded by timeoutMs. */
  function revoke(held: string): void {
    if (grant.revoke === undefined) return;
    const signal = AbortSignal.timeout(timeoutMs);
    raceSignal(grant.revoke({ state: held, signal }), signal).catch(() => {});
  }

  const link: SourceLink = {
    adopt(shared) {
      const { token } = shared;
      if (rejected.has(token) || retired.has(token) || !HEADER_SAFE.test(token)) return false;
      if (entry?.token === token) return true;
      const lifetimeMs = shared.expiresAt === undefined ? undefined : shared.expiresAt - Date.now();
      if (lifetimeMs !== undefined && !(lifetimeMs > 0)) return false;
      install(
        { entry: newEntry(token, lifetimeMs, refreshMarginMs), state: shared.state },
        "shared",
        false,
      );
      return true;
    },
    rejected: (token) => markRejected(token, false),
    cleared: (token) => forget(false, token),
    current: () => (entry !== undefined && isFresh(entry) ? share(entry) : undefined),
    failed: (error, until) => failed(error, false, until),
  };
  const tabs: TabLink | undefined = crossTab?.link(link, timeoutMs);
  const dpop = proofs?.bind(tabs);

  function share(cached: Entry): SharedToken {
    return { token: cached.token, expiresAt: expiresAt(cached), state };
  }

  /** Fetches a token with this source's own grant, bounded by timeoutMs. */
  async function fetchOwn(signal: AbortSignal): Promise<Fetched> {
    try {
      const result = await withTimeout(timeoutMs, signal, (bounded) =>
        grant({ signal: bounded, state, dpop }),
      );
      const fetched = toFetched(result, refreshMarginMs);
      if (rejected.has(fetched.entry.token)) throw refusedAgain();
      return fetched;
    } catch (error) {
      const failure = toTokenFetchError(error, signal);
      // Told while this tab holds the lock, so the tabs in line fail with it, not fetch again.
      if (!signal.aborted) failed(failure, true);
      throw failure;
    }
  }

  function startFetch(replacement: boolean): Promise<Cached> {
    if (flight !== undefined) {
      flight.replacement ||= replacement;
      return flight.promise;
    }
    const repeated = session.pending();
    if (repeated !== undefined) return Promise.reject(repeated);
    const self: Flight = {
      controller: new AbortController(),
      promise: undefined as never,
      replacement,
    };
    const { signal } = self.controller;
    flight = self;
    self.promise = (async (): Promise<Cached> => {
      try {
        const own = () => fetchOwn(signal);
        const fetched =
          tabs === undefined ? await own() : await tabs.fetch(own, (f) => share(f.entry), signal);
        // clear() came first: this token belongs to a session that ended.
        if (flight !== self) throw signal.reason;
        flight = undefined;
        session.fetched();
        // undefined: another tab's token was adopted meanwhile.
        return fetched === undefined
          ? (entry as Cached)
          : install(fetched, "fetch", self.replacement);
      } catch (error) {
        const failure = toTokenFetchError(error, signal);
        if (flight === self) {
          flight = undefined;
          emit({ type: "error", error: failure });
        }
        throw failure;
      }
    })();
    // Every caller may have stopped waiting; the outcome is still handled.
    self.promise.catch(() => {});
    return self.promise;
  }

  function obtain(signal: AbortSignal | undefined, replacement: boolean): Promise<string> {
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    const stale = entry;
    const token = startFetch(replacement).then(
      (next) => next.token,
      (error: unknown) => {
        // A refresh ahead of expiry failed: the current token is still good for a while.
        if (stale !== undefined && entry === stale && isUsable(stale)) return stale.token;
        throw error;
      },
    );
    return raceSignal(token, signal);
  }

  const source: TokenSource = {
    getToken(requestOptions) {
      const signal = requestOptions?.signal;
      const current = entry;
      if (current !== undefined && isFresh(current) && !signal?.aborted) {
        return Promise.resolve(current.token);
      }
      return obtain(signal, false);
    },
    refresh(rejectedToken, requestOptions) {
      assertToken(rejectedToken, "refresh");
      if (retired.has(rejectedToken)) return Promise.reject(signedOut());
      const before = known.get(rejectedToken);
      markRejected(rejectedToken, true);
      const current = entry;
      if (current !== undefined && current.gen > (before?.gen ?? 0) && isUsable(current)) {
        return Promise.resolve(current.token);
      }
      // The token that replaced this one was refused too: another will not help.
      if (flight === undefined && before !== undefined && session.refusedSince(before.gen)) {
        return Promise.reject(session.pending() ?? refusedAgain());
      }
      return obtain(requestOptions?.signal, true);
    },
    invalidate(rejectedToken) {
      assertToken(rejectedToken, "invalidate");
      const cached = known.get(rejectedToken);
      markRejected(rejectedToken, true);
      if (cached?.replacement && !cached.proven) session.freshRefused(cached.gen, refusedAgain());
    },
    clear() {
      forget(true, undefined);
    },
    subscribe(listener) {
      if (typeof listener !== "function") {
        throw new TypeError("subscribe: listener must be a function");
      }
      // A wrapper per subscription, so subscribing one function twice needs two unsubscribes.
      const wrapped = (event: TokenEvent) => listener(event);
      listeners.add(wrapped);
      return () => {
        listeners.delete(wrapped);
      };
    },
    peek() {
      if (entry === undefined) return undefined;
      return { expiresAt: expiresAt(entry), fresh: isFresh(entry) };
    },
  };
  internals.set(source, {
    fresh: () => (entry?.proven && isFresh(entry) ? entry.token : undefined),
    proven(token) {
      const cached = known.get(token);
      if (cached === undefined || cached.proven) return;
      cached.proven = true;
      if (cached === entry) session.proven();
    },
    proofs: dpop,
  });
  return source;
}

/** Adds to a map (or set) that remembers only the most recent tokens. */
function remember<T>(store: Map<string, T> | Set<string>, token: string, value: T): void {
  store.delete(token);
  if (store instanceof Map) store.set(token, value);
  else store.add(token);
  if (store.size > REMEMBERED_TOKENS) store.delete(store.keys().next().value as string);
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
