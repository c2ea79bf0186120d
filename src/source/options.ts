import type { TokenGrant } from "../core/grant.js";
import { checkOptionNames } from "../core/options.js";
import type { TabSharing, TabSharingLink } from "../core/tab-sharing.js";
import type { BindableDpopProofs, DpopProofs } from "../dpop/dpop-proofs.js";

/** Options for `createTokenSource`. */
export interface TokenSourceOptions {
  /**
   * How a token is obtained: `passwordGrant({ endpoint, credentials })`, `refreshTokenGrant(…)`,
   * or your own `({ signal }) => Promise<string | { token, expiresAt? }>`. It gets a signal that
   * aborts on timeout or `clear()`. A `TokenFetchError` it throws keeps its code; anything else
   * counts as Unavailable. Required.
   */
  fetchToken: TokenGrant;
  /** The most one fetch may take, retries included, in milliseconds. Default: 10 000. */
  timeoutMs?: number | undefined;
  /**
   * A token this close to expiry is refreshed before it is used, in
   * milliseconds; never more than half the token's lifetime. Default: 30 000.
   */
  refreshMarginMs?: number | undefined;
  /** `shareAcrossTabs("my-app")`: one token (and one fetch) for all tabs of this origin. Default: none. */
  crossTab?: TabSharing | undefined;
  /**
   * `dpopProofs()`: tokens bound to a non-extractable key this source holds (DPoP, RFC 9449).
   * The grants prove the key to the token endpoint; the interceptors send `authorization: DPoP
   * <token>` and a fresh proof on every attempt. Default: none, bearer tokens.
   */
  dpop?: DpopProofs | undefined;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_REFRESH_MARGIN_MS = 30_000;
const MAX_TIMER_MS = 2_147_483_647;

/** The options, checked, with their defaults. */
export type ResolvedOptions = ReturnType<typeof resolveOptions>;

/** Checks the options once, with their defaults; TypeErrors say what to write instead. */
export function resolveOptions(options: TokenSourceOptions) {
  if (typeof options !== "object" || options === null) invalid("options", "an object");
  const legacy = options as { endpoint?: unknown; credentials?: unknown; http?: unknown };
  if (
    legacy.endpoint !== undefined ||
    legacy.credentials !== undefined ||
    legacy.http !== undefined
  ) {
    throw new TypeError(
      "createTokenSource: endpoint, credentials and http moved to passwordGrant: write createTokenSource({ fetchToken: passwordGrant({ endpoint, credentials }) })",
    );
  }
  checkOptionNames("createTokenSource", options, KNOWN);
  const { fetchToken: grant, crossTab, dpop } = options;
  if (typeof grant !== "function") {
    invalid("fetchToken", "a function: passwordGrant({ endpoint, credentials }) or your own");
  }
  // What the factories return, not the factories: a function has a `bind` of its own, and a
  // string a `link` (String.prototype.link).
  if (crossTab !== undefined && !made(crossTab, "link")) {
    invalid("crossTab", 'shareAcrossTabs("channel-name"), not true, a string or the factory');
  }
  if (dpop !== undefined && !made(dpop, "bind")) invalid("dpop", "dpopProofs(), called");
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (typeof timeoutMs !== "number" || !(timeoutMs > 0) || timeoutMs > MAX_TIMER_MS) {
    invalid("timeoutMs", `a positive number of milliseconds up to ${MAX_TIMER_MS}`);
  }
  const refreshMarginMs = options.refreshMarginMs ?? DEFAULT_REFRESH_MARGIN_MS;
  if (
    typeof refreshMarginMs !== "number" ||
    !Number.isFinite(refreshMarginMs) ||
    refreshMarginMs < 0
  ) {
    invalid("refreshMarginMs", "a finite number of milliseconds, 0 or more");
  }
  return {
    grant,
    timeoutMs,
    refreshMarginMs,
    // Checked above: made by shareAcrossTabs() and dpopProofs(), which link and bind.
    crossTab: crossTab as TabSharingLink | undefined,
    dpop: dpop as BindableDpopProofs | undefined,
  };
}

const KNOWN = ["fetchToken", "timeoutMs", "refreshMarginMs", "crossTab", "dpop"];

/** An object with the method `method`: what a factory made. */
function made(value: unknown, method: string): boolean {
  return (
    typeof value === "object" && typeof (value as Record<string, unknown>)?.[method] === "function"
  );
}

/** Throws the TypeError for a bad option, naming it. */
function invalid(option: string, must: string): never {
  throw new TypeError(`createTokenSource: ${option} must be ${must}`);
}
