import type { KyInstance } from "ky";
import {
  type AuthorizationServer,
  allowInsecureRequests,
  authorizationCodeGrantRequest,
  type Client,
  calculatePKCECodeChallenge,
  customFetch,
  discoveryRequest,
  expectNoNonce,
  generateRandomCodeVerifier,
  generateRandomNonce,
  generateRandomState,
  None,
  processAuthorizationCodeResponse,
  processDiscoveryResponse,
  type TokenEndpointResponse,
  validateAuthResponse,
} from "oauth4webapi";
import type {
  DpopKeyHandle,
  DpopSigner,
  GrantContext,
  GrantedToken,
  TokenGrant,
} from "../../core/grant.js";
import { TokenFetchCode, TokenFetchError } from "../../core/token-fetch-error.js";
import { type TokenAnswer, tokenClient } from "../http.js";
import {
  checkRefreshOptions,
  createRefresher,
  isRefusal,
  type Refresher,
  type RefreshTokenStore,
} from "../refresh.js";
import { type FailureContext, oauthFetch, toTokenFetchError } from "./oauth-fetch.js";
import {
  indexedDbSignInKeys,
  type PendingSignIn,
  type SignInKeyStore,
  type SignInStorage,
  takePending,
} from "./pending-sign-in.js";

/** Options for {@link authorizationCodeGrant}. */
export interface AuthorizationCodeGrantOptions {
  /**
   * The OpenID provider's issuer URL. Its metadata is read once per page from
   * `<issuer>/.well-known/openid-configuration`, and the metadata's `issuer` must equal it. HTTPS,
   * except for a loopback host (`localhost`, `127.0.0.1`, `[::1]`) in development. Required.
   */
  issuer: string | URL;
  /** The `client_id` the provider registered for this app (a public client). Required. */
  clientId: string;
  /** Where the provider sends the browser back: a registered redirect URI of the client. Required. */
  redirectUri: string | URL;
  /**
   * The scope to ask for. With `openid`, the sign-in sends a `nonce` and requires and checks an ID
   * token. Many providers issue a refresh token only for `offline_access`. Default: `"openid"`.
   */
  scope?: string | undefined;
  /** The API's resource indicator (RFC 8707), sent with every request. Default: none. */
  resource?: string | undefined;
  /**
   * The ky instance for discovery, code exchange, refresh and revocation. Default: ours (10 s per
   * request). Used as given except that redirects are refused and nothing is retried.
   */
  http?: KyInstance | undefined;
  /** Keeps the refresh token beyond the page (see SECURITY.md). Default: memory only. */
  store?: RefreshTokenStore | undefined;
  /** Sends the browser to the authorization request. Default: `location.assign(url)`. */
  navigate?: ((url: URL) => void) | undefined;
  /** Takes the callback's parameters out of the address bar. Default: `history.replaceState`. */
  replaceUrl?: ((url: URL) => void) | undefined;
  /** Where the verifier, `state` and `nonce` wait for the callback. Default: `sessionStorage`. */
  storage?: SignInStorage | undefined;
  /**
   * Where the DPoP key the code is bound to waits for the callback, with `dpop`. Default:
   * IndexedDB where there is one (a browser), else none (the key must stay in memory).
   */
  keyStore?: SignInKeyStore | undefined;
}

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
/** A sign-in left unanswered longer than this is refused (the provider's code lives minutes). */
const PENDING_MS = 30 * 60_000;
/** The parameters of an authorization response, taken out of the address bar. */
const CALLBACK_PARAMS = ["code", "state", "iss", "error", "error_description", "error_uri"];

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
  const { issuer, clientId, redirectUri, scope, resource, store } = settings;
  const client: Client = { client_id: clientId };
  const insecure = isLoopback(issuer) ? { [allowInsecureRequests]: true } : {};
  const additionalParameters = resource === undefined ? undefined : { resource };
  const openid = scope.split(" ").includes("openid");
  const http = tokenClient(options.http, "once");
  const storageKey = `${PENDING_KEY}:${clientId}`;

  let attached: DpopKeyHandle | undefined;
  let metadata: Promise<AuthorizationServer> | undefined;
  /** A checked callback, waiting for the source's next fetch to exchange its code. */
  let callback: { params: URLSearchParams; pending: PendingSignIn } | undefined;
  let refresher: Refresher | undefined;
  /** Whether the provider refused a refresh token of this grant since the last sign-in. */
  let refusedOnce = false;

  const options4 = (dpop: DpopSigner | undefined, signal: AbortSignal) => ({
    [customFetch]: oauthFetch(http, dpop),
    ...insecure,
    signal,
    ...(additionalParameters && { additionalParameters }),
  });

  /** The provider's metadata, read once (a failure is not kept). */
  const discover = (signal: AbortSignal): Promise<AuthorizationServer> => {
    metadata ??= (async () => {
      const response = await discoveryRequest(issuer, {
        algorithm: "oidc",
        [customFetch]: oauthFetch(http, undefined),
        ...insecure,
        signal,
      });
      return processDiscoveryResponse(issuer, response);
    })();
    const current = metadata;
    return current.catch((error: unknown) => {
      if (metadata === current) metadata = undefined;
      throw toTokenFetchError(error, { endpoint: "provider's discovery document", secrets: [] });
    });
  };

  /**
   * The shared refresh module (RFC 6749 §6 refreshes with rotation, RFC 7009 revocation, the
   * store), made once the provider's endpoints are known.
   */
  const refresherFor = async (signal: AbortSignal): Promise<Refresher> => {
    const as = await discover(signal);
    refresher ??= createRefresher("authorizationCodeGrant", {
      refreshEndpoint: as.token_endpoint ?? `${issuer.href.replace(/\/$/, "")}/token`,
      revokeEndpoint: as.revocation_endpoint,
      clientId,
      http: options.http,
      store,
    });
    return refresher;
  };

  /** A DPoP source sends `DPoP <token>`: a bearer token would be refused on every call. */
  const checkType = (tokenType: string | undefined, dpop: DpopSigner | undefined) => {
    if (dpop !== undefined && tokenType?.toLowerCase() !== "dpop") {
      throw new TokenFetchError(
        `the provider answered a "${tokenType}" token to a DPoP request: it does not support DPoP here, so leave out dpop`,
        { code: TokenFetchCode.Internal },
      );
    }
  };

  const exchange = async (
    { params, pending }: NonNullable<typeof callback>,
    { signal, dpop }: GrantContext,
  ): Promise<GrantedToken> => {
    const failure: FailureContext = {
      endpoint: "token endpoint",
      secrets: [params.get("code") ?? "", pending.verifier],
      refused: "sign-in-required",
    };
    try {
      const as = await discover(signal);
      const response = await authorizationCodeGrantRequest(
        as,
        client,
        None(),
        params,
        redirectUri,
        pending.verifier,
        options4(dpop, signal),
      );
      const answer = await processAuthorizationCodeResponse(
        as,
        client,
        response,
        openid
          ? { expectedNonce: pending.nonce ?? expectNoNonce, requireIdToken: true }
          : undefined,
      );
      checkType(answer.token_type, dpop);
      const use = await refresherFor(signal);
      refusedOnce = false;
      return use.keep(tokenAnswer(answer), undefined);
    } catch (error) {
      throw toTokenFetchError(error, failure);
    }
  };

  const refresh = async (use: Refresher, refreshToken: string, context: GrantContext) => {
    try {
      const granted = await use.refresh(refreshToken, context);
      return granted;
    } catch (error) {
      if (isRefusal(error)) refusedOnce = true;
      throw error;
    }
  };

  const grant = (async (context) => {
    const taken = callback;
    callback = undefined;
    if (context.state !== undefined || store !== undefined) {
      const use = await refresherFor(context.signal);
      const refreshToken = await use.stored(context.state);
      // A session lives already (this tab's or another's, perhaps from a sign-in in another tab
      // at the same time): it is kept, and this tab's code is dropped, so there is one session.
      if (refreshToken !== undefined) return refresh(use, refreshToken, context);
    }
    if (taken !== undefined) return exchange(taken, context);
    throw new TokenFetchError(
      refusedOnce
        ? "the provider refused the refresh token: sign in again (signIn())"
        : "not signed in: call signIn()",
      {
        code: TokenFetchCode.Unauthenticated,
        reason: refusedOnce ? "refresh-token-refused" : "sign-in-required",
      },
    );
  }) as AuthorizationCodeGrant;

  grant.attach = ({ dpop }) => {
    attached = dpop;
  };

  grant.signIn = async () => {
    const signal = AbortSignal.timeout(10_000);
    const as = await discover(signal);
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
    const verifier = generateRandomCodeVerifier();
    const pending: PendingSignIn = { state: generateRandomState(), verifier, at: Date.now() };
    if (openid) pending.nonce = generateRandomNonce();
    if (attached !== undefined) {
      pending.jkt = await attached.thumbprint();
      await settings.keyStore?.save(pending.state, await attached.keyPair());
    }
    const params: Record<string, string | undefined> = {
      client_id: clientId,
      redirect_uri: redirectUri,
      response_type: "code",
      scope,
      state: pending.state,
      nonce: pending.nonce,
      code_challenge: await calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
      resource,
      dpop_jkt: pending.jkt,
    };
    for (const [name, value] of Object.entries(params)) {
      if (value !== undefined) url.searchParams.set(name, value);
    }
    settings.storage().setItem(storageKey, JSON.stringify(pending));
    settings.navigate(url);
  };

  grant.handleCallback = async (at) => {
    const url = new URL(at ?? settings.here(), settings.base());
    const expected = new URL(redirectUri);
    const params = url.searchParams;
    if (
      url.origin !== expected.origin ||
      url.pathname !== expected.pathname ||
      !(params.has("code") || params.has("error") || params.has("state"))
    ) {
      return false;
    }
    // The code leaves the address bar (and the history entry) before anything else happens.
    const clean = new URL(url);
    for (const name of CALLBACK_PARAMS) clean.searchParams.delete(name);
    settings.replaceUrl(clean);

    const pending = takePending(settings.storage(), storageKey);
    const refuse = (message: string) =>
      new TokenFetchError(`sign-in callback refused: ${message}`, {
        code: TokenFetchCode.Unauthenticated,
      });
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
    const pair =
      pending.jkt === undefined ? undefined : await settings.keyStore?.take(pending.state);
    let checked: URLSearchParams;
    try {
      checked = validateAuthResponse(
        await discover(AbortSignal.timeout(10_000)),
        client,
        params,
        pending.state,
      );
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
    if (pending.jkt !== undefined && attached !== undefined) {
      if (pair !== undefined) await attached.adopt(pair);
      if ((await attached.thumbprint()) !== pending.jkt) {
        throw refuse(
          "the DPoP key this sign-in was bound to is gone (another tab made a new one): sign in again",
        );
      }
    }
    callback = { params: checked, pending };
    return true;
  };

  grant.revoke = async (context) => (await refresherFor(context.signal)).revoke(context);

  grant.reset = () => {
    callback = undefined;
    refusedOnce = false;
    if (refresher !== undefined) refresher.reset();
    else forget(store);
  };
  return grant;
}

