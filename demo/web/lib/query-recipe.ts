import type { QueryClient } from "@tanstack/react-query";
import { isRetryableError, type SessionEndReason, type TokenSource } from "../../../src/index.js";

/**
 * The README's TanStack Query recipe, as the signals page runs it: queries retry only what another
 * try can help, and on `session-ended` every query ends in `error` with the Unauthenticated error.
 * Not `cancelQueries()`: a cancelled query goes back to its previous state, pending forever after
 * a wrong password, or stale success with no error. Queries under way fail on their own; the
 * others are refetched and fail at once, without a request.
 */
export function connectQueries(
  tokens: TokenSource,
  queryClient: QueryClient,
  showSignIn: (reason: SessionEndReason) => void,
): () => void {
  queryClient.setDefaultOptions({
    queries: { retry: (failureCount, error) => failureCount < 3 && isRetryableError(error) },
  });
  return tokens.subscribe((event) => {
    if (event.type === "session-ended") {
      void queryClient.invalidateQueries(undefined, { cancelRefetch: false });
      showSignIn(event.reason);
    }
  });
}
