import {
  type AuthorizationServer,
  calculatePKCECodeChallenge,
  generateRandomCodeVerifier,
  generateRandomNonce,
  generateRandomState,
} from "oauth4webapi";
import type { DpopKeyHandle } from "../../core/grant.js";
import { TokenFetchCode, TokenFetchError } from "../../core/token-fetch-error.js";
import { isLoopback, type SignInSettings } from "./options.js";
import type { PendingSignIn } from "./pending-sign-in.js";
import type { Provider } from "./provider.js";

/** What the redirect to the provider needs of the grant. */
export interface SignInStart {
  settings: SignInSettings;
  provider: Provider;
  /** The `sessionStorage` key of the pending sign-in. */
  storageKey: string;
  /** The source's DPoP key, when it has `dpop`: the code is bound to it (`dpop_jkt`). */
  dpop: DpopKeyHandle | undefined;
}

/**
 * Leaves for the provider's authorization endpoint: PKCE (S256), `state`, `nonce` (with `openid`),
 * `resource`, and `dpop_jkt` with the source's key, which is kept (with `keyStore`) for the page
 * that comes back. What the callback must find again waits in `storage`, never in the URL.
 */
export async function startSignIn({ settings, provider, storageKey, dpop }: SignInStart) {
  const url = authorizationEndpoint(await provider.discover(AbortSignal.timeout(10_000)));
  const verifier = generateRandomCodeVerifier();
  const pending: PendingSignIn = { state: generateRandomState(), verifier, at: Date.now() };
  if (isOpenid(settings.scope)) pending.nonce = generateRandomNonce();
  if (dpop !== undefined) {
    // A source with no key yet, in a page no other tab's key reaches, takes the key of a sign-in
    // another tab started and is at the provider with: the pages that come back share one key.
    const keyStore = settings.keyStore;
    if (keyStore !== undefined) await dpop.adopt(() => keyStore.latest());
    pending.jkt = await dpop.thumbprint();
    await settings.keyStore?.save(pending.state, await dpop.keyPair());
  }
  const params: Record<string, string | undefined> = {
    client_id: settings.clientId,
    redirect_uri: settings.redirectUri,
    response_type: "code",
    scope: settings.scope,
    state: pending.state,
    nonce: pending.nonce,
    code_challenge: await calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
    resource: settings.resource,
    dpop_jkt: pending.jkt,
  };
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined) url.searchParams.set(name, value);
  }
  settings.storage().setItem(storageKey, JSON.stringify(pending));
  settings.navigate(url);
}

/** The metadata's authorization endpoint, if it is HTTPS (or loopback) and PKCE S256 is there. */
function authorizationEndpoint(as: AuthorizationServer): URL {
  const endpoint = as.authorization_endpoint;
  if (endpoint === undefined) {
    throw new TokenFetchError("the provider's metadata has no authorization_endpoint", {
      code: TokenFetchCode.Internal,
    });
  }
  const methods = as.code_challenge_methods_supported;
  if (methods !== undefined && !methods.includes("S256")) {
    throw new TokenFetchError("the provider does not support PKCE with S256", {
      code: TokenFetchCode.Internal,
    });
  }
  const url = new URL(endpoint);
  if (url.protocol !== "https:" && !isLoopback(url)) {
    throw new TokenFetchError("the provider's authorization_endpoint is not HTTPS", {
      code: TokenFetchCode.Internal,
    });
  }
  return url;
}

/** With `openid`, the sign-in sends a `nonce` and requires an ID token. */
export function isOpenid(scope: string): boolean {
  return scope.split(" ").includes("openid");
}
