import type { KyInstance } from "ky";
import type { TokenGrant } from "../core/grant.js";
import { checkOptionNames } from "../core/options.js";
import { TokenFetchCode, TokenFetchError } from "../core/token-fetch-error.js";
import { checkEndpoint } from "./http.js";
import {
  checkClientOptions,
  checkRefreshOptions,
  createRefresher,
  isRefusal,
  type RefreshTokenStore,
} from "./refresh.js";

/** Options for {@link refreshTokenGrant}. */
export interface RefreshTokenGrantOptions {
  /**
   * The OAuth token endpoint: a form-encoded POST of `grant_type=refresh_token`, `refresh_token`,
   * `client_id` and `scope` if given (RFC 6749 §6), answered by
   * `{"access_token","expires_in","refresh_token"?}`. Redirects are refused.
   */
  endpoint: string | URL;
  /** Required: the OAuth `client_id` this app is registered with (a public client). */
  clientId: string;
  /**
   * OAuth `scope` sent with every refresh (RFC 6749 §6): at most what was granted. Default: none,
   * the scope granted at sign-in.
   */
  scope?: string | undefined;
  /**
   * The refresh token the app got elsewhere (an authorization-code + PKCE sign-in), or a function
   * asked when the grant has none: after a refusal or a sign-out it may give a new one, or
   * `undefined`. A string is used once: it is spent by its first refresh.
   */
  refreshToken: string | (() => string | undefined | Promise<string | undefined>);
  /** The ky instance for the requests. Default: ours; refreshes are never retried. */
  http?: KyInstance | undefined;
  /**
   * Where `clear()` revokes the refresh token (RFC 7009: a form of `token`,
   * `token_type_hint=refresh_token` and `client_id`). A failure reaches listeners as
   * `revoke-failed`. Default: none, it is only forgotten.
   */
  revokeEndpoint?: string | URL | undefined;
  /** Keeps the refresh token beyond the page (see SECURITY.md). Default: memory only. */
  store?: RefreshTokenStore | undefined;
}

const OPTIONS = [
  "endpoint",
  "clientId",
  "scope",
  "refreshToken",
  "http",
  "revokeEndpoint",
  "store",
];

/**
 * The refresh-token grant, as a `fetchToken`: trades the refresh token for an access token and
 * its successor (rotation) on every fetch. A refused refresh token (`invalid_grant`) is dropped
 * and the session ends (`session-ended`, reason `"refresh-token-refused"`); any other OAuth error
 * (`invalid_request`, `invalid_client`, `invalid_scope`, `invalid_dpop_proof`, …) ends nothing:
 * the fetch fails with code Internal and the same refresh token is used once it passes.
 *
 * @example
 * ```ts
 * const tokens = createTokenSource({
 *   fetchToken: refreshTokenGrant({
 *     endpoint: "https://idp.example.com/oauth/token",
 *     clientId: "my-spa",
 *     refreshToken: pkce.refreshToken,
 *   }),
 * });
 * ```
 */
export function refreshTokenGrant(options: RefreshTokenGrantOptions): TokenGrant {
  if (typeof options !== "object" || options === null) {
    throw new TypeError("refreshTokenGrant: options must be an object");
  }
  checkOptionNames("refreshTokenGrant", options, OPTIONS);
  const { endpoint, http, refreshToken: initial } = options;
  checkEndpoint("refreshTokenGrant", "endpoint", endpoint, http);
  checkRefreshOptions("refreshTokenGrant", options);
  checkClientOptions("refreshTokenGrant", options, { clientId: "required" });
  if (typeof initial !== "function" && !(typeof initial === "string" && initial !== "")) {
    throw new TypeError(
      "refreshTokenGrant: refreshToken must be a non-empty string or a function returning one",
    );
  }
  const refresher = createRefresher("refreshTokenGrant", { ...options, refreshEndpoint: endpoint });
  let unused: string | undefined = typeof initial === "string" ? initial : undefined;

  const grant: TokenGrant = async (context) => {
    const { state } = context;
    let refreshToken = (await refresher.stored(state)) ?? unused;
    if (refreshToken === undefined && typeof initial === "function") {
      const given = await initial();
      refreshToken =
        typeof given === "string" && given !== "" ? refresher.usable(given) : undefined;
    }
    if (refreshToken === undefined) {
      throw new TokenFetchError("there is no refresh token: sign in again", {
        code: TokenFetchCode.Unauthenticated,
        reason: "no-credentials",
      });
    }
    try {
      const granted = await refresher.refresh(refreshToken, context);
      // Spent now: its successor travels as the session's state.
      unused = undefined;
      return granted;
    } catch (error) {
      if (isRefusal(error)) unused = undefined;
      throw error;
    }
  };
  grant.revoke = refresher.revoke;
  // A refresh token in a store every tab reads: the source requires the tabs to take turns.
  grant.persistent = options.store !== undefined;
  grant.reset = () => {
    unused = undefined;
    refresher.reset();
  };
  return grant;
}
