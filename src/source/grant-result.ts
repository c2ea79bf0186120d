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
  /** Bound to the source's DPoP key: sent with a proof. */
  bound: boolean;
}

/** Checks what a grant resolved to and works out the token's lifetime from its arrival. */
export function toFetched(
  result: FetchTokenResult,
  source: { refreshMarginMs: number; dpop: boolean },
): Fetched {
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
  const bound = boundByType(facts.tokenType, source, bad);
  if (token === "") throw bad("the token is empty");
  if (!HEADER_SAFE.test(token)) {
    throw bad("the token has characters that cannot be sent in an HTTP header");
  }
  const entry = newEntry(token, lifetimeOf(facts, now()), source.refreshMarginMs);
  return { entry, state, bound };
}

/** Whether a token of this type goes with a DPoP proof (RFC 6749 §7.1: case-insensitive). */
function boundByType(
  tokenType: unknown,
  { dpop }: { dpop: boolean },
  bad: (why: string) => TokenFetchError,
): boolean {
  if (tokenType === undefined) return dpop;
  const type = typeof tokenType === "string" ? tokenType.toLowerCase() : undefined;
  if (type === "bearer") return false;
  if (type === "dpop") {
    if (!dpop) throw bad("the token endpoint issued a DPoP token to a source without dpop");
    return true;
  }
  const named = typeof tokenType === "string" ? `"${tokenType.slice(0, 20)}"` : typeof tokenType;
  throw bad(
    `the token endpoint issued a token of type ${named}, which can be sent neither as Bearer nor as DPoP`,
  );
}
