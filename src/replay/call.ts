import { monotonic } from "../core/clock.js";
import type { Proof, ProofAnswer, ProofScheme } from "../core/proof-scheme.js";
import type { ReplayRules } from "./auth-options.js";
import { awaitToken } from "./token-failure.js";

/** A failed attempt, as an adapter translates it from its transport. */
export interface Failure extends ProofAnswer {
  /** The adapter's own error: what `isAuthError` is asked about and what the caller gets. */
  error: unknown;
}

/** One call as the rules see it. */
export interface CallTarget {
  /** The call's URL without query (a proof names it). */
  url: string;
  /** `package.Service/Method`, for `onReplay`. */
  method: string;
  /** Aborts the call, and with it any wait for a token. */
  signal?: AbortSignal | undefined;
  /** When the call's deadline passes (ms since the epoch), where the transport does not abort. */
  deadline?: number | undefined;
}

/**
 * The replay rules for one call, the same for every adapter: at most one replay for a DPoP nonce
 * challenge and at most one with a refreshed token, only before any data reached the caller; a
 * token refused for good is told to the source; the first success with a token the call had to
 * wait for proves it.
 */
export interface CallReplay {
  /** The token the current attempt sends. */
  readonly token: string;
  /** The `authorization` value for the current attempt. */
  header(): string;
  /** The proof the current attempt sends, made now; `undefined` for a bearer token. */
  prove(): Promise<Proof> | undefined;
  /**
   * A failure before any data: the token to replay with (the same after a nonce challenge, a
   * refreshed one otherwise), or `undefined` when the caller gets `failure.error`. A failed wait
   * for a token rejects with what the source said (see `tokenFailure`).
   */
  replay(failure: Failure): Promise<string> | undefined;
  /** Whether another failure could still be replayed. */
  canReplay(): boolean;
  /** A failure after data reached the caller: no replay; a refused token is told to the source. */
  failedAfterData(failure: Failure): void;
  /** The current attempt delivered data or ended well. */
  succeeded(): void;
  /** Milliseconds since the call started: what a replay takes off the call's timeout. */
  elapsed(): number;
}

/** The token a call's first attempt sends. */
export interface FirstToken {
  token: string;
  /** The source handed it out without a wait: a call already succeeded with it. */
  proven: boolean;
}

/**
 * Starts the rules for a call whose first attempt sends `first`. `started` is when the call began,
 * on the monotonic clock, for an adapter that starts the rules only once an attempt failed.
 */
export function startCall(
  rules: ReplayRules,
  target: CallTarget,
  first: FirstToken,
  started: number = monotonic(),
): CallReplay {
  const { source } = rules;
  const { token } = first;
  let current = token;
  let scheme: ProofScheme | undefined = source.proofFor?.(token);
  let sent: Proof | undefined;
  let refreshed = false;
  let nonced = false;
  let confirmed = first.proven;

  const refresh = (failure: Failure): Promise<string> | undefined => {
    // Asked once per failure: the app's predicate may be costly, or throw.
    const refused = rules.isAuthError(failure.error);
    if (refreshed || !refused) {
      if (refused) source.invalidate(current);
      return undefined;
    }
    refreshed = true;
    const fresh = source.refresh(current, { signal: target.signal });
    return awaitToken(fresh, target.signal, target.deadline).then((next) => {
      rules.notifyReplay(target.method);
      current = next;
      scheme = source.proofFor?.(next);
      confirmed = false;
      return next;
    });
  };

  return {
    get token() {
      return current;
    },
    header: () => rules.headerValue(current, scheme?.scheme),
    prove() {
      if (scheme === undefined) return undefined;
      return scheme.prove(target.url, current).then((proof) => {
        sent = proof;
        return proof;
      });
    },
    replay(failure) {
      const challenged = scheme?.challenge(target.url, failure, sent);
      // A nonce challenge is answered once with the same token, and never with a refresh.
      if (challenged !== undefined) {
        if (!challenged || nonced) return undefined;
        nonced = true;
        return Promise.resolve(current);
      }
      return refresh(failure);
    },
    canReplay: () => !refreshed || (scheme !== undefined && !nonced),
    failedAfterData(failure) {
      if (rules.isAuthError(failure.error)) source.invalidate(current);
    },
    succeeded() {
      if (confirmed) return;
      confirmed = true;
      source.proven?.(current);
    },
    elapsed: () => monotonic() - started,
  };
}
