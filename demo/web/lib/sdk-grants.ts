/**
 * The README's recipes for a `fetchToken` over an OIDC SDK that caches tokens, verbatim: each
 * region below is a ```ts block of README.md ("Over an OIDC SDK"), checked equal by
 * test/replay/sdk-grants.test.ts. The oidc-client-ts page (oidc-client-ts.ts) runs the first in
 * Chromium against the real SDK; the Node test runs the other two against stand-ins.
 */
import type { UserManager } from "oidc-client-ts";
import { ErrorResponse } from "oidc-client-ts";
// An app writes `from "grpc-web-auth"`; the demo bundles the library from this repository's src/.
import { TokenFetchCode, TokenFetchError, type TokenGrant } from "../../../src/index.js";

// #region oidc-client-ts
/** The token oidc-client-ts holds; a new one (`signinSilent()`) when the server refused that one. */
export function oidcClientTsGrant(
  manager: Pick<UserManager, "getUser" | "signinSilent">,
): TokenGrant {
  return async ({ rejected }) => {
    let user = await manager.getUser();
    if (!user) {
      throw new TokenFetchError("not signed in", { code: TokenFetchCode.Unauthenticated });
    }
    if (user.expired || user.access_token === rejected) {
      try {
        // With a refresh token: a refresh_token grant. Without: the silent_redirect_uri iframe.
        user = await manager.signinSilent();
      } catch (e) {
        const refused = e instanceof ErrorResponse && e.error === "invalid_grant";
        if (!refused) throw e;
        throw new TokenFetchError("the refresh token was refused: sign in again", {
          code: TokenFetchCode.Unauthenticated,
          reason: "refresh-token-refused",
          cause: e,
        });
      }
      if (!user) {
        throw new TokenFetchError("not signed in", { code: TokenFetchCode.Unauthenticated });
      }
    }
    const { access_token, expires_at } = user;
    return {
      token: access_token,
      expiresAt: expires_at === undefined ? undefined : expires_at * 1000,
    };
  };
}
// #endregion oidc-client-ts

// #region auth0-spa-js
/** The method of `Auth0Client` (@auth0/auth0-spa-js 2.x) the recipe calls, as the SDK declares it. */
export interface Auth0Like {
  getTokenSilently(options?: { cacheMode?: "on" | "off" | "cache-only" }): Promise<string>;
}

/** The token auth0-spa-js caches; past its cache (`cacheMode: "off"`) when the server refused it. */
export function auth0Grant(auth0: Auth0Like): TokenGrant {
  return ({ rejected }) =>
    auth0.getTokenSilently(rejected === undefined ? {} : { cacheMode: "off" });
}
// #endregion auth0-spa-js

// #region keycloak-js
/** The members of `Keycloak` (keycloak-js 26) the recipe uses, as the SDK declares them. */
export interface KeycloakLike {
  token?: string | undefined;
  updateToken(minValidity?: number): Promise<boolean>;
}

/** The token keycloak-js holds; refreshed whatever its age (`updateToken(-1)`) when refused. */
export function keycloakGrant(keycloak: KeycloakLike): TokenGrant {
  return async ({ rejected }) => {
    // -1 forces a refresh; 30 refreshes only a token that expires within 30 s.
    await keycloak.updateToken(rejected !== undefined && keycloak.token === rejected ? -1 : 30);
    if (keycloak.token === undefined) {
      throw new TokenFetchError("not signed in", { code: TokenFetchCode.Unauthenticated });
    }
    return keycloak.token;
  };
}
// #endregion keycloak-js
