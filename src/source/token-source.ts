import type { DisposableTokenSource, TokenSource } from "../core/token-source.js";
import { type ResolvedOptions, resolveOptions, type TokenSourceOptions } from "./options.js";
import { disposed, refusedAgain, signedOut } from "./refusals.js";
import { createSourceState, type SourceState } from "./source-state.js";
import { expiresAt, isFresh, isUsable } from "./token-lifetime.js";

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
 * // When the app (or a React effect, or a hot-replaced module) is done with it:
 * tokens.dispose();
 * ```
 */
export function createTokenSource(options: TokenSourceOptions): DisposableTokenSource {
  const state = createSourceState(requireSharingForStore(resolveOptions(options)));
  const source = { ...callerMethods(state), ...interceptorMethods(state) };
  const dispose = () => state.dispose();
  return { ...guarded(source, state), dispose, [Symbol.dispose]: dispose };
}

/**
 * A grant that keeps its state where every tab reads it (a refresh-token `store`) needs the tabs
 * to take turns: each tab refreshing on its own presents refresh tokens another tab has spent.
 */
function requireSharingForStore(options: ResolvedOptions): ResolvedOptions {
  if (options.grant.persistent === true && options.crossTab === undefined) {
    throw new TypeError(
      'createTokenSource: fetchToken keeps its refresh token in a store every tab reads: add crossTab: shareAcrossTabs("my-app"), so one tab at a time refreshes it and hands the new one to the others',
    );
  }
  return options;
}

/** A disposed source fails its callers; the calls the interceptors make after a call do nothing. */
function guarded(source: Required<TokenSource>, state: SourceState): Required<TokenSource> {
  const closed = state.disposed;
  return {
    ...source,
    getToken: (o) => (closed() ? Promise.reject(disposed()) : source.getToken(o)),
    refresh: (token, o) => (closed() ? Promise.reject(disposed()) : source.refresh(token, o)),
    clear() {
      if (closed()) throw disposed();
      source.clear();
    },
    invalidate: (token) => (closed() ? undefined : source.invalidate(token)),
    subscribe: (listener) => (closed() ? () => {} : source.subscribe(listener)),
    peek: () => (closed() ? undefined : source.peek()),
    current: () => (closed() ? undefined : source.current()),
    proven: (token) => (closed() ? undefined : source.proven(token)),
  };
}

/** What callers use: tokens, refusals, sign-out and events. */
function callerMethods(state: SourceState) {
  const { cache, session, flights, events } = state;
  const getToken = (requestOptions?: { signal?: AbortSignal | undefined }): Promise<string> => {
    const signal = requestOptions?.signal;
    // A page back from the back/forward cache first hears what it missed (a sign-out).
    const syncing = state.syncing();
    if (syncing !== undefined) return syncing.then(() => getToken(requestOptions));
    const current = cache.entry;
    if (current !== undefined && isFresh(current) && !signal?.aborted) {
      return Promise.resolve(current.token);
    }
    return state.obtain(signal, undefined);
  };
  return {
    getToken,
    refresh(rejected: string, requestOptions?: { signal?: AbortSignal | undefined }) {
      assertToken(rejected, "refresh");
      if (cache.isRetired(rejected)) return Promise.reject(signedOut());
      const before = cache.known(rejected);
      state.rejectHere(rejected);
      const current = cache.entry;
      if (current !== undefined && current.gen > (before?.gen ?? 0) && isUsable(current)) {
        return Promise.resolve(current.token);
      }
      // The token that replaced this one was refused too: another will not help.
      if (!flights.active() && before !== undefined && session.refusedSince(before.gen)) {
        return Promise.reject(session.pending() ?? refusedAgain());
      }
      return state.obtain(requestOptions?.signal, rejected);
    },
    invalidate(rejected: string) {
      assertToken(rejected, "invalidate");
      const cached = cache.known(rejected);
      state.rejectHere(rejected);
      if (cached?.replacement && !cached.proven) session.freshRefused(cached.gen, refusedAgain());
    },
    clear: () => state.signOutHere(),
    subscribe: events.subscribe,
    peek() {
      const { entry } = cache;
      return entry && { expiresAt: expiresAt(entry), fresh: isFresh(entry) };
    },
  } satisfies TokenSource;
}

/** What the interceptors use (the documented contract a wrapper delegates too). */
function interceptorMethods({ cache, session, dpop, syncing }: SourceState) {
  return {
    current: () =>
      cache.entry?.proven && isFresh(cache.entry) && syncing() === undefined
        ? cache.entry.token
        : undefined,
    proven(token: string) {
      const cached = cache.known(token);
      if (cached === undefined || cached.proven) return;
      cached.proven = true;
      if (cached === cache.entry) session.proven();
    },
    // A token the endpoint issued as Bearer goes without a proof, even on a DPoP source.
    proofFor: (token: string) => (cache.known(token)?.bound === false ? undefined : dpop),
  } satisfies Partial<TokenSource>;
}

function assertToken(token: unknown, method: string): void {
  if (typeof token !== "string") {
    throw new TypeError(`${method}: the rejected token must be a string`);
  }
}
