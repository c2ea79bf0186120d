/// <reference lib="esnext.disposable" />
import type { ProofScheme } from "./proof-scheme.js";
import type { SessionEndReason, TokenFetchError } from "./token-fetch-error.js";

/** What {@link TokenSource.subscribe} listeners receive. Events never carry the token. */
export type TokenEvent =
  /**
   * A new token arrived: fetched by this source, or `shared` by another tab.
   * `expiresAt` is this machine's estimate, `undefined` when unknown.
   */
  | { type: "token"; expiresAt: number | undefined; source: "fetch" | "shared" }
  /** A fetch failed. */
  | { type: "error"; error: TokenFetchError }
  /** The server rejected the current token (here or in another tab); it was dropped. */
  | { type: "rejected" }
  /** `clear()` was called (here or in another tab). */
  | { type: "cleared" }
  /**
   * New tokens will not help until the user signs in again: the endpoint refused the credentials
   * or the refresh token, or the server refused a token fetched to replace a refused one. Sent
   * once; again only after a token was fetched and a call succeeded with it, or after `clear()`.
   */
  | { type: "session-ended"; reason: SessionEndReason }
  /**
   * A source with `dpop` got a token the endpoint issued as `Bearer` (not bound to the key): it
   * is sent without a proof. Sent once per session; an app that requires DPoP can `clear()`.
   */
  | { type: "bearer-token" }
  /**
   * `clear()` could not revoke the session's refresh token at the server (the grant's `revoke`
   * failed, or took longer than `timeoutMs`): it is forgotten here but may still be alive there.
   * `error.oauthError` holds the server's OAuth error code when it gave one. Sent in the tab that
   * signed out only.
   */
  | { type: "revoke-failed"; error: TokenFetchError };

/** What {@link TokenSource.peek} tells about the cached token, without the token. */
export interface TokenInfo {
  /** When the token expires (ms since the epoch, local clock), `undefined` if unknown. */
  expiresAt: number | undefined;
  /** Whether the next `getToken()` returns it without fetching. */
  fresh: boolean;
}

/** Per-call options of {@link TokenSource} methods. */
export interface TokenRequestOptions {
  /** Aborts this caller's wait only; a shared fetch goes on for the others. */
  signal?: AbortSignal | undefined;
}

/** A cached, single-flight source of tokens. Create one with `createTokenSource`. */
export interface TokenSource {
  /** A token that is good to use now: the cached one, or a fresh one fetched once for all callers. */
  getToken(options?: TokenRequestOptions): Promise<string>;
  /**
   * A token newer than `rejected`: the newer one at once if there is one, else one fetched once
   * for all callers. Fails at once with Unauthenticated when the token that replaced `rejected`
   * was refused too, or `rejected` is from before a `clear()`. `rejected` is never handed out again.
   */
  refresh(rejected: string, options?: TokenRequestOptions): Promise<string>;
  /** The server refused `rejected` and no replay follows: it is never handed out again. */
  invalidate(rejected: string): void;
  /** Signs out: forgets the token, abandons a fetch under way (its callers get Canceled). */
  clear(): void;
  /** Listens to token events; returns the function that stops listening. */
  subscribe(listener: (event: TokenEvent) => void): () => void;
  /** Describes the cached token, or `undefined` when there is none. */
  peek(): TokenInfo | undefined;
  /**
   * The cached token, synchronously, when a call may use it without waiting: it is fresh and a
   * call already succeeded with it. The interceptors send such calls without awaiting anything.
   * Optional: without it, every call awaits `getToken()`.
   */
  current?(): string | undefined;
  /**
   * A call succeeded with `token`. The interceptors say so once per token they had to wait for;
   * it re-arms `session-ended` and lets `current()` hand the token out. Optional.
   */
  proven?(token: string): void;
  /**
   * How a call proves possession of the key `token` is bound to (DPoP): `undefined` for a bearer
   * token. Optional: without it, every token is a bearer token.
   */
  proofFor?(token: string): ProofScheme | undefined;
}

/**
 * The source `createTokenSource` returns: a {@link TokenSource} its owner can dispose of.
 * `dispose()` (or `using`, through `Symbol.dispose`) lets go of what the source holds in the
 * page — its tab-sharing channel and Web Lock waits, its listeners, the fetch under way — and
 * signs nobody out: the session lives on in the other tabs, and a new source on the same channel
 * joins it at once. Calls on a disposed source fail (Canceled) with an error that says so.
 * Made for React effects' cleanup (StrictMode runs them twice) and hot module replacement.
 */
export interface DisposableTokenSource extends TokenSource, Disposable {
  /** Lets go of the source's channel, lock waits and listeners; idempotent; signs nobody out. */
  dispose(): void;
}
