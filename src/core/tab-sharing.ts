import type { TokenFetchError } from "./token-fetch-error.js";

/** A token as tabs share it; the grant's state never travels with it (see {@link SessionAnswer}). */
export interface SharedToken {
  token: string;
  /** ms since the epoch on the machine's clock, which every tab shares; undefined if unknown. */
  expiresAt: number | undefined;
  /** Bound to the DPoP key (sent with a proof); undefined from a tab that does not say. */
  bound?: boolean | undefined;
  /**
   * How many grant states (rotating refresh tokens) the session has gone through: a token with a
   * higher epoch than a tab's state means that state is spent.
   */
  epoch: number;
}

/** What a tab holds of the session, as it answers another tab's query. */
export interface SessionAnswer {
  /** Its token if fresh; a tab with a stale one hands over only the state, to refresh with. */
  token: SharedToken | undefined;
  /** The grant's state (a refresh token), handed only to a tab that asked. */
  state: string | undefined;
  /** The epoch of `state`, or of the newest token this tab heard of. */
  epoch: number;
  /** The asker's token belongs to a session this tab saw signed out. */
  retired: boolean;
}

/** What a token source lets the other tabs do to it. */
export interface SourceLink {
  /** Another tab fetched a token and announced it; returns whether this source took it. */
  announced(shared: SharedToken): boolean;
  /** Another tab answered this tab's own query; returns whether this source now has a fresh token. */
  answered(answer: SessionAnswer): boolean;
  /** A tab going away handed over what it held (as an answer to no one's question). */
  handedOver(answer: SessionAnswer): void;
  /** Another tab learned that `token` was refused. */
  rejected(token: string): void;
  /**
   * Another tab signed out; `token` is the one it dropped, never to be taken again. Unless it
   * `revoked` the state itself, the tab whose fetch made the state revokes it.
   */
  cleared(token: string | undefined, revoked: boolean): void;
  /**
   * What to answer another tab's query with (`asked`: the token it holds), or `undefined` when
   * this tab holds nothing of a session and has nothing to say.
   */
  answer(asked: string | undefined): SessionAnswer | undefined;
  /** The epoch this tab heard of last: above 0, some tab holds (or held) a state. */
  epoch(): number;
  /** The token this tab holds, whatever its age, to ask the others about. */
  held(): string | undefined;
  /** Another tab's fetch this tab waited for failed; `until` ends its backoff. */
  failed(error: TokenFetchError, until: number | undefined): void;
}

/** What a token source asks of the other tabs. */
export interface TabLink {
  /**
   * Runs `fetch` for every tab: one tab at a time, after asking the others what they hold (a
   * fresh token is taken through `SourceLink.answered` instead: resolves `undefined`; a refresh
   * token is taken and used). Fails with the failure of another tab's fetch heard while waiting.
   * `signal` abandons the wait and the fetch.
   */
  fetch<T>(
    fetch: () => Promise<T>,
    publish: (fetched: T) => SharedToken,
    signal: AbortSignal,
  ): Promise<T | undefined>;
  rejected(token: string): void;
  /** Signed out here; `revoked`: this tab held the state and revokes it. */
  cleared(token: string | undefined, revoked: boolean): void;
  /** Tells the tabs waiting for this tab's fetch of its failure, and when fetching may start again. */
  failed(error: TokenFetchError, until: number | undefined): void;
  /**
   * Asks the other tabs what they hold (a page restored from the back/forward cache missed what
   * they said): resolves at the first answer, or after a short wait when none comes.
   */
  sync(): Promise<void>;
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
  /** Ends the link: the channel is closed, waits end, and a new source may take the channel. */
  close(): void;
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
  /**
   * Links one source; `undefined` where the browser lacks what sharing needs. A source disposed
   * in this page leaves what it held to the next source linked to the channel.
   */
  readonly link: (source: SourceLink, timeoutMs: number) => TabLink | undefined;
}
