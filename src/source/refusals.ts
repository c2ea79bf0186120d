import { TokenFetchCode, TokenFetchError } from "../core/token-fetch-error.js";

/** The server refused a token fetched to replace a refused one: the session ends. */
export function refusedAgain(): TokenFetchError {
  return new TokenFetchError(
    "the server refused a token fetched to replace a refused one: a new token will not help",
    { code: TokenFetchCode.Unauthenticated, reason: "token-refused" },
  );
}

/** A token from before a `clear()`: nothing may revive it or fetch for it. */
export function signedOut(): TokenFetchError {
  return new TokenFetchError("the token belongs to a session that was signed out", {
    code: TokenFetchCode.Unauthenticated,
  });
}

/** `clear()` abandoned the fetch a caller waited for. */
export function cleared(): TokenFetchError {
  return new TokenFetchError("the token source was cleared", { code: TokenFetchCode.Canceled });
}

/** The source was disposed: calls fail, and nothing it held is used again. */
export function disposed(): TokenFetchError {
  return new TokenFetchError(
    "the token source was disposed (dispose()): use the source that replaced it",
    { code: TokenFetchCode.Canceled },
  );
}
