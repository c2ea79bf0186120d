import { isNetworkError, isTimeoutError, type KyInstance } from "ky";
import {
  AuthorizationResponseError,
  type CustomFetchOptions,
  OperationProcessingError,
  ResponseBodyError,
  UnsupportedOperationError,
} from "oauth4webapi";
import type { DpopSigner } from "../../core/grant.js";
import {
  type SessionEndReason,
  TokenFetchCode,
  TokenFetchError,
} from "../../core/token-fetch-error.js";
import { capBody, MAX_TOKEN_RESPONSE_BYTES } from "../body.js";
import { excerpt } from "../redact.js";

/** What oauth4webapi calls instead of `fetch` (its `customFetch` option). */
export type OAuthFetch = (
  url: string,
  options: CustomFetchOptions<"GET" | "POST", URLSearchParams | undefined>,
) => Promise<Response>;

/**
 * oauth4webapi's `fetch`, made of the library's ky client (`tokenClient`): no redirect is followed
 * (one is refused here, before oauth4webapi reads it), an error answer's body is cut to a few KiB
 * and a token answer refused over 64 KiB, and each request is bounded by ky's timeout. With
 * `dpop`, a POST carries a proof of the source's key and is sent once more when the server asks
 * for a nonce (`use_dpop_nonce`: refused before anything was used); the nonce is kept.
 */
export function oauthFetch(client: KyInstance, dpop: DpopSigner | undefined): OAuthFetch {
  return async (url, { method, body, headers, signal }) => {
    for (let challenged = false; ; challenged = true) {
      const sent = { ...headers };
      if (dpop !== undefined && method === "POST") sent.dpop = await dpop.proof(method, url);
      const response = await client(url, {
        method,
        ...(body !== undefined && { body }),
        headers: sent,
        throwHttpErrors: false,
        ...(signal instanceof AbortSignal && { signal }),
      });
      if (response.status === 0 || (response.status >= 300 && response.status < 400)) {
        throw new TokenFetchError(
          "the provider answered with a redirect, which is not followed so credentials never leave its origin",
          { code: TokenFetchCode.Internal, status: response.status },
        );
      }
      const nonce = response.headers.get("dpop-nonce");
      if (dpop !== undefined && nonce !== null) {
        dpop.nonce(url, nonce);
        if (!challenged && response.status === 400 && (await isNonceChallenge(response))) continue;
      }
      return response.ok ? capBody(response, tooLarge) : response;
    }
  };
}

async function isNonceChallenge(response: Response): Promise<boolean> {
  try {
    const body = (await response.clone().json()) as { error?: unknown };
    return body?.error === "use_dpop_nonce";
  } catch {
    return false;
  }
}

const tooLarge = (status: number) =>
  new TokenFetchError(`the token response is larger than ${MAX_TOKEN_RESPONSE_BYTES} bytes`, {
    code: TokenFetchCode.Internal,
    status,
  });

/** What a failure is about, for its message and for what ends the session. */
export interface FailureContext {
  /** "token endpoint", "revocation endpoint", "discovery". */
  endpoint: string;
  /** Redacted from any excerpt: the code, verifier or refresh token sent. */
  secrets: readonly string[];
  /** The session-end reason of an `invalid_grant` answer; none: it is only Unauthenticated. */
  refused?: SessionEndReason | undefined;
}

/**
 * A TokenFetchError for what oauth4webapi or ky threw. Only OAuth's `invalid_grant` is a refusal
 * (Unauthenticated: the code or refresh token is spent or bad); other OAuth errors are Internal (a
 * misconfigured client); 5xx, 429, timeouts and network errors are Unavailable. Nothing of the
 * request is kept, and an excerpt of the answer has the secrets redacted.
 */
export function toTokenFetchError(error: unknown, context: FailureContext): unknown {
  if (error instanceof TokenFetchError) return error;
  const redact = (text: string | undefined) =>
    context.secrets.reduce<string | undefined>((out, secret) => excerpt(out, secret), text);
  if (error instanceof ResponseBodyError) {
    const { status, error: code } = error;
    const said = /^[\x20\x21\x23-\x5b\x5d-\x7e]{1,40}$/.test(code) ? code : "an error";
    const refused = code === "invalid_grant";
    const unavailable = status >= 500 || status === 429 || code === "temporarily_unavailable";
    return new TokenFetchError(
      `the ${context.endpoint} answered ${status} (${redact(said) ?? "an error"})`,
      {
        code: refused
          ? TokenFetchCode.Unauthenticated
          : unavailable
            ? TokenFetchCode.Unavailable
            : TokenFetchCode.Internal,
        status,
        oauthError: said === "an error" ? undefined : said,
        bodyExcerpt: redact(error.error_description),
        reason: refused ? context.refused : undefined,
      },
    );
  }
  if (isTimeoutError(error)) {
    return new TokenFetchError(`the ${context.endpoint} did not answer in time`, {
      code: TokenFetchCode.Unavailable,
    });
  }
  if (isNetworkError(error)) {
    // ky's own errors hold the request options: keep only the network cause.
    return new TokenFetchError(
      `could not reach the ${context.endpoint} (a network error; in a browser a CORS refusal looks the same)`,
      { code: TokenFetchCode.Unavailable, cause: error.cause },
    );
  }
  if (
    error instanceof OperationProcessingError ||
    error instanceof UnsupportedOperationError ||
    error instanceof AuthorizationResponseError
  ) {
    // oauth4webapi's checks (issuer, nonce, audience, PKCE, token_type): its message says which.
    // Its `cause` may hold the answer, tokens included: only the message is kept.
    return new TokenFetchError(
      `the ${context.endpoint}'s answer failed a check: ${error.message}`,
      {
        code: TokenFetchCode.Internal,
      },
    );
  }
  if (error instanceof TypeError && /fetch|network/i.test(error.message)) {
    return new TokenFetchError(`could not reach the ${context.endpoint}`, {
      code: TokenFetchCode.Unavailable,
      cause: error,
    });
  }
  return error;
}
