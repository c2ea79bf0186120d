import type { KyInstance } from "ky";
import type { GrantContext, GrantedToken, RevokeContext } from "../core/grant.js";
import { reportError } from "../core/report-error.js";
import { TokenFetchCode, TokenFetchError } from "../core/token-fetch-error.js";
import { post, postForToken, type TokenAnswer, tokenClient } from "./http.js";

/**
 * Where a refresh token outlives the page, for apps that accept the risk (see SECURITY.md).
 * Without one, the refresh token lives in memory only and a reload means signing in again.
 */
export interface RefreshTokenStore {
  /** The refresh token saved last, or `undefined`. Asked once, when the grant first needs one. */
  load(): string | undefined | Promise<string | undefined>;
  /** Saves the current refresh token; `undefined` when it was refused or the user signed out. */
  save(refreshToken: string | undefined): void | Promise<void>;
}

/** The options the grants with refresh tokens share. */
export interface RefreshOptions {
  /** Where refresh requests go. */
  refreshEndpoint: string | URL;
  /**
   * The OAuth client: refreshes (RFC 6749 §6) and revocations (RFC 7009) go form-encoded with
   * `client_id`, and errors are read by their OAuth code. None: the app's own login API, which
   * gets JSON refreshes and reads a 400/401/403 without an OAuth code as a refusal.
   */
  clientId?: string | undefined;
  /** OAuth `scope`, sent with every refresh when given (OAuth only). */
  scope?: string | undefined;
  /** Where `clear()` revokes the refresh token (RFC 7009); none: it is only forgotten. */
  revokeEndpoint?: string | URL | undefined;
  http?: KyInstance | undefined;
  store?: RefreshTokenStore | undefined;
}

/** Refresh-token handling shared by `passwordGrant` and `refreshTokenGrant`. */
export interface Refresher {
  /** The refresh token to use: the session's state, else the store's (asked once); never a refused one. */
  stored(state: string | undefined): Promise<string | undefined>;
  /** `refreshToken`, unless the endpoint refused it before. */
  usable(refreshToken: string | undefined): string | undefined;
  /** Trades `refreshToken` for a token and its successor (rotation); sent at most once. */
  refresh(refreshToken: string, context: GrantContext): Promise<GrantedToken>;
  /** The granted token for an answer, keeping its refresh token (or `kept`, if it has none). */
  keep(answer: TokenAnswer, kept: string | undefined): GrantedToken;
  /** Revokes the refresh token (RFC 7009); rejects with a TokenFetchError when that failed. */
  revoke(context: { state: string; signal: AbortSignal }): Promise<void>;
  /** Sign-out: nothing is kept, in memory or in the store. */
  reset(): void;
}

/**
 * Is this failure the endpoint refusing what was sent (`invalid_grant`; from an app's own login
 * API also a 400, 401 or 403 without an OAuth error code)?
 */
export function isRefusal(error: unknown): error is TokenFetchError {
  return error instanceof TokenFetchError && error.code === TokenFetchCode.Unauthenticated;
}

export function createRefresher(grant: string, options: RefreshOptions): Refresher {
  const { refreshEndpoint, clientId } = options;
  const dialect = clientId === undefined ? "login" : "oauth";
  // A refresh that reached the server may have rotated the token even if its answer was lost:
  // sending it again would be reuse, which revokes the whole family. So never retried.
  const once = tokenClient(options.http, "once");
  const stored = storedRefreshTokens(grant, options.store);
  // Refresh tokens the endpoint refused: never sent again, whoever offers them.
  const refused = new Set<string>();
  const usable = (refreshToken: string | undefined) =>
    refreshToken !== undefined && refused.has(refreshToken) ? undefined : refreshToken;

  const refresher: Refresher = {
    stored: async (state) => usable(state ?? (await stored.load())),
    usable,
    async refresh(refreshToken, { signal, dpop }) {
      try {
        const answer = await postForToken(once, refreshEndpoint, {
          ...refreshBody(options, refreshToken),
          signal,
          dpop,
          reading: { dialect, secret: refreshToken, refused: "refresh-token-refused" },
        });
        return refresher.keep(answer, refreshToken);
      } catch (error) {
        if (isRefusal(error)) {
          refused.add(refreshToken);
          stored.save(undefined);
        }
        throw error;
      }
    },
    keep(answer, kept) {
      const { token, expiresIn, serverDate, refreshToken, tokenType } = answer;
      if (refreshToken !== undefined && refreshToken !== kept) stored.save(refreshToken);
      // The endpoint's token_type decides the scheme the token is sent with.
      return { token, expiresIn, serverDate, tokenType, state: refreshToken ?? kept };
    },
    revoke: (context) => revokeRefreshToken(options, context),
    reset: () => stored.forget(),
  };
  return refresher;
}

