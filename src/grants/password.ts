import type { KyInstance } from "ky";
import type { GrantContext, TokenGrant } from "../core/grant.js";
import { checkOptionNames } from "../core/options.js";
import { repeatedFailure, TokenFetchCode, TokenFetchError } from "../core/token-fetch-error.js";
import { checkEndpoint, postForToken, tokenClient } from "./http.js";
import {
  checkClientOptions,
  checkRefreshOptions,
  createRefresher,
  isRefusal,
  type RefreshTokenStore,
} from "./refresh.js";

/** Username and password sent to the token endpoint (form-encoded with `clientId`, else JSON). */
export interface Credentials {
  username: string;
  password: string;
}

/** Options for {@link passwordGrant}. */
export interface PasswordGrantOptions {
  /**
   * The token endpoint. With `clientId`: an OAuth token endpoint, sent the form-encoded password
   * grant (RFC 6749 §4.3.2). Without: the app's own login API, sent JSON `{"username","password"}`.
   * Either answers `{"token"}` or `{"access_token","expires_in","refresh_token"?}`. Relative URLs
   * resolve against the page (or `http`'s `baseUrl`/`prefix`). Redirects are refused.
   */
  endpoint: string | URL;
  /**
   * The OAuth `client_id` (a public client). Given, the grant speaks OAuth 2.0: sign-in, refresh
   * (RFC 6749 §4.3.2, §6) and revocation (RFC 7009) go form-encoded with `client_id`, and only
   * `invalid_grant` counts as a refusal. Default: none, the app's own JSON login API, where a
   * 400, 401 or 403 without an OAuth error code means wrong credentials. RFC 9700 §2.4 forbids
   * the password grant at OAuth servers: prefer an authorization-code sign-in there.
   */
  clientId?: string | undefined;
  /** OAuth `scope` for the sign-in and every refresh (RFC 6749 §3.3). Needs `clientId`. Default: none. */
  scope?: string | undefined;
  /**
   * The username and password, or a function asked whenever they are needed: at sign-in, and
   * when there is no usable refresh token. It may return `undefined` when it has none (the user
   * signed out, or the app dropped the password after signing in).
   */
  credentials: Credentials | (() => Credentials | undefined | Promise<Credentials | undefined>);
  /**
   * The ky instance for the requests, to bring hooks, `baseUrl` or retry settings. Default: one
   * that retries a failed sign-in twice (408, 429, 5xx, network errors) with jittered backoff,
   * and gives each request 10 s. Redirects are refused on either; refreshes are never retried.
   */
  http?: KyInstance | undefined;
  /**
   * Where refresh requests go: `grant_type=refresh_token` form-encoded with `clientId` (RFC 6749
   * §6), else JSON `{"grant_type":"refresh_token","refresh_token"}`. Default: `endpoint`.
   */
  refreshEndpoint?: string | URL | undefined;
  /**
   * Where `clear()` revokes the refresh token (RFC 7009: a form of `token`,
   * `token_type_hint=refresh_token` and, with `clientId`, `client_id`). A failure reaches
   * listeners as `revoke-failed`. Default: none, it is only forgotten.
   */
  revokeEndpoint?: string | URL | undefined;
  /** Keeps the refresh token beyond the page (see SECURITY.md). Default: memory only. */
  store?: RefreshTokenStore | undefined;
}

/**
 * The password grant, as a `fetchToken`: signs in with the username and password and, when the
 * endpoint answers with a `refresh_token`, refreshes with it (rotating it on every use) instead
 * of asking for the password again. Credentials the endpoint refused are not sent again until
 * they change or `clear()` is called. With `clientId` it is an OAuth client (form-encoded, RFC
 * 6749 §4.3.2); without, it talks JSON to the app's own login API.
 *
 * @example
 * ```ts
 * const tokens = createTokenSource({
 *   fetchToken: passwordGrant({ endpoint: "/auth/token", credentials: () => form.credentials() }),
 * });
 * ```
 */
