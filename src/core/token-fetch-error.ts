import type { Code } from "@connectrpc/connect";
import { GrpcCode } from "./codes.js";

/**
 * The Connect codes a failed token fetch maps to. They are plain numbers so the
 * token source carries no runtime dependency on `@connectrpc/connect` (grpc-web
 * apps use the same numbers as `RpcError.code`).
 */
export const TokenFetchCode = {
  /** 1: the fetch was abandoned, e.g. by `clear()`. */
  Canceled: GrpcCode.Canceled as Code.Canceled,
  /** 13: the endpoint answered, but not with a usable token. */
  Internal: GrpcCode.Internal as Code.Internal,
  /** 14: the endpoint could not be reached, timed out, or answered 408, 429 or 5xx. */
  Unavailable: GrpcCode.Unavailable as Code.Unavailable,
  /** 16: the endpoint refused the credentials or refresh token (`invalid_grant`; see codeForStatus). */
  Unauthenticated: GrpcCode.Unauthenticated as Code.Unauthenticated,
} as const;

/** One of the codes in {@link TokenFetchCode}. */
export type TokenFetchErrorCode = (typeof TokenFetchCode)[keyof typeof TokenFetchCode];

/** What a {@link TokenFetchError} may be constructed with. */
export interface TokenFetchErrorOptions {
  /** The Connect code this failure maps to at the RPC boundary. */
  code: TokenFetchErrorCode;
  /** The HTTP status of the token endpoint's answer, where there was one. */
  status?: number | undefined;
  /** A short, redacted excerpt of the endpoint's error body, for diagnosis. */
  bodyExcerpt?: string | undefined;
  /** The OAuth `error` code the endpoint answered with (RFC 6749 §5.2), such as `invalid_grant`. */
  oauthError?: string | undefined;
  /** The underlying error. Never an error that holds the request options. */
  cause?: unknown;
  /**
   * Set when this failure ends the session (new tokens will not help until the user signs in
   * again): the source's `session-ended` event carries it.
   */
  reason?: SessionEndReason | undefined;
}

/**
 * Why a session ended: the endpoint refused the credentials, the server refused a token that was
 * just fetched, the endpoint refused the refresh token, or there is nothing to get a token with
 * until the user signs in (`authorizationCodeGrant`: call `signIn()`).
 */
export type SessionEndReason =
  | "credentials-refused"
  | "token-refused"
  | "refresh-token-refused"
  | "sign-in-required";

/**
 * A token could not be obtained. It is the `cause` of the `ConnectError` a call
 * fails with, and the rejection of `TokenSource.getToken()` / `refresh()`.
 *
 * It never holds the token, the password, or a response body beyond a short
 * excerpt with the credentials redacted.
 */
export class TokenFetchError extends Error {
  override name = "TokenFetchError";
  /** The Connect code this failure maps to (16, 14, 13 or 1). */
  readonly code: TokenFetchErrorCode;
  /** The HTTP status of the endpoint's answer, or `undefined` when there was none. */
  readonly status: number | undefined;
  /** Up to 120 characters of the endpoint's error body, credentials redacted. */
  readonly bodyExcerpt: string | undefined;
  /**
   * The OAuth `error` code the endpoint answered with (RFC 6749 §5.2, RFC 7009 §2.2.1, RFC 9449
   * §5), such as `invalid_grant` or `invalid_scope`; `undefined` when it gave none.
   */
  readonly oauthError: string | undefined;
  /**
   * `true` when this is an earlier failure repeated without a request, while the source waits
   * before trying again (see the README's "What your token endpoint sees").
   */
  readonly repeated: boolean;
  /** Why the session ended, when this failure ended it; new tokens will not help. */
  readonly reason: SessionEndReason | undefined;

  constructor(message: string, options: TokenFetchErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = options.code;
    this.status = options.status;
    this.bodyExcerpt = options.bodyExcerpt;
    this.oauthError = options.oauthError;
    this.repeated = false;
    this.reason = options.reason;
  }
}

/** A failure told again from memory, without a request (sets {@link TokenFetchError.repeated}). */
export function repeatedFailure(message: string, options: TokenFetchErrorOptions): TokenFetchError {
  const error = new TokenFetchError(message, options);
  (error as { repeated: boolean }).repeated = true;
  return error;
}

/**
 * The code for an HTTP status the token endpoint answered with, read alone: what an app's own
 * login API means by it (400, 401, 403: wrong password). OAuth endpoints are read by their `error`
 * code instead (`src/grants/token-errors.ts`).
 */
export function codeForStatus(status: number): TokenFetchErrorCode {
  if (status === 400 || status === 401 || status === 403) return TokenFetchCode.Unauthenticated;
  if (status === 408 || status === 429 || status >= 500) return TokenFetchCode.Unavailable;
  // Redirects (refused on purpose), 404 and other client errors are configuration mistakes.
  return TokenFetchCode.Internal;
}
