import { TokenFetchCode, TokenFetchError } from "../core/token-fetch-error.js";
import type { TokenSource } from "../core/token-source.js";

/**
 * Sign-out ends a stream's work: a server stream opened with a source's token ends, Canceled, at
 * the source's `cleared` event (`clear()` here or in another tab), and delivers no message after.
 * `end` is called once, with the error the caller gets; the returned function stops listening
 * (the stream ended first). A cost per stream only: unary calls never subscribe.
 */
export function endOnSignOut(
  source: TokenSource,
  end: (error: TokenFetchError) => void,
): () => void {
  const stop = source.subscribe((event) => {
    if (event.type !== "cleared") return;
    stop();
    end(
      new TokenFetchError("the session was signed out (clear()): the stream is ended", {
        code: TokenFetchCode.Canceled,
      }),
    );
  });
  return stop;
}