/** The refresh request's body: OAuth's form (RFC 6749 §6), or JSON for an app's own API. */
function refreshBody({ clientId, scope }: RefreshOptions, refreshToken: string) {
  const fields: Record<string, string> = {
    grant_type: "refresh_token",
    refresh_token: refreshToken,
  };
  if (clientId === undefined) return { json: fields };
  fields.client_id = clientId;
  if (scope !== undefined) fields.scope = scope;
  return { form: new URLSearchParams(fields) };
}

/** Revokes a refresh token (RFC 7009 §2.1), with a proof by the key it was bound to, if any. */
async function revokeRefreshToken(
  { revokeEndpoint, clientId, http }: RefreshOptions,
  { state, signal, dpop }: RevokeContext,
): Promise<void> {
  if (revokeEndpoint === undefined) return;
  // A public client identifies itself with client_id (RFC 6749 §2.3).
  const form = new URLSearchParams({ token: state, token_type_hint: "refresh_token" });
  if (clientId !== undefined) form.set("client_id", clientId);
  // Revoking twice is harmless (RFC 7009 §2.2: an unknown token answers 200): retried as ky does.
  const response = await post(tokenClient(http, "retried"), revokeEndpoint, {
    form,
    signal,
    dpop,
    reading: {
      dialect: clientId === undefined ? "login" : "oauth",
      secret: state,
      endpoint: "revocation endpoint",
    },
  });
  await response.body?.cancel().catch(() => {});
}

/** The app's refresh token store, if any: read once, written on rotation, and never trusted. */
function storedRefreshTokens(grant: string, store: RefreshTokenStore | undefined) {
  let loaded = store === undefined;
  const failed = (operation: string) => (error: unknown) => {
    // The store's own error might quote what it was given: only its name is reported.
    const name = error instanceof Error ? error.name : typeof error;
    reportError(new Error(`${grant}: the refresh token store's ${operation} failed (${name})`));
  };
  const save = (refreshToken: string | undefined) => {
    if (store === undefined) return;
    try {
      Promise.resolve(store.save(refreshToken)).catch(failed("save"));
    } catch (error) {
      failed("save")(error);
    }
  };
  return {
    save,
    /** The stored refresh token, the first time only (later ones travel as the grant's state). */
    async load(): Promise<string | undefined> {
      if (loaded) return undefined;
      loaded = true;
      try {
        const value = await store?.load();
        return typeof value === "string" && value !== "" ? value : undefined;
      } catch (error) {
        failed("load")(error);
        return undefined;
      }
    },
    /** Sign-out: nothing is loaded any more, and the store forgets. */
    forget() {
      loaded = true;
      save(undefined);
    },
  };
}

/** Checks the refresh options a grant was given, naming the option in a TypeError. */
export function checkRefreshOptions(
  grant: string,
  options: { revokeEndpoint?: unknown; store?: unknown },
): void {
  const { revokeEndpoint } = options;
  const store = options.store as Partial<RefreshTokenStore> | undefined;
  if (
    revokeEndpoint !== undefined &&
    !(typeof revokeEndpoint === "string" && revokeEndpoint !== "") &&
    !(revokeEndpoint instanceof URL)
  ) {
    throw new TypeError(`${grant}: revokeEndpoint must be a non-empty string or a URL`);
  }
  if (
    store !== undefined &&
    (typeof store?.load !== "function" || typeof store.save !== "function")
  ) {
    throw new TypeError(`${grant}: store must be { load(), save(refreshToken) }`);
  }
}

/**
 * Checks `clientId` and `scope`, naming the option in a TypeError. `required`: the grant speaks
 * OAuth only (refreshTokenGrant); otherwise `clientId` switches OAuth on and `scope` needs it.
 */
export function checkClientOptions(
  grant: string,
  options: { clientId?: unknown; scope?: unknown },
  rules: { clientId: "required" | "optional" },
): void {
  const { clientId, scope } = options;
  if (clientId === undefined && rules.clientId === "required") {
    throw new TypeError(
      `${grant}: clientId is required: the client_id your authorization server registered for this app (RFC 6749 §2.2)`,
    );
  }
  if (clientId !== undefined && !(typeof clientId === "string" && clientId !== "")) {
    throw new TypeError(`${grant}: clientId must be a non-empty string (the OAuth client_id)`);
  }
  if (scope === undefined) return;
  if (
    typeof scope !== "string" ||
    !/^[\x21\x23-\x5b\x5d-\x7e]+( [\x21\x23-\x5b\x5d-\x7e]+)*$/.test(scope)
  ) {
    throw new TypeError(
      `${grant}: scope must be a non-empty string of space-separated scope tokens (RFC 6749 §3.3)`,
    );
  }
  if (clientId === undefined) {
    throw new TypeError(
      `${grant}: scope is an OAuth parameter and needs clientId; without clientId the grant talks to your own JSON login API`,
    );
  }
}
