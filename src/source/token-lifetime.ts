import { monotonic, now } from "../core/clock.js";
import { TokenFetchCode, TokenFetchError } from "../core/token-fetch-error.js";
import { readJwtTimes } from "./jwt.js";

/** What a grant told about a token's lifetime, before the source works it out. */
export interface LifetimeFacts {
  token: string;
  /** ms since the epoch on this machine's clock (a custom `fetchToken`'s `expiresAt`). */
  expiresAt?: number | undefined;
  /** Seconds, as the endpoint announced them (`expires_in`), counted from arrival. */
  expiresIn?: number | undefined;
  /** The endpoint's clock when it answered (its `Date` header), ms since the epoch. */
  serverDate?: number | undefined;
}

/** A cached token and the local times that decide whether it is still good. */
export interface Entry {
  token: string;
  receivedAt: number;
  receivedAtMono: number;
  /** undefined: no expiry known (an opaque token, or clocks that disagree): used until refused. */
  lifetimeMs: number | undefined;
  refreshAfterMs: number | undefined;
}

/**
 * The token's lifetime in ms from now, `undefined` when unknown. Throws only for a token expired by
 * its own word (`exp ≤ iat`, `expires_in ≤ 0`) or an `expiresAt` that cannot be meant: when clocks
 * merely disagree the token is used and the server decides. `iat` wins over `Date`, `Date` over
 * the local clock.
 */
export function lifetimeOf(facts: LifetimeFacts, at: number): number | undefined {
  const { expiresIn, expiresAt } = facts;
  if (expiresIn !== undefined) {
    if (!(expiresIn > 0)) expired(`expires_in is ${expiresIn}`);
    return expiresIn * 1000;
  }
  if (expiresAt !== undefined) {
    if (expiresAt < 1e12) {
      throw internal(
        `fetchToken's expiresAt (${expiresAt}) looks like seconds: give milliseconds since the epoch`,
      );
    }
    if (!(expiresAt > at)) expired(`expiresAt ${new Date(expiresAt).toISOString()} has passed`);
    return expiresAt - at;
  }
  const times = readJwtTimes(facts.token);
  if (times === undefined) return undefined;
  const { exp, iat } = times;
  if (iat !== undefined) {
    if (!(exp > iat)) expired(`its claims say exp ${exp} ≤ iat ${iat}`);
    return lessRounding((exp - iat) * 1000, exp, iat);
  }
  const { serverDate } = facts;
  const left =
    serverDate === undefined ? exp * 1000 - at : lessRounding(exp * 1000 - serverDate, exp);
  // exp alone, against a clock that is not the signer's: they may disagree, so the server decides.
  return left > 0 ? left : undefined;
}

function expired(why: string): never {
  throw internal(`the token endpoint returned a token that has already expired: ${why}`);
}

function internal(message: string): TokenFetchError {
  return new TokenFetchError(message, { code: TokenFetchCode.Internal });
}

/**
 * Whole-second claims (and Date headers) were rounded down when issued, so the
 * token may really have up to a second less: count it, within half the lifetime.
 */
function lessRounding(lifetimeMs: number, ...seconds: number[]): number {
  if (!(lifetimeMs > 0) || !seconds.every(Number.isInteger)) return lifetimeMs;
  return lifetimeMs - Math.min(1000, lifetimeMs / 2);
}

/** A cache entry for a token that arrived now and lives `lifetimeMs`. */
export function newEntry(
  token: string,
  lifetimeMs: number | undefined,
  refreshMarginMs: number,
): Entry {
  return {
    token,
    receivedAt: now(),
    receivedAtMono: monotonic(),
    lifetimeMs,
    refreshAfterMs:
      lifetimeMs === undefined ? undefined : lifetimeMs - Math.min(refreshMarginMs, lifetimeMs / 2),
  };
}

/**
 * Time since the token arrived: the larger of wall-clock and monotonic time, so
 * neither a clock set back nor a sleeping machine keeps a token alive too long.
 */
function age(entry: Entry): number {
  return Math.max(now() - entry.receivedAt, monotonic() - entry.receivedAtMono);
}

/** Good to hand out without refreshing first. */
export function isFresh(entry: Entry): boolean {
  return entry.refreshAfterMs === undefined || age(entry) < entry.refreshAfterMs;
}

/** Not expired yet (it may be inside the refresh margin). */
export function isUsable(entry: Entry): boolean {
  return entry.lifetimeMs === undefined || age(entry) < entry.lifetimeMs;
}

/** When the token expires, ms since the epoch on the local clock; undefined if unknown. */
export function expiresAt(entry: Entry): number | undefined {
  return entry.lifetimeMs === undefined ? undefined : entry.receivedAt + entry.lifetimeMs;
}
