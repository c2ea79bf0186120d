import ky, { isHTTPError, type KyInstance } from "ky";
import type { DpopSigner, GrantedToken } from "../core/grant.js";
import { TokenFetchCode, TokenFetchError } from "../core/token-fetch-error.js";
import { capBody, MAX_TOKEN_RESPONSE_BYTES, readTokenText } from "./body.js";
import {
  type FailureReading,
  fromKyError,
  isNonceChallenge,
  isProofRefusal,
} from "./token-errors.js";

/** What a token endpoint answered, read and checked. */
export interface TokenAnswer extends GrantedToken {
  /** OAuth `refresh_token`, when the endpoint issued one. */
  refreshToken?: string | undefined;
  /** OAuth `token_type` (`"Bearer"`, `"DPoP"`), when given. */
  tokenType?: string | undefined;
}

/** The longest a single request may take; the source's signal bounds the whole fetch. */
const REQUEST_TIMEOUT_MS = 10_000;

/**
 * The ky client for a token endpoint: the app's `http` or ours, never following a redirect, and
 * reading a few KiB of an error answer at most. `retry: false` for requests that must go at most
 * once (a rotating refresh token is spent by the first request that reaches the server).
 */
/**
 * How a request may be retried: a sign-in or a revocation is harmless to repeat (`"retried"`, as
 * ky does); a refresh that reached the server may have rotated the token, so it goes `"once"`.
 */
export type Retries = "retried" | "once";

export function tokenClient(http: KyInstance | undefined, retries: Retries): KyInstance {
  const base = http ?? ky.create(defaultKyOptions());
  // Never follow a redirect with a secret in the body; it may lead to another origin.
  return base.extend({
    redirect: "manual",
    ...(retries === "once" && { retry: 0 }),
    // ky reads an error answer for HTTPError.data (up to 10 MiB): hand it a few KiB only.
    hooks: {
      afterResponse: [
        // Status 0 (an opaque redirect) cannot be rebuilt, and has no body anyway.
        ({ response }) => (response.ok || response.status < 200 ? undefined : capBody(response)),
      ],
    },
  });
}

/** How a token request went out: its body, and what to redact and blame when it fails. */
export interface TokenRequest {
  /** A JSON body: an app's own login API. */
  json?: Record<string, string> | undefined;
  /** A form body (`application/x-www-form-urlencoded`): OAuth (RFC 6749 Appendix B, RFC 7009). */
  form?: URLSearchParams | undefined;
  signal: AbortSignal;
  /** How an error answer is read, what it must never quote, and what a refusal ends. */
  reading: FailureReading;
  /** A DPoP source's signer: each request carries a fresh `DPoP` proof. */
  dpop?: DpopSigner | undefined;
}

/** POSTs to a token endpoint and reads the answer as a token. */
export async function postForToken(
  client: KyInstance,
  endpoint: string | URL,
  request: TokenRequest,
): Promise<TokenAnswer> {
  const response = await post(client, endpoint, request);
  // The endpoint's clock dates the next proofs (a page whose clock is off).
  request.dpop?.serverDate(response.url || String(endpoint), response.headers.get("date"));
  const nonce = response.headers.get("dpop-nonce");
  if (nonce !== null && request.dpop !== undefined)
    request.dpop.nonce(response.url || String(endpoint), nonce);
  let text: string;
  try {
    text = await readTokenText(response, () => tooLarge(response.status));
  } catch (error) {
    if (error instanceof TokenFetchError || request.signal.aborted) throw error;
    throw new TokenFetchError("the connection failed while reading the token response", {
      code: TokenFetchCode.Unavailable,
      status: response.status,
      cause: error,
    });
  }
  return { ...parseTokenBody(text, response.status), serverDate: serverTime(response) };
}

