/**
 * Usage (g): `authorizationCodeGrant` (oauth4webapi, ky and the shared refresh module) and the
 * Connect interceptor: sign-in by redirect with an OpenID provider, refreshes with rotation.
 */
import {
  authorizationCodeGrant,
  createAuthInterceptor,
  createTokenSource,
} from "../../src/index.js";

export const signIn = authorizationCodeGrant({
  issuer: "https://id.example.com",
  clientId: "my-spa",
  redirectUri: "https://app.example.com/callback",
  scope: "openid offline_access api",
});

export const tokens = createTokenSource({ fetchToken: signIn });

export const interceptors = [createAuthInterceptor(tokens)];
