import type { Fetched } from "./grant-result.js";
import type { Entry } from "./token-lifetime.js";

/** A token this source held, with what its refresh and replay rules need. */
export interface Cached extends Entry {
  /** Counts tokens this source has held, so "newer than" has a meaning. */
  gen: number;
  /** Fetched because the token before it was refused. */
  replacement: boolean;
  /** A call succeeded with it. */
  proven: boolean;
  /** Bound to the source's DPoP key (sent with a proof); false for a Bearer token. */
  bound: boolean;
}

/** The tokens a source holds, refused and signed out of, remembered by value. */
export interface TokenCache {
  /** The current token, if any. */
  entry: Cached | undefined;
  /** The grant's state (a refresh token) that goes with the current token. */
  state: string | undefined;
  /**
   * How many grant states the session went through, as far as this tab heard (the tabs count
   * together): a token announced with a higher epoch means `state` is spent.
   */
  epoch: number;
  /**
   * Signed out, and nothing asked for since: a token another tab announces unasked is not taken
   * (it may be forged, or from the session that ended).
   */
  quiet: boolean;
  /**
   * `state` came from this tab's own fetch (or was handed over by a tab that left): of the tabs
   * holding it, this one revokes it when another tab signs out without holding it.
   */
  owner: boolean;
  /** The epoch a fetch that returned `state` starts: one more when the state rotated. */
  epochAfter(state: string | undefined): number;
  /** Makes `fetched` the current token, one generation newer than the last. */
  install(fetched: Fetched, replacement: boolean): Cached;
  /** A token of this session, by value. */
  known(token: string): Cached | undefined;
  /** The server refused it: it is never handed out again. */
  isRejected(token: string): boolean;
  /** It belongs to a session that was signed out: nothing may revive it or fetch for it. */
  isRetired(token: string): boolean;
  /** Marks `token` refused; returns whether it was the current one, now dropped. */
  reject(token: string): boolean;
  /** Sign-out: retires every token of the session; returns the token and state it dropped. */
  retire(signedOut: string | undefined): { token: string | undefined; state: string | undefined };
}

const REMEMBERED_TOKENS = 64;

export function createTokenCache(): TokenCache {
  let generation = 0;
  /** Tokens of this session, by value: what refresh() compares generations with. */
  const known = new Map<string, Cached>();
  const rejected = new Set<string>();
  const retired = new Set<string>();

  const cache: TokenCache = {
    entry: undefined,
    state: undefined,
    epoch: 0,
    quiet: false,
    owner: false,
    epochAfter: (state) => (state === cache.state ? cache.epoch : cache.epoch + 1),
    install(fetched, replacement) {
      const cached: Cached = {
        ...fetched.entry,
        gen: ++generation,
        replacement,
        proven: false,
        bound: fetched.bound,
      };
      cache.epoch = cache.epochAfter(fetched.state);
      cache.entry = cached;
      cache.state = fetched.state;
      remember(known, cached.token, cached);
      return cached;
    },
    known: (token) => known.get(token),
    isRejected: (token) => rejected.has(token),
    isRetired: (token) => retired.has(token),
    reject(token) {
      remember(rejected, token, token);
      if (cache.entry?.token !== token) return false;
      cache.entry = undefined;
      return true;
    },
    retire(signedOut) {
      const dropped = { token: cache.entry?.token, state: cache.state };
      for (const token of known.keys()) remember(retired, token, token);
      if (signedOut !== undefined) remember(retired, signedOut, signedOut);
      known.clear();
      cache.entry = cache.state = undefined;
      cache.quiet = true;
      cache.owner = false;
      return dropped;
    },
  };
  return cache;
}

/** Adds to a map (or set) that remembers only the most recent tokens. */
function remember<T>(store: Map<string, T> | Set<string>, token: string, value: T): void {
  store.delete(token);
  if (store instanceof Map) store.set(token, value);
  else store.add(token);
  if (store.size > REMEMBERED_TOKENS) store.delete(store.keys().next().value as string);
}
