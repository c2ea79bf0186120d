import ky, { isHTTPError, isNetworkError, isTimeoutError, type KyInstance } from "ky";
import type { DpopSigner, GrantedToken } from "../grant.js";
import {
  codeForStatus,
  type SessionEndReason,
  TokenFetchCode,
  TokenFetchError,
} from "../token-fetch-error.js";

/** What a token endpoint answered, read and checked. */
export interface TokenAnswer extends GrantedToken {
  /** OAuth `refresh_token`, when the endpoint issued one. */
  refreshToken?: string | undefined;
  /** OAuth `token_type` (`"Bearer"`, `"DPoP"`), when given. */
  tokenType?: string | undefined;
}

/** The most a token answer may weigh: a token has no business being megabytes. */
export const MAX_TOKEN_RESPONSE_BYTES = 64 * 1024;

const EXCERPT_LENGTH = 120;
/** How much of an error answer is read: enough for the excerpt, nothing like megabytes. */
const ERROR_BODY_BYTES = 4 * 1024;
/** How long an error answer's body may take to arrive: what came by then is the excerpt. */
const ERROR_BODY_WAIT_MS = 1_000;
/** The longest a single request may take; the source's signal bounds the whole fetch. */
const REQUEST_TIMEOUT_MS = 10_000;

/**
 * The ky client for a token endpoint: the app's `http` or ours, never following a redirect, and
 * reading a few KiB of an error answer at most. `retry: false` for requests that must go at most
 * once (a rotating refresh token is spent by the first request that reaches the server).
 */
