import type { GrantContext, GrantedToken } from "../../core/grant.js";
import { TokenFetchCode, TokenFetchError } from "../../core/token-fetch-error.js";
import type { TokenAnswer } from "../http.js";
import { createRefresher, isRefusal, type Refresher, type RefreshTokenStore } from "../refresh.js";
import type { SignInSettings } from "./options.js";
import type { Provider } from "./provider.js";

/**
 * What a sign-in keeps once its code is exchanged: the shared refresh module (RFC 6749 §6
 * refreshes with rotation, RFC 7009 revocation, the store), made once the provider's endpoints
 * are known, and whether the provider refused a refresh token since the last sign-in.
 */
export function createSignInSession(settings: SignInSettings, provider: Provider) {
  let refresher: Refresher | undefined;
  let refusedOnce = false;

  const refresherFor = async (signal: AbortSignal): Promise<Refresher> => {
    const as = await provider.discover(signal);
    refresher ??= createRefresher("authorizationCodeGrant", {
      refreshEndpoint: as.token_endpoint ?? `${settings.issuer.href.replace(/\/$/, "")}/token`,
      revokeEndpoint: as.revocation_endpoint,
      clientId: settings.clientId,
      http: settings.http,
      store: settings.store,
    });
    return refresher;
  };

  return {
    /** The refresh token of a session that lives already (this tab's, another's, the store's). */
    async living(context: GrantContext) {
      if (context.state === undefined && settings.store === undefined) return undefined;
      const use = await refresherFor(context.signal);
      const refreshToken = await use.stored(context.state);
      return refreshToken === undefined ? undefined : { use, refreshToken };
    },
    async refresh(use: Refresher, refreshToken: string, context: GrantContext) {
      try {
        return await use.refresh(refreshToken, context);
      } catch (error) {
        if (isRefusal(error)) refusedOnce = true;
        throw error;
      }
    },
    /** A new session from an exchanged code: its refresh token kept, the refusal forgotten. */
    async start(answer: TokenAnswer, signal: AbortSignal): Promise<GrantedToken> {
      const use = await refresherFor(signal);
      refusedOnce = false;
      return use.keep(answer, undefined);
    },
    /** No session and no code: the app must call `signIn()`. */
    signInRequired(): TokenFetchError {
      return new TokenFetchError(
        refusedOnce
          ? "the provider refused the refresh token: sign in again (signIn())"
          : "not signed in: call signIn()",
        {
          code: TokenFetchCode.Unauthenticated,
          reason: refusedOnce ? "refresh-token-refused" : "sign-in-required",
        },
      );
    },
    revoke: async (context: Parameters<Refresher["revoke"]>[0]) =>
      (await refresherFor(context.signal)).revoke(context),
    reset(): void {
      refusedOnce = false;
      if (refresher !== undefined) refresher.reset();
      else forget(settings.store);
    },
  };
}

/** Sign-out before the refresh module exists: the store forgets the refresh token. */
function forget(store: RefreshTokenStore | undefined): void {
  try {
    Promise.resolve(store?.save(undefined)).catch(() => {});
  } catch {
    // A store that throws at once keeps nothing worth reporting here.
  }
}
