import type { TokenFetchError } from "./token-fetch-error.js";

/** A token as tabs share it. */
export interface SharedToken {
  token: string;
  /** ms since the epoch on the machine's clock, which every tab shares; undefined if unknown. */
  expiresAt: number | undefined;
  /** The grant's state that goes with the token (a rotating refresh token). */
  state?: string | undefined;
  /** Bound to the DPoP key (sent with a proof); undefined from a tab that does not say. */
  bound?: boolean | undefined;
}

/** What a token source lets the other tabs do to it. */
export interface SourceLink {
  /** Another tab has a token; returns whether this source took it. */
  adopt(shared: SharedToken): boolean;
  /** Another tab learned that `token` was refused. */
  rejected(token: string): void;
  /** Another tab signed out; `token` is the one it dropped, never to be taken again. */
  cleared(token: string | undefined): void;
  /** The token to answer another tab's query with, if this tab has a fresh one. */
  current(): SharedToken | undefined;
  /** Another tab failed (a fetch, or a fresh token refused); `until` ends its backoff. */
  failed(error: TokenFetchError, until: number | undefined): void;
}

/** What a token source asks of the other tabs. */
export interface TabLink {
  /**
   * Runs `fetch` for every tab: one tab at a time, and only when no other tab has a fresh token
   * (taken through `SourceLink.adopt` instead: resolves `undefined`). Fails with another tab's
   * failure heard while waiting. `signal` abandons the wait and the fetch.
   */
  fetch<T>(
    fetch: () => Promise<T>,
    publish: (fetched: T) => SharedToken,
    signal: AbortSignal,
  ): Promise<T | undefined>;
  rejected(token: string): void;
  cleared(token: string | undefined): void;
  /** Tells the other tabs of a failure, and when fetching may start again. */
  failed(error: TokenFetchError, until: number | undefined): void;
  /**
   * A value every tab shares (a DPoP key pair): another tab's, asked for under a lock, or made
   * here by `make` and handed to the others. Values arrive by structured clone; `check` rejects
   * anything else on the channel.
   */
  shared<T>(
    name: string,
    make: () => Promise<T>,
    check: (value: unknown) => value is T,
  ): Promise<T>;
}

/**
 * How a token source shares its token with other tabs: the value `shareAcrossTabs()` returns,
 * passed as `crossTab`.
 */
export interface TabSharing {
  /** The channel the tabs share (the name given to `shareAcrossTabs`). */
  readonly channel: string;
}

/** Internal: a {@link TabSharing} as this library made it, which links a source to its tabs. */
export interface TabSharingLink extends TabSharing {
  /** Links one source; `undefined` where the browser lacks what sharing needs. */
  readonly link: (source: SourceLink, timeoutMs: number) => TabLink | undefined;
}
