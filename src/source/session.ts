import {
  type SessionEndReason,
  TokenFetchCode,
  type TokenFetchError,
} from "../core/token-fetch-error.js";
import type { TokenEvent } from "../core/token-source.js";
import { createBackoff } from "./backoff.js";

/**
 * When a token source stops asking for tokens: during the backoff after a broken endpoint or a
 * refused fresh token, and once the session ended (the `session-ended` event, sent once).
 */
export interface Session {
  /** The failure to repeat, without a request, while backing off; else undefined. */
  pending(): TokenFetchError | undefined;
  /** A token arrived: no more backing off. */
  fetched(): void;
  /**
   * Records a failure (here, or in another tab with its `until`), tells the other tabs when
   * `tell`; returns whether it was a refusal, which spends what the grant kept.
   */
  failed(error: TokenFetchError, how: { tell: boolean; until?: number | undefined }): boolean;
  /** The server refused a token of generation `gen` that replaced a refused one. */
  freshRefused(gen: number, error: TokenFetchError): void;
  /** Whether a token of generation `gen`, or a newer one, was refused that way. */
  refusedSince(gen: number): boolean;
  /** A call succeeded with the current token: the session lives again. */
  proven(): void;
  /** `clear()`: a new session. */
  reset(): void;
}

export function createSession(
  emit: (event: TokenEvent) => void,
  tell: (error: TokenFetchError, until: number | undefined) => void,
): Session {
  const backoff = createBackoff();
  let ended: SessionEndReason | undefined;
  /** The newest generation refused right after it replaced a refused token. */
  let refusedGeneration = -1;

  const session: Session = {
    pending: () => backoff.pending(),
    fetched: () => backoff.reset(),
    failed(error, { tell: told, until: given }) {
      let until = given;
      // Abandoned here (clear(), a caller's abort): nothing was learned about the endpoint.
      if (error.code === TokenFetchCode.Canceled) return false;
      const refused = error.code === TokenFetchCode.Unauthenticated;
      // A refusal of the credentials waits for new ones, not for time; anything else waits.
      if (!refused || error.reason === "token-refused") {
        if (until === undefined) until = backoff.fail(error);
        else backoff.adopt(error, until);
      }
      if (refused && ended === undefined) {
        ended = error.reason ?? "credentials-refused";
        emit({ type: "session-ended", reason: ended });
      }
      if (told) tell(error, until);
      return refused && error.reason !== "token-refused";
    },
    freshRefused(gen, error) {
      if (gen <= refusedGeneration) return;
      refusedGeneration = gen;
      session.failed(error, { tell: true });
    },
    refusedSince: (gen) => refusedGeneration >= gen,
    proven() {
      ended = undefined;
    },
    reset() {
      backoff.reset();
      ended = undefined;
    },
  };
  return session;
}
