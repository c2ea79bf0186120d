import { race } from "../core/abort.js";
import type { DpopSigner, TokenGrant } from "../core/grant.js";
import { TokenFetchCode, TokenFetchError } from "../core/token-fetch-error.js";
import type { TokenEvent } from "../core/token-source.js";

/**
 * Revokes the session's grant state at the server, bounded by timeoutMs; a failure reaches the
 * listeners as `revoke-failed` (a grant's own error is told by its name only: it may quote the
 * token).
 */
export function revoke(
  grant: TokenGrant,
  held: { state: string; dpop: DpopSigner | undefined },
  timeoutMs: number,
  emit: (event: TokenEvent) => void,
): void {
  if (grant.revoke === undefined) return;
  const signal = AbortSignal.timeout(timeoutMs);
  const { revoke: send } = grant;
  const { state, dpop } = held;
  // A revoke that throws at once, or returns no promise, must not break clear() either.
  race(
    Promise.resolve().then(() => send({ state, signal, dpop })),
    { signal },
  ).catch((error: unknown) => {
    emit({ type: "revoke-failed", error: revokeFailure(error, signal, timeoutMs) });
  });
}

function revokeFailure(error: unknown, signal: AbortSignal, timeoutMs: number): TokenFetchError {
  if (error instanceof TokenFetchError) return error;
  if (signal.aborted) {
    return new TokenFetchError(`the revocation did not finish within ${timeoutMs} ms`, {
      code: TokenFetchCode.Unavailable,
    });
  }
  return new TokenFetchError(
    `the grant's revoke failed (${error instanceof Error ? error.name : typeof error})`,
    { code: TokenFetchCode.Internal },
  );
}