export function passwordGrant(options: PasswordGrantOptions): TokenGrant {
  checkPasswordOptions(options);
  const { endpoint, http } = options;
  // A credentials object serves one session: `clear()` forgets it (a function is asked again).
  let credentials: PasswordGrantOptions["credentials"] | undefined = options.credentials;
  const client = tokenClient(http, "retried");
  const refresher = createRefresher("passwordGrant", {
    ...options,
    refreshEndpoint: options.refreshEndpoint ?? endpoint,
  });
  /** A digest of the pair the endpoint refused last: the password itself is not kept. */
  let refusedDigest: string | undefined;

  const signIn = async (context: GrantContext, why: { hadRefreshToken: boolean }) => {
    const { username, password } = await resolveCredentials(credentials, why);
    const digest = await digestOf(username, password);
    if (digest === refusedDigest) {
      throw repeatedFailure(
        "the token endpoint refused these credentials: they are not sent again until they change or clear() is called",
        { code: TokenFetchCode.Unauthenticated, reason: "credentials-refused" },
      );
    }
    try {
      const answer = await postForToken(client, endpoint, {
        ...signInBody(options, username, password),
        signal: context.signal,
        dpop: context.dpop,
        reading: {
          dialect: options.clientId === undefined ? "login" : "oauth",
          secret: password,
          refused: "credentials-refused",
        },
      });
      refusedDigest = undefined;
      return refresher.keep(answer, undefined);
    } catch (error) {
      if (isRefusal(error)) refusedDigest = digest;
      throw error;
    }
  };
  const grant: TokenGrant = async (context) => {
    const refreshToken = await refresher.stored(context.state);
    if (refreshToken !== undefined) {
      try {
        return await refresher.refresh(refreshToken, context);
      } catch (error) {
        if (!isRefusal(error)) throw error;
      }
    }
    return signIn(context, { hadRefreshToken: refreshToken !== undefined });
  };
  grant.revoke = refresher.revoke;
  grant.persistent = options.store !== undefined; // the source then requires crossTab
  grant.reset = () => {
    refusedDigest = undefined;
    if (typeof credentials !== "function") credentials = undefined;
    refresher.reset();
  };
  return grant;
}

/** Checks passwordGrant's options up front, naming the option in a TypeError. */
function checkPasswordOptions(options: PasswordGrantOptions): void {
  if (typeof options !== "object" || options === null) {
    throw new TypeError("passwordGrant: options must be an object");
  }
  checkOptionNames("passwordGrant", options, OPTIONS);
  const { endpoint, http, credentials } = options;
  checkEndpoint("passwordGrant", "endpoint", endpoint, http);
  if (options.refreshEndpoint !== undefined) {
    checkEndpoint("passwordGrant", "refreshEndpoint", options.refreshEndpoint, http);
  }
  checkRefreshOptions("passwordGrant", options);
  checkClientOptions("passwordGrant", options, { clientId: "optional" });
  if (typeof credentials !== "function" && !isCredentials(credentials)) {
    throw new TypeError(
      "passwordGrant: credentials must be { username: string, password: string } or a function returning them",
    );
  }
}

/** The sign-in body: OAuth's form (RFC 6749 §4.3.2), or JSON for the app's own login API. */
function signInBody(
  { clientId, scope }: PasswordGrantOptions,
  username: string,
  password: string,
): { json: { username: string; password: string } } | { form: URLSearchParams } {
  if (clientId === undefined) return { json: { username, password } };
  const form = new URLSearchParams({ grant_type: "password", username, password });
  form.set("client_id", clientId);
  if (scope !== undefined) form.set("scope", scope);
  return { form };
}

const OPTIONS = [
  "endpoint",
  "clientId",
  "scope",
  "credentials",
  "http",
  "refreshEndpoint",
  "revokeEndpoint",
  "store",
];

function isCredentials(value: unknown): value is Credentials {
  if (typeof value !== "object" || value === null) return false;
  const { username, password } = value as Partial<Credentials>;
  return typeof username === "string" && typeof password === "string";
}

async function resolveCredentials(
  credentials: PasswordGrantOptions["credentials"] | undefined,
  { hadRefreshToken }: { hadRefreshToken: boolean },
): Promise<Credentials> {
  let value: unknown;
  try {
    value = typeof credentials === "function" ? await credentials() : credentials;
  } catch (error) {
    throw new TokenFetchError("the credentials function failed", {
      code: TokenFetchCode.Unauthenticated,
      cause: error,
    });
  }
  if (value === undefined || value === null) {
    throw new TokenFetchError(
      hadRefreshToken
        ? "the refresh token was refused and there are no credentials to sign in with"
        : "there are no credentials to sign in with",
      {
        code: TokenFetchCode.Unauthenticated,
        reason: hadRefreshToken ? "refresh-token-refused" : "no-credentials",
      },
    );
  }
  if (!isCredentials(value)) {
    throw new TokenFetchError("credentials must be { username: string, password: string }", {
      code: TokenFetchCode.Unauthenticated,
    });
  }
  return { username: value.username, password: value.password };
}

/** SHA-256 of the pair where WebCrypto is available (secure contexts), else a 53-bit hash. */
async function digestOf(username: string, password: string): Promise<string> {
  const text = `${username}\u0000${password}`;
  const subtle = globalThis.crypto?.subtle;
  if (subtle !== undefined) {
    const hash = new Uint8Array(await subtle.digest("SHA-256", new TextEncoder().encode(text)));
    return String.fromCharCode(...hash);
  }
  // cyrb53: no secret, but enough to tell one typed password from another.
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return `${h2 >>> 0}:${h1 >>> 0}`;
}
