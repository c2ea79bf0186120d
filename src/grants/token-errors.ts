import { type HTTPError, isHTTPError, isNetworkError, isTimeoutError } from "ky";
import {
  codeForStatus,
  type SessionEndReason,
  TokenFetchCode,
  TokenFetchError,
  type TokenFetchErrorCode,
} from "../core/token-fetch-error.js";
import { excerpt } from "./redact.js";

/**
 * Who answered, which decides how an error answer is read:
 *
 * - `"oauth"`: an authorization server (RFC 6749). Only its `error` code decides: `invalid_grant`
 *   refuses the grant; every other code, and a 400/401/403 without one, is a fault of the
 *   request, the client or the proof, which new credentials would not fix.
 * - `"login"`: an app's own JSON login API. A known OAuth code is read as above; without one, a
 *   400, 401 or 403 means the username and password were refused.
 */
export type Dialect = "oauth" | "login";

/** How to read a failed request: what it was, and what must never be kept of it. */
export interface FailureReading {
  dialect: Dialect;
  /** Redacted from everything kept of the answer: the password or refresh token sent. */
  secret: string;
  /** The session end a refusal means; none where a refusal ends nothing (a revocation). */
  refused?: SessionEndReason | undefined;
  /** What answered, for the message. Default `"token endpoint"`. */
  endpoint?: string | undefined;
}

/**
 * OAuth error codes that blame the request, the client, the scope or the proof (RFC 6749 §5.2,
 * RFC 7009 §2.2.1, RFC 8707 §2, RFC 9449 §5), never the password or refresh token: a refusal
 * recorded for them would lock out a grant that is still good.
 */
const NOT_REFUSALS: ReadonlySet<string> = new Set([
  "invalid_request",
  "invalid_client",
  "unauthorized_client",
  "unsupported_grant_type",
  "invalid_scope",
  "invalid_target",
  "unsupported_token_type",
  "invalid_dpop_proof",
  "use_dpop_nonce",
]);

/** The code for an error answer with `status` and OAuth `error` code `oauthError`. */
export function codeForAnswer(
  status: number,
  oauthError: string | undefined,
  dialect: Dialect,
): TokenFetchErrorCode {
  if (status === 408 || status === 429 || status >= 500) return TokenFetchCode.Unavailable;
  // Redirects (refused on purpose) and other non-errors that still failed.
  if (status < 400) return TokenFetchCode.Internal;
  if (oauthError === "invalid_grant") return TokenFetchCode.Unauthenticated;
  if (dialect === "oauth" || (oauthError !== undefined && NOT_REFUSALS.has(oauthError))) {
    return TokenFetchCode.Internal;
  }
  return codeForStatus(status);
}

/** RFC 6749's characters for `error` and `error_description`: printable ASCII but `"` and `\`. */
const OAUTH_CHARS = /^[\x20\x21\x23-\x5b\x5d-\x7e]+$/;

/** The parsed JSON object of an error answer, when it is one (ky parses JSON content types). */
function objectOf(data: unknown): Record<string, unknown> | undefined {
  let value = data;
  if (typeof value === "string" && value.trimStart().startsWith("{")) {
    try {
      value = JSON.parse(value);
    } catch {
      return undefined;
    }
  }
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

/** OAuth's `error` code of an error answer (RFC 6749 §5.2), when it is one. */
export function oauthErrorOf(data: unknown): string | undefined {
  const code = objectOf(data)?.error;
  return typeof code === "string" && code.length <= 64 && OAUTH_CHARS.test(code) ? code : undefined;
}

/** `error_description`, cut to what an excerpt may hold, the secret redacted. */
function descriptionOf(data: unknown, secret: string): string | undefined {
  const description = objectOf(data)?.error_description;
  if (typeof description !== "string") return undefined;
  // Anything outside RFC 6749's characters is not a description; it is dropped, not quoted.
  return excerpt(description.replace(/[^\x20\x21\x23-\x5b\x5d-\x7e]/g, " "), secret);
}

/** A DPoP nonce challenge: 400 (token endpoint) or 401 with OAuth error `use_dpop_nonce`. */
export function isNonceChallenge(error: unknown): error is HTTPError {
  if (!isHTTPError(error)) return false;
  const { status, headers } = error.response;
  return (
    (status === 400 && oauthErrorOf(error.data) === "use_dpop_nonce") ||
    (status === 401 && /use_dpop_nonce/.test(headers.get("www-authenticate") ?? ""))
  );
}

/** An answer refusing the DPoP proof itself (RFC 9449 §5: `invalid_dpop_proof`). */
export function isProofRefusal(error: unknown): error is HTTPError {
  return (
    isHTTPError(error) &&
    error.response.status === 400 &&
    oauthErrorOf(error.data) === "invalid_dpop_proof"
  );
}

/** A ky failure as a TokenFetchError that holds no secret; anything else as it is. */
export async function fromKyError(error: unknown, reading: FailureReading): Promise<unknown> {
  const { dialect, secret, refused } = reading;
  const endpoint = reading.endpoint ?? "token endpoint";
  if (isHTTPError(error)) {
    const { status, statusText } = error.response;
    const redirected = status === 0 || (status >= 300 && status < 400);
    const oauthError = oauthErrorOf(error.data);
    const description = oauthError === undefined ? undefined : descriptionOf(error.data, secret);
    // Only what a status line may hold, redacted like the excerpt.
    const line = /^[\x20-\x7e]{1,60}$/.test(statusText) ? excerpt(statusText, secret) : undefined;
    const said =
      oauthError === undefined ? "" : `: ${oauthError}${description ? ` (${description})` : ""}`;
    const message = redirected
      ? `the ${endpoint} answered with a redirect, which is not followed so credentials never leave its origin`
      : `the ${endpoint} answered ${status}${line ? ` ${line}` : ""}${said}`;
    const code = codeForAnswer(status, oauthError, dialect);
    return new TokenFetchError(message, {
      code,
      status,
      oauthError,
      bodyExcerpt: excerpt(error.data, secret),
      reason: code === TokenFetchCode.Unauthenticated ? refused : undefined,
    });
  }
  if (isTimeoutError(error)) {
    return new TokenFetchError(`the ${endpoint} did not answer in time`, {
      code: TokenFetchCode.Unavailable,
    });
  }
  if (isNetworkError(error)) {
    // ky's own errors hold the request options, password included: keep only the network cause.
    return new TokenFetchError(
      `could not reach the ${endpoint} (a network error; in a browser a CORS refusal looks the same)`,
      { code: TokenFetchCode.Unavailable, cause: error.cause },
    );
  }
  return error;
}
