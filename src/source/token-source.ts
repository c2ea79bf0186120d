import type { TokenSource } from "../core/token-source.js";
import { resolveOptions, type TokenSourceOptions } from "./options.js";
import { refusedAgain, signedOut } from "./refusals.js";
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
 * ```
 */
export function createTokenSource(options: TokenSourceOptions): TokenSource {
  const state = createSourceState(resolveOptions(options));
  return { ...callerMethods(state), ...interceptorMethods(state) };
}

/** What callers use: tokens, refusals, sign-out and events. */
function callerMethods(state: SourceState) {
  const { cache, session, flights, events } = state;
  return {
    getToken(requestOptions?: { signal?: AbortSignal | undefined }) {
      const signal = requestOptions?.signal;
      const current = cache.entry;
      if (current !== undefined && isFresh(current) && !signal?.aborted) {
        return Promise.resolve(current.token);
      }
      return state.obtain(signal, undefined);
    },
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
function interceptorMethods({ cache, session, dpop }: SourceState) {
  return {
    current: () => (cache.entry?.proven && isFresh(cache.entry) ? cache.entry.token : undefined),
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
