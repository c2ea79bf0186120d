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

/** What the rules remember of one call. */
interface CallState {
  /** The token the current attempt sends, and its proof scheme (DPoP), if any. */
  token: string;
  scheme: ProofScheme | undefined;
  /** The proof the current attempt sent. */
  sent: Proof | undefined;
  refreshed: boolean;
  nonced: boolean;
  /** The source was told a call succeeded with `token` (or knew it already). */
  confirmed: boolean;
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
  const call: CallState = {
    token: first.token,
    scheme: source.proofFor?.(first.token),
    sent: undefined,
    refreshed: false,
    nonced: false,
    confirmed: first.proven,
  };
  return {
    get token() {
      return call.token;
    },
    header: () => rules.headerValue(call.token, call.scheme?.scheme),
    prove() {
      return call.scheme?.prove(target.url, call.token).then((proof) => {
        call.sent = proof;
        return proof;
      });
    },
    replay: (failure) => replay(rules, target, call, failure),
    canReplay: () => !call.refreshed || (call.scheme !== undefined && !call.nonced),
    failedAfterData(failure) {
      if (rules.isAuthError(failure.error)) source.invalidate(call.token);
    },
    succeeded() {
      if (call.confirmed) return;
      call.confirmed = true;
      source.proven?.(call.token);
    },
    elapsed: () => monotonic() - started,
  };
}

/** What follows a failure before any data: see {@link CallReplay.replay}. */
function replay(
  rules: ReplayRules,
  target: CallTarget,
  call: CallState,
  failure: Failure,
): Promise<string> | undefined {
  const challenged = call.scheme?.challenge(target.url, failure, call.sent);
  // A nonce challenge is answered once with the same token, and never with a refresh.
  if (challenged !== undefined) {
    if (!challenged || call.nonced) return undefined;
    call.nonced = true;
    return Promise.resolve(call.token);
  }
  // Asked once per failure: the app's predicate may be costly, or throw.
  const refused = rules.isAuthError(failure.error);
  const { source } = rules;
  if (call.refreshed || !refused) {
    if (refused) source.invalidate(call.token);
    return undefined;
  }
  call.refreshed = true;
  const fresh = source.refresh(call.token, { signal: target.signal });
  return awaitToken(fresh, target.signal, target.deadline).then((next) => {
    rules.notifyReplay(target.method);
    call.token = next;
    call.scheme = source.proofFor?.(next);
    call.confirmed = false;
    return next;
  });
}
