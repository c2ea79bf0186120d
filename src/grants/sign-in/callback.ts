import { validateAuthResponse } from "oauth4webapi";
import type { DpopKeyHandle } from "../../core/grant.js";
import { TokenFetchCode, TokenFetchError } from "../../core/token-fetch-error.js";
import type { SignInSettings } from "./options.js";
import { type PendingSignIn, takePending } from "./pending-sign-in.js";
import type { Provider } from "./provider.js";

/** A sign-in left unanswered longer than this is refused (the provider's code lives minutes). */
const PENDING_MS = 30 * 60_000;
/** The parameters of an authorization response, taken out of the address bar. */
const CALLBACK_PARAMS = ["code", "state", "iss", "error", "error_description", "error_uri"];

/** A checked callback: its parameters and the sign-in it answers, for the code exchange. */
export interface CheckedCallback {
  params: URLSearchParams;
  pending: PendingSignIn;
}

/** What the callback's checks need of the grant. */
export interface CallbackContext {
  settings: SignInSettings;
  provider: Provider;
  /** The `sessionStorage` key of the pending sign-in. */
  storageKey: string;
  /** The source's DPoP key, when it has `dpop`. */
  dpop: DpopKeyHandle | undefined;
}

/**
 * The provider's answer at `redirectUri`, checked: its parameters leave the address bar first;
 * then it must answer the sign-in this tab started (`state`), recently, from the provider (`iss`),
 * without an `error`, and the source must sign with the key the code is bound to. `undefined` for
 * any other URL; a {@link TokenFetchError} (Unauthenticated) for a refused one.
 */
export async function checkCallback(
  at: string | URL | undefined,
  context: CallbackContext,
): Promise<CheckedCallback | undefined> {
  const { settings } = context;
  const url = new URL(at ?? settings.here(), settings.base());
  if (!isCallback(url, settings.redirectUri)) return undefined;
  // The code leaves the address bar (and the history entry) before anything else happens.
  const clean = new URL(url);
  for (const name of CALLBACK_PARAMS) clean.searchParams.delete(name);
  settings.replaceUrl(clean);

  const pending = checkPending(
    takePending(settings.storage(), context.storageKey),
    url.searchParams,
  );
  const pair = pending.jkt === undefined ? undefined : await settings.keyStore?.take(pending.state);
  const params = await validate(context.provider, url.searchParams, pending);
  await checkKey(context.dpop, pending, pair);
  return { params, pending };
}

/** Whether `url` is an answer at the redirect URI (a code, an error, or a state). */
function isCallback(url: URL, redirectUri: string): boolean {
  const expected = new URL(redirectUri);
  const params = url.searchParams;
  return (
    url.origin === expected.origin &&
    url.pathname === expected.pathname &&
    (params.has("code") || params.has("error") || params.has("state"))
  );
}

function refuse(message: string): TokenFetchError {
  return new TokenFetchError(`sign-in callback refused: ${message}`, {
    code: TokenFetchCode.Unauthenticated,
  });
}

/** The sign-in this tab started, answered once, with this state, not too long ago. */
function checkPending(pending: PendingSignIn | undefined, params: URLSearchParams): PendingSignIn {
  if (pending === undefined) {
    throw refuse(
      "this tab has no sign-in waiting for an answer (a replayed callback, or one this tab never started)",
    );
  }
  if (params.get("state") !== pending.state) {
    throw refuse("its state does not match the sign-in this tab started");
  }
  if (Date.now() - pending.at > PENDING_MS) {
    throw refuse("the sign-in started too long ago: sign in again");
  }
  return pending;
}

/** oauth4webapi's checks of the answer (`iss`, `state`); an `error=…` answer says its error. */
async function validate(
  provider: Provider,
  params: URLSearchParams,
  pending: PendingSignIn,
): Promise<URLSearchParams> {
  const as = await provider.discover(AbortSignal.timeout(10_000));
  try {
    return validateAuthResponse(as, provider.client, params, pending.state);
  } catch (error) {
    const code = (error as { error?: unknown }).error;
    if (typeof code === "string") {
      const said = /^[\x20\x21\x23-\x5b\x5d-\x7e]{1,40}$/.test(code) ? code : "an error";
      const description = params.get("error_description");
      throw new TokenFetchError(
        `the provider answered the sign-in with ${said}${description ? ` (${description.slice(0, 120)})` : ""}`,
        { code: TokenFetchCode.Unauthenticated, oauthError: said },
      );
    }
    if (error instanceof TokenFetchError) throw error;
    throw refuse((error as Error).message);
  }
}

/** The source signs with the key the code is bound to: the one kept across the navigation. */
async function checkKey(
  dpop: DpopKeyHandle | undefined,
  pending: PendingSignIn,
  pair: CryptoKeyPair | undefined,
): Promise<void> {
  if (pending.jkt === undefined || dpop === undefined) return;
  if (pair !== undefined) await dpop.adopt(pair);
  if ((await dpop.thumbprint()) !== pending.jkt) {
    throw refuse(
      "the DPoP key this sign-in was bound to is gone (another tab made a new one): sign in again",
    );
  }
}
