import { now } from "../core/clock.js";
import type { FetchTokenResult } from "../core/grant.js";
import { TokenFetchCode, TokenFetchError } from "../core/token-fetch-error.js";
import { type Entry, lifetimeOf, newEntry } from "./token-lifetime.js";

// Visible ASCII only: anything else cannot travel in an HTTP header.
export const HEADER_SAFE = /^[\x21-\x7e]+$/;

/** A token as a grant delivered it, with its cache entry worked out. */
export interface Fetched {
  entry: Entry;
  state: string | undefined;
}

/** Checks what a grant resolved to and works out the token's lifetime from its arrival. */
export function toFetched(result: FetchTokenResult, refreshMarginMs: number): Fetched {
  const facts = typeof result === "string" ? { token: result } : result;
  const bad = (why: string) => new TokenFetchError(why, { code: TokenFetchCode.Internal });
  if (typeof facts !== "object" || facts === null || typeof facts.token !== "string") {
    throw bad("fetchToken must resolve to a token string or { token, expiresAt }");
  }
  const { token, state } = facts;
  for (const key of ["expiresAt", "expiresIn", "serverDate"] as const) {
    const value = facts[key];
    if (value !== undefined && (typeof value !== "number" || !Number.isFinite(value))) {
      throw bad(`fetchToken resolved to a ${key} that is not a number`);
    }
  }
  if (state !== undefined && typeof state !== "string") {
    throw bad("fetchToken resolved to a state that is not a string");
  }
  if (token === "") throw bad("the token is empty");
  if (!HEADER_SAFE.test(token)) {
    throw bad("the token has characters that cannot be sent in an HTTP header");
  }
  const entry = newEntry(token, lifetimeOf(facts, now()), refreshMarginMs);
  return { entry, state };
}
