import type { KyInstance } from "ky";
import { checkOptionNames } from "../../core/options.js";
import { checkRefreshOptions, type RefreshTokenStore } from "../refresh.js";
import type { SignInStorage } from "./pending-sign-in.js";
import { indexedDbSignInKeys, type SignInKeyStore } from "./sign-in-keys.js";

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

/** The options checked, with their defaults: what the rest of the grant reads. */
export type SignInSettings = ReturnType<typeof resolveOptions>;

const OPTIONS = [
  "issuer",
  "clientId",
  "redirectUri",
  "scope",
  "resource",
  "http",
  "store",
  "navigate",
  "replaceUrl",
  "storage",
  "keyStore",
] as const satisfies readonly (keyof AuthorizationCodeGrantOptions)[];

const fail = (message: string): never => {
  throw new TypeError(`authorizationCodeGrant: ${message}`);
};

/** Checks the options once, with their defaults; a TypeError names the option to fix. */
export function resolveOptions(options: AuthorizationCodeGrantOptions) {
  if (typeof options !== "object" || options === null) fail("options must be an object");
  checkOptionNames("authorizationCodeGrant", options, OPTIONS);
  const issuer = urlOption("issuer", options.issuer);
  if (issuer.protocol !== "https:" && !isLoopback(issuer)) {
    fail("issuer must be an https URL (http only for localhost, 127.0.0.1 or [::1])");
  }
  const redirectUri = urlOption("redirectUri", options.redirectUri).href;
  const { clientId, resource } = options;
  if (typeof clientId !== "string" || clientId === "") {
    fail("clientId must be a non-empty string (the client_id the provider registered)");
  }
  const scope = scopeOption(options.scope);
  if (resource !== undefined) urlOption("resource", resource);
  if (options.http !== undefined && typeof options.http !== "function") {
    fail("http must be a ky instance");
  }
  checkRefreshOptions("authorizationCodeGrant", options);
  checkBrowserOptions(options);
  return {
    issuer,
    clientId: clientId as string,
    redirectUri,
    scope,
    resource,
    http: options.http,
    store: options.store,
    ...browserDefaults(options),
  };
}

/** An absolute URL (relative to the page where there is one). */
function urlOption(name: string, value: unknown): URL {
  if (!(value instanceof URL) && !(typeof value === "string" && value !== "")) {
    fail(`${name} must be a non-empty string or a URL`);
  }
  try {
    return new URL(String(value), globalThis.location?.href);
  } catch {
    return fail(`${name} must be an absolute URL, got "${String(value)}"`);
  }
}

/** RFC 6749 §3.3 scope tokens, separated by one space. */
function scopeOption(value: unknown): string {
  const scope = value ?? "openid";
  if (
    typeof scope !== "string" ||
    !/^[\x21\x23-\x5b\x5d-\x7e]+( [\x21\x23-\x5b\x5d-\x7e]+)*$/.test(scope)
  ) {
    fail('scope must be space-separated scope tokens, such as "openid offline_access api"');
  }
  return scope as string;
}

/** The browser's hooks and stores: checked when given. */
function checkBrowserOptions(options: AuthorizationCodeGrantOptions): void {
  const { navigate, replaceUrl, storage, keyStore } = options;
  for (const [name, value] of [
    ["navigate", navigate],
    ["replaceUrl", replaceUrl],
  ] as const) {
    if (value !== undefined && typeof value !== "function") fail(`${name} must be a function`);
  }
  if (storage !== undefined && typeof storage?.getItem !== "function") {
    fail("storage must be a Storage: { getItem, setItem, removeItem }");
  }
  if (
    keyStore !== undefined &&
    (typeof keyStore?.take !== "function" || typeof keyStore.latest !== "function")
  ) {
    fail("keyStore must be { save(id, pair), take(id), latest() }");
  }
}

/** Browser defaults, looked up when used: the grant can be made where there is no page. */
function browserDefaults(options: AuthorizationCodeGrantOptions) {
  const { navigate, replaceUrl, storage, keyStore } = options;
  const page = () => globalThis.location;
  return {
    navigate: navigate ?? ((to: URL) => page().assign(to.href)),
    replaceUrl:
      replaceUrl ?? ((to: URL) => globalThis.history?.replaceState(history.state, "", to.href)),
    storage: () => storage ?? globalThis.sessionStorage,
    here: () => page()?.href ?? fail("handleCallback needs a URL where there is no page"),
    base: () => page()?.href,
    keyStore: keyStore ?? (typeof indexedDB === "undefined" ? undefined : indexedDbSignInKeys()),
  };
}

/** A loopback host, where a provider may speak plain HTTP in development. */
export function isLoopback(url: URL): boolean {
  return ["localhost", "127.0.0.1", "[::1]"].includes(url.hostname);
}
