import type { KyInstance } from "ky";
import type { GrantContext, GrantedToken } from "../core/grant.js";
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
  revoke(context: { state: string; signal: AbortSignal }): Promise<void>;
  /** Sign-out: nothing is kept, in memory or in the store. */
  reset(): void;
}

/** Is this failure the endpoint refusing what was sent (400, 401, 403)? */
export function isRefusal(error: unknown): error is TokenFetchError {
  return error instanceof TokenFetchError && error.code === TokenFetchCode.Unauthenticated;
}

export function createRefresher(grant: string, options: RefreshOptions): Refresher {
  const { refreshEndpoint, revokeEndpoint, store } = options;
  // A refresh that reached the server may have rotated the token even if its answer was lost:
  // sending it again would be reuse, which revokes the whole family. So never retried.
  const once = tokenClient(options.http, false);
  let loaded = store === undefined;
  // Refresh tokens the endpoint refused: never sent again, whoever offers them.
  const refused = new Set<string>();

  const storeFailed = (operation: string) => (error: unknown) => {
    // The store's own error might quote what it was given: only its name is reported.
    const name = error instanceof Error ? error.name : typeof error;
    reportError(new Error(`${grant}: the refresh token store's ${operation} failed (${name})`));
  };
  const save = (refreshToken: string | undefined) => {
    if (store === undefined) return;
    try {
      Promise.resolve(store.save(refreshToken)).catch(storeFailed("save"));
    } catch (error) {
      storeFailed("save")(error);
    }
  };

  const usable = (refreshToken: string | undefined) =>
    refreshToken !== undefined && refused.has(refreshToken) ? undefined : refreshToken;

  const refresher: Refresher = {
    async stored(state) {
      if (state !== undefined || loaded) return usable(state);
      loaded = true;
      try {
        const value = await store?.load();
        return typeof value === "string" && value !== "" ? usable(value) : undefined;
      } catch (error) {
        storeFailed("load")(error);
        return undefined;
      }
    },
    usable,
    async refresh(refreshToken, { signal, dpop }) {
      try {
        const answer = await postForToken(once, refreshEndpoint, {
          json: { grant_type: "refresh_token", refresh_token: refreshToken },
          signal,
          dpop,
          secret: refreshToken,
          refused: "refresh-token-refused",
        });
        return refresher.keep(answer, refreshToken);
      } catch (error) {
        if (isRefusal(error)) {
          refused.add(refreshToken);
          save(undefined);
        }
        throw error;
      }
    },
    keep(answer, kept) {
      const { token, expiresIn, serverDate, refreshToken } = answer;
      if (refreshToken !== undefined && refreshToken !== kept) save(refreshToken);
      return { token, expiresIn, serverDate, state: refreshToken ?? kept };
    },
    async revoke({ state, signal }) {
      if (revokeEndpoint === undefined) return;
      await post(once, revokeEndpoint, {
        form: new URLSearchParams({ token: state, token_type_hint: "refresh_token" }),
        signal,
        secret: state,
        refused: "refresh-token-refused",
      });
    },
    reset() {
      loaded = true;
      save(undefined);
    },
  };
  return refresher;
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