export function tokenClient(http: KyInstance | undefined, retry: boolean): KyInstance {
  const base = http ?? ky.create(defaultKyOptions());
  // Never follow a redirect with a secret in the body; it may lead to another origin.
  return base.extend({
    redirect: "manual",
    ...(retry ? {} : { retry: 0 }),
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
  json?: Record<string, string> | undefined;
  form?: URLSearchParams | undefined;
  headers?: Record<string, string> | undefined;
  signal: AbortSignal;
  /** Redacted from any excerpt of the answer: the password or refresh token sent. */
  secret: string;
  /** The session end a refusal (400, 401, 403) means. */
  refused: SessionEndReason;
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
  const nonce = response.headers.get("dpop-nonce");
  if (nonce !== null && request.dpop !== undefined)
    request.dpop.nonce(response.url || String(endpoint), nonce);
  let text: string;
  try {
    text = await capBody(response, tooLarge).text();
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
  { json, form, headers, signal, secret, refused, dpop }: TokenRequest,
): Promise<Response> {
  // Every request (a ky retry included) proves the key afresh: a proof is good for one request.
  const prove = async ({ request }: { request: Request }) => {
    request.headers.set("DPoP", await (dpop as DpopSigner).proof("POST", request.url));
  };
  for (let challenged = false; ; challenged = true) {
    try {
      return await client.post(endpoint, {
        ...(json === undefined ? { body: form as BodyInit } : { json }),
        headers: { accept: "application/json", ...headers },
        signal,
        ...(dpop && { hooks: { beforeRequest: [prove], beforeRetry: [prove] } }),
      });
    } catch (error) {
      // A nonce challenge (400 use_dpop_nonce): refused before anything was used, so one more try.
      const nonce = isHTTPError(error) ? error.response.headers.get("dpop-nonce") : null;
      if (dpop !== undefined && nonce !== null && !challenged && isHTTPError(error)) {
        dpop.nonce(error.request.url, nonce);
        continue;
      }
      throw await fromKyError(error, secret, refused);
    }
  }
}

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

async function fromKyError(
  error: unknown,
  secret: string,
  refused: SessionEndReason,
): Promise<unknown> {
  if (isHTTPError(error)) {
    const { status, statusText } = error.response;
    const redirected = status === 0 || (status >= 300 && status < 400);
    const oauthError = (error.data as { error?: unknown } | undefined)?.error;
    const message = redirected
      ? "the token endpoint answered with a redirect, which is not followed so credentials never leave its origin"
      : `the token endpoint answered ${status}${statusText ? ` ${statusText}` : ""}${typeof oauthError === "string" ? ` (${oauthError.slice(0, 40)})` : ""}`;
    const code = codeForStatus(status);
    return new TokenFetchError(message, {
      code,
      status,
      bodyExcerpt: excerpt(error.data, secret),
      reason: code === TokenFetchCode.Unauthenticated ? refused : undefined,
    });
  }
  if (isTimeoutError(error)) {
    return new TokenFetchError("the token endpoint did not answer in time", {
      code: TokenFetchCode.Unavailable,
    });
  }
  if (isNetworkError(error)) {
    // ky's own errors hold the request options, password included: keep only the network cause.
    return new TokenFetchError(
      "could not reach the token endpoint (a network error; in a browser a CORS refusal looks the same)",
      {
        code: TokenFetchCode.Unavailable,
        cause: error.cause,
      },
    );
  }
  return error;
}

/**
 * The response with a body that stops after a few KiB: an error answer's is cut
 * to ERROR_BODY_BYTES; a token answer longer than MAX_TOKEN_RESPONSE_BYTES fails
 * with `tooLarge`. The rest is never downloaded.
 */
function capBody(response: Response, tooLarge?: (status: number) => Error): Response {
  const source = response.body;
  if (source === null) return response;
  const reader = source.getReader();
  let left = tooLarge === undefined ? ERROR_BODY_BYTES : MAX_TOKEN_RESPONSE_BYTES;
  // The status of an error answer decides the outcome; its excerpt is not worth the whole budget.
  const giveUpAt = tooLarge === undefined ? performance.now() + ERROR_BODY_WAIT_MS : undefined;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = await readBefore(reader, giveUpAt);
      if (next === undefined) {
        reader.cancel().catch(() => {});
        return controller.close();
      }
      const { done, value } = next;
      if (done) return controller.close();
      const over = value.byteLength > left;
      if (over) reader.cancel().catch(() => {});
      if (over && tooLarge !== undefined) return controller.error(tooLarge(response.status));
      controller.enqueue(value.subarray(0, left));
      left -= value.byteLength;
      if (over) controller.close();
    },
    cancel: (reason) => reader.cancel(reason),
  });
  const { status, statusText, headers } = response;
  return new Response(body, { status, statusText, headers });
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

function excerpt(data: unknown, secret: string): string | undefined {
  if (data === undefined || data === null || data === "") return undefined;
  let text = typeof data === "string" ? data : JSON.stringify(data);
  if (secret !== "") text = text.replace(secretPattern(secret), "[redacted]");
  text = text.replace(/\s+/g, " ").trim();
  return text.length > EXCERPT_LENGTH ? `${text.slice(0, EXCERPT_LENGTH)}…` : text;
}

/** JSON's short escapes: how `"`, `\\`, `/` and some controls may appear inside a JSON string. */
const SHORT_ESCAPES: Record<string, string> = {
  '"': '\\"',
  "\\": "\\\\",
  "/": "\\/",
  "\b": "\\b",
  "\f": "\\f",
  "\n": "\\n",
  "\r": "\\r",
  "\t": "\\t",
};

/**
 * Matches the secret (a password, a refresh token) as sent, and as an echo may spell it inside a JSON
 * string, whatever the encoder: any character as \\uXXXX (Go escapes <>&,
 * Python everything non-ASCII, in either case of hex), or a short escape (\\/).
 */
function secretPattern(password: string): RegExp {
  const literal = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const hex = (unit: number) =>
    [...unit.toString(16).padStart(4, "0")]
      .map((digit) => (/[a-f]/.test(digit) ? `[${digit}${digit.toUpperCase()}]` : digit))
      .join("");
  const char = (ch: string) => {
    const units = Array.from({ length: ch.length }, (_, i) => `\\\\u${hex(ch.charCodeAt(i))}`);
    const forms = [literal(ch), units.join("")];
    const short = SHORT_ESCAPES[ch];
    if (short !== undefined) forms.push(literal(short));
    return `(?:${forms.join("|")})`;
  };
  return new RegExp([...password].map(char).join(""), "g");
}

/** The next chunk, or undefined when `deadline` (a performance.now() time) passes first. */
async function readBefore(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  deadline: number | undefined,
): Promise<ReadableStreamReadResult<Uint8Array> | undefined> {
  if (deadline === undefined) return reader.read();
  let stopTimer = () => {};
  const late = new Promise<undefined>((resolve) => {
    const timer = setTimeout(resolve, Math.max(0, deadline - performance.now()));
    stopTimer = () => clearTimeout(timer);
  });
  try {
    return await Promise.race([reader.read(), late]);
  } finally {
    stopTimer();
  }
}