/** POSTs a token request; failures become TokenFetchErrors that hold no secret. */
export async function post(
  client: KyInstance,
  endpoint: string | URL,
  { json, form, signal, reading, dpop }: TokenRequest,
): Promise<Response> {
  // Every request (a ky retry included) proves the key afresh: a proof is good for one request.
  const prove = async ({ request }: { request: Request }) => {
    request.headers.set("DPoP", await (dpop as DpopSigner).proof("POST", request.url));
  };
  const body =
    json === undefined
      ? { body: form as URLSearchParams, headers: { accept: "application/json", ...FORM } }
      : { json, headers: { accept: "application/json" } };
  for (let challenged = false; ; challenged = true) {
    try {
      return await client.post(endpoint, {
        ...body,
        signal,
        ...(dpop && { hooks: { beforeRequest: [prove], beforeRetry: [prove] } }),
      });
    } catch (error) {
      // A nonce challenge (use_dpop_nonce) is refused before anything was used: one more try.
      // Any other answer is final: a refresh is never resent. A second challenge is no refusal
      // (it blames the proof, not the grant); its nonce is kept for the next fetch.
      const nonce = isHTTPError(error) ? error.response.headers.get("dpop-nonce") : null;
      if (dpop !== undefined && nonce !== null && isNonceChallenge(error)) {
        dpop.nonce(error.request.url, nonce);
        if (!challenged) continue;
      }
      // A proof refused while dated on a clock far off the endpoint's: one more, on its clock.
      if (dpop !== undefined && isHTTPError(error) && isProofRefusal(error) && !challenged) {
        if (dpop.serverDate(error.request.url, error.response.headers.get("date"))) continue;
      }
      throw await fromKyError(error, reading);
    }
  }
}

/** OAuth's content type (RFC 6749 Appendix B), without a charset parameter: UTF-8 is implied. */
const FORM = { "content-type": "application/x-www-form-urlencoded" };

/** A relative URL where nothing can resolve it (Node without `http`): a TypeError now, not later. */
export function checkEndpoint(
  grant: string,
  option: string,
  endpoint: unknown,
  http: unknown,
): void {
  if (!(typeof endpoint === "string" && endpoint !== "") && !(endpoint instanceof URL)) {
    throw new TypeError(`${grant}: ${option} must be a non-empty string or a URL`);
  }
  if (http !== undefined && typeof http !== "function") {
    throw new TypeError(`${grant}: http must be a ky instance`);
  }
  const relative = typeof endpoint === "string" && !/^[a-z][a-z\d+.-]*:/i.test(endpoint);
  if (relative && http === undefined && typeof location === "undefined") {
    throw new TypeError(
      `${grant}: ${option} "${endpoint}" is relative and there is no page URL to resolve it against here: give an absolute URL, or an http ky instance with a baseUrl`,
    );
  }
}

function defaultKyOptions() {
  const maxRetryAfterMs = REQUEST_TIMEOUT_MS / 2;
  return {
    timeout: REQUEST_TIMEOUT_MS,
    retry: {
      limit: 2,
      // Asking for a token twice is harmless; ky leaves POST out by default.
      methods: ["post"],
      backoffLimit: 2_000,
      jitter: true,
      // A server that asks us to wait longer than the budget allows gets its answer now.
      shouldRetry: ({ error }: { error: Error }) =>
        isHTTPError(error) && retryAfterMs(error.response) > maxRetryAfterMs ? false : undefined,
    },
  };
}

const tooLarge = (status: number) =>
  new TokenFetchError(`the token response is larger than ${MAX_TOKEN_RESPONSE_BYTES} bytes`, {
    code: TokenFetchCode.Internal,
    status,
  });

function parseTokenBody(text: string, status: number): TokenAnswer {
  const invalid = (why: string) =>
    new TokenFetchError(`the token response ${why}`, { code: TokenFetchCode.Internal, status });
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw invalid("is not JSON");
  }
  if (typeof body !== "object" || body === null) throw invalid("is not a JSON object");
  const record = body as Record<string, unknown>;
  const token = record.token ?? record.access_token;
  if (typeof token !== "string" || token === "") {
    throw invalid('has no non-empty string "token" or "access_token"');
  }
  const { refresh_token: refreshToken, token_type: tokenType } = record;
  const answer: TokenAnswer = { token };
  if (typeof refreshToken === "string" && refreshToken !== "") answer.refreshToken = refreshToken;
  if (typeof tokenType === "string") answer.tokenType = tokenType;
  const expiresIn = record.expires_in;
  if (expiresIn === undefined || expiresIn === null) return answer;
  if (typeof expiresIn !== "number" || !Number.isFinite(expiresIn)) {
    throw invalid('has an "expires_in" that is not a number of seconds');
  }
  answer.expiresIn = expiresIn;
  return answer;
}

function serverTime(response: Response): number | undefined {
  const date = response.headers.get("date");
  if (date === null) return undefined;
  const ms = Date.parse(date);
  return Number.isNaN(ms) ? undefined : ms;
}

function retryAfterMs(response: Response): number {
  const header = response.headers.get("retry-after");
  if (header === null) return 0;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return seconds * 1000;
  const date = Date.parse(header);
  return Number.isNaN(date) ? 0 : date - Date.now();
}
