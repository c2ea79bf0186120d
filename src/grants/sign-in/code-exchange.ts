import {
  authorizationCodeGrantRequest,
  expectNoNonce,
  None,
  processAuthorizationCodeResponse,
  type TokenEndpointResponse,
} from "oauth4webapi";
import type { DpopSigner, GrantContext } from "../../core/grant.js";
import { TokenFetchCode, TokenFetchError } from "../../core/token-fetch-error.js";
import type { TokenAnswer } from "../http.js";
import { isOpenid } from "./authorization-request.js";
import type { CheckedCallback } from "./callback.js";
import { toTokenFetchError } from "./oauth-fetch.js";
import type { SignInSettings } from "./options.js";
import type { Provider } from "./provider.js";

/**
 * Exchanges a checked callback's code (with its PKCE verifier, and a proof of the source's key
 * with `dpop`) at the token endpoint; with `openid`, the ID token is required and its `nonce`
 * checked. A refused code (`invalid_grant`) ends the session with `"sign-in-required"`.
 */
export async function exchangeCode(
  { params, pending }: CheckedCallback,
  { signal, dpop }: GrantContext,
  settings: SignInSettings,
  provider: Provider,
): Promise<TokenAnswer> {
  try {
    const as = await provider.discover(signal);
    const response = await authorizationCodeGrantRequest(
      as,
      provider.client,
      None(),
      params,
      settings.redirectUri,
      pending.verifier,
      provider.requestOptions(dpop, signal),
    );
    const answer = await processAuthorizationCodeResponse(
      as,
      provider.client,
      response,
      isOpenid(settings.scope)
        ? { expectedNonce: pending.nonce ?? expectNoNonce, requireIdToken: true }
        : undefined,
    );
    checkTokenType(answer.token_type, dpop);
    return tokenAnswer(answer);
  } catch (error) {
    throw toTokenFetchError(error, {
      endpoint: "token endpoint",
      secrets: [params.get("code") ?? "", pending.verifier],
      refused: "sign-in-required",
    });
  }
}

/** A DPoP source sends `DPoP <token>`: a bearer token would be refused on every call. */
function checkTokenType(tokenType: string | undefined, dpop: DpopSigner | undefined): void {
  if (dpop !== undefined && tokenType?.toLowerCase() !== "dpop") {
    throw new TokenFetchError(
      `the provider answered a "${tokenType}" token to a DPoP request: it does not support DPoP here, so leave out dpop`,
      { code: TokenFetchCode.Internal },
    );
  }
}

/** oauth4webapi's checked answer as the shared refresh module reads one. */
function tokenAnswer(answer: TokenEndpointResponse): TokenAnswer {
  return {
    token: answer.access_token,
    expiresIn: answer.expires_in,
    refreshToken: answer.refresh_token,
    tokenType: answer.token_type,
  };
}
