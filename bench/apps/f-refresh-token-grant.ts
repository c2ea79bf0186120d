/**
 * Usage (f): `refreshTokenGrant` (and with it ky) and the Connect interceptor, for an app that
 * gets its refresh token elsewhere (an authorization-code + PKCE sign-in).
 */
import { createAuthInterceptor, createTokenSource, refreshTokenGrant } from "../../src/index.js";

/** The refresh token from the app's sign-in callback; memory only. */
let fromSignIn: string | undefined;

/** Called by the app's authorization-code + PKCE callback. */
export function signedIn(refreshToken: string): void {
  fromSignIn = refreshToken;
}

export const tokens = createTokenSource({
  fetchToken: refreshTokenGrant({
    endpoint: "/oauth/token",
    clientId: "my-spa",
    refreshToken: () => fromSignIn,
  }),
});

export const interceptors = [createAuthInterceptor(tokens)];
