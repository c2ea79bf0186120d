import type { DpopKeyHandle, TokenGrant } from "../../core/grant.js";
import { tokenClient } from "../http.js";
import { startSignIn } from "./authorization-request.js";
import { type CheckedCallback, checkCallback } from "./callback.js";
import { exchangeCode } from "./code-exchange.js";
import { type AuthorizationCodeGrantOptions, resolveOptions } from "./options.js";
import { createProvider } from "./provider.js";
import { createSignInSession } from "./session.js";

export type { AuthorizationCodeGrantOptions } from "./options.js";

/** What {@link authorizationCodeGrant} returns: a grant with the two steps of a sign-in. */
export interface AuthorizationCodeGrant extends TokenGrant {
  /**
   * Navigates to the provider's authorization endpoint: PKCE (S256), `state`, `nonce` (with
   * `openid`), `resource`, and `dpop_jkt` when the source has `dpop`. Call it after
   * `createTokenSource`, on a user's click.
   */
  signIn(): Promise<void>;
  /**
   * On every page load: when `url` is the provider's answer at `redirectUri`, takes its parameters
   * out of the address bar, checks them (`state`, `iss`, `error`), and keeps the code for the
   * source's next fetch (`tokens.getToken()` exchanges it). Resolves `true` then, `false` for any
   * other URL. Throws a {@link TokenFetchError} (code Unauthenticated) for an `error=…` answer
   * (its message names the error) and for a callback this tab did not start or already took, with
   * no token request.
   */
  handleCallback(url?: string | URL): Promise<boolean>;
}

const PENDING_KEY = "grpc-web-auth.sign-in";

/**
 * Sign-in with an OpenID provider by authorization code with PKCE, as a `fetchToken`. `signIn()`
 * leaves for the provider; `handleCallback()` takes its answer; the source's next fetch exchanges
 * the code (checking the ID token), and the later ones refresh with the refresh token, rotating
 * it, exactly as `refreshTokenGrant` does. Every request is made by oauth4webapi through this
 * library's ky client. With no code and no usable refresh token the session ends with reason
 * `"sign-in-required"` (or `"refresh-token-refused"` after a refused one): call `signIn()`.
 *
 * @example
 * ```ts
 * const signIn = authorizationCodeGrant({
 *   issuer: "https://id.example.com",
 *   clientId: "spa",
 *   redirectUri: `${location.origin}/callback`,
 * });
 * const tokens = createTokenSource({ fetchToken: signIn, dpop: dpopProofs() });
 * await signIn.handleCallback();
 * button.onclick = () => signIn.signIn();
 * ```
 */
export function authorizationCodeGrant(
  options: AuthorizationCodeGrantOptions,
): AuthorizationCodeGrant {
  const settings = resolveOptions(options);
  const provider = createProvider(settings, tokenClient(settings.http, "once"));
  const session = createSignInSession(settings, provider);
  const storageKey = `${PENDING_KEY}:${settings.clientId}`;
  let dpop: DpopKeyHandle | undefined;
  /** A checked callback, waiting for the source's next fetch to exchange its code. */
  let callback: CheckedCallback | undefined;

  const grant = (async (context) => {
    const taken = callback;
    callback = undefined;
    // A session lives already (this tab's or another's, perhaps from a sign-in in another tab
    // at the same time): it is kept, and this tab's code is dropped, so there is one session.
    const living = await session.living(context);
    if (living !== undefined) return session.refresh(living.use, living.refreshToken, context);
    if (taken === undefined) throw session.signInRequired();
    return session.start(await exchangeCode(taken, context, settings, provider), context.signal);
  }) as AuthorizationCodeGrant;

  grant.attach = (source) => {
    dpop = source.dpop;
  };
  grant.signIn = () => startSignIn({ settings, provider, storageKey, dpop });
  grant.handleCallback = async (at) => {
    const checked = await checkCallback(at, { settings, provider, storageKey, dpop });
    if (checked === undefined) return false;
    callback = checked;
    return true;
  };
  grant.revoke = (context) => session.revoke(context);
  // A refresh token in a store every tab reads: the source requires the tabs to take turns.
  grant.persistent = settings.store !== undefined;
  grant.reset = () => {
    callback = undefined;
    session.reset();
  };
  return grant;
}