/** Checks the options once, with their defaults; a TypeError names the option to fix. */
function resolveOptions(options: AuthorizationCodeGrantOptions) {
  const fail = (message: string): never => {
    throw new TypeError(`authorizationCodeGrant: ${message}`);
  };
  if (typeof options !== "object" || options === null) fail("options must be an object");
  const url = (name: string, value: unknown) => {
    if (!(value instanceof URL) && !(typeof value === "string" && value !== "")) {
      fail(`${name} must be a non-empty string or a URL`);
    }
    try {
      return new URL(String(value), globalThis.location?.href);
    } catch {
      return fail(`${name} must be an absolute URL, got "${String(value)}"`);
    }
  };
  const issuer = url("issuer", options.issuer);
  if (issuer.protocol !== "https:" && !isLoopback(issuer)) {
    fail("issuer must be an https URL (http only for localhost, 127.0.0.1 or [::1])");
  }
  const redirectUri = url("redirectUri", options.redirectUri).href;
  const { clientId, resource, http, navigate, replaceUrl, storage, keyStore } = options;
  if (typeof clientId !== "string" || clientId === "") {
    fail("clientId must be a non-empty string (the client_id the provider registered)");
  }
  const scope = options.scope ?? "openid";
  if (
    typeof scope !== "string" ||
    !/^[\x21\x23-\x5b\x5d-\x7e]+( [\x21\x23-\x5b\x5d-\x7e]+)*$/.test(scope)
  ) {
    fail('scope must be space-separated scope tokens, such as "openid offline_access api"');
  }
  if (resource !== undefined) url("resource", resource);
  if (http !== undefined && typeof http !== "function") fail("http must be a ky instance");
  checkRefreshOptions("authorizationCodeGrant", options);
  for (const [name, value] of [
    ["navigate", navigate],
    ["replaceUrl", replaceUrl],
  ] as const) {
    if (value !== undefined && typeof value !== "function") fail(`${name} must be a function`);
  }
  if (storage !== undefined && typeof storage?.getItem !== "function") {
    fail("storage must be a Storage: { getItem, setItem, removeItem }");
  }
  if (keyStore !== undefined && typeof keyStore?.take !== "function") {
    fail("keyStore must be { save(id, pair), take(id) }");
  }
  const page = () => globalThis.location;
  return {
    issuer,
    clientId: clientId as string,
    redirectUri,
    scope: scope as string,
    resource,
    store: options.store,
    // Browser defaults, looked up when used: the grant can be made where there is no page.
    navigate: navigate ?? ((to: URL) => page().assign(to.href)),
    replaceUrl:
      replaceUrl ?? ((to: URL) => globalThis.history?.replaceState(history.state, "", to.href)),
    storage: () => storage ?? globalThis.sessionStorage,
    here: () => page()?.href ?? fail("handleCallback needs a URL where there is no page"),
    base: () => page()?.href,
    keyStore: keyStore ?? (typeof indexedDB === "undefined" ? undefined : indexedDbSignInKeys()),
  };
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

/** Sign-out before the refresh module exists: the store forgets the refresh token. */
function forget(store: RefreshTokenStore | undefined): void {
  try {
    Promise.resolve(store?.save(undefined)).catch(() => {});
  } catch {
    // A store that throws at once keeps nothing worth reporting here.
  }
}

function isLoopback(url: URL): boolean {
  return ["localhost", "127.0.0.1", "[::1]"].includes(url.hostname);
}
