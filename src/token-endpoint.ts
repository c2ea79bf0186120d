import ky, { isHTTPError, isNetworkError, isTimeoutError, type KyInstance } from "ky";
import { codeForStatus, TokenFetchCode, TokenFetchError } from "./token-fetch-error.js";

/** Username and password sent to the token endpoint as JSON. */
export interface Credentials {
  username: string;
  password: string;
}

/** What one fetch produced, before the source works out the expiry. */
export interface FetchedToken {
  token: string;
  /** The lifetime the endpoint announced (`expires_in`), in milliseconds. */
  expiresInMs?: number | undefined;
  /** The endpoint's clock (`Date` header) when it answered, where readable. */
  serverNowMs?: number | undefined;
}

/** The most a token answer may weigh: a token has no business being megabytes. */
export const MAX_TOKEN_RESPONSE_BYTES = 64 * 1024;

const EXCERPT_LENGTH = 120;
/** How much of an error answer is read: enough for the excerpt, nothing like megabytes. */
const ERROR_BODY_BYTES = 4 * 1024;
/** How long an error answer's body may take to arrive: what came by then is the excerpt. */
const ERROR_BODY_WAIT_MS = 1_000;

interface EndpointFetcherOptions {
  endpoint: string | URL;
  credentials: Credentials | (() => Credentials | Promise<Credentials>);
  http: KyInstance | undefined;
  timeoutMs: number;
}

/**
 * Creates the fetch for the username/password grant: POST JSON
 * `{"username","password"}`, answer `{"token"}` or `{"access_token","expires_in"}`.
 */
export function createEndpointFetcher(
  options: EndpointFetcherOptions,
): (signal: AbortSignal) => Promise<FetchedToken> {
  const { endpoint, credentials, timeoutMs } = options;
  // Never follow a redirect with the password in the body; it may lead to another origin.
  const client = (options.http ?? ky.create(defaultKyOptions(timeoutMs))).extend({
    redirect: "manual",
    // ky reads an error answer for HTTPError.data (up to 10 MiB): hand it a few KiB only.
    hooks: {
      afterResponse: [
        // Status 0 (an opaque redirect) cannot be rebuilt, and has no body anyway.
        ({ response }) => (response.ok || response.status < 200 ? undefined : capBody(response)),
      ],
    },
  });

  return async (signal) => {
    const { username, password } = await resolveCredentials(credentials);
    let response: Response;
    try {
      response = await client.post(endpoint, {
        json: { username, password },
        headers: { accept: "application/json" },
        signal,
      });
    } catch (error) {
      throw await fromKyError(error, password);
    }
    let text: string;
    try {
      text = await capBody(response, tooLarge).text();
    } catch (error) {
      if (error instanceof TokenFetchError || signal.aborted) throw error;
      throw new TokenFetchError("the connection failed while reading the token response", {
        code: TokenFetchCode.Unavailable,
        status: response.status,
        cause: error,
      });
    }
    return { ...parseTokenBody(text, response.status), serverNowMs: serverTime(response) };
  };
}

function defaultKyOptions(timeoutMs: number) {
  const maxRetryAfterMs = Math.min(timeoutMs / 2, 5_000);
  return {
    timeout: timeoutMs,
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

async function resolveCredentials(
  credentials: EndpointFetcherOptions["credentials"],
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
  const { username, password } = (value ?? {}) as Partial<Credentials>;
  if (typeof username !== "string" || typeof password !== "string") {
    throw new TokenFetchError("credentials must be { username: string, password: string }", {
      code: TokenFetchCode.Unauthenticated,
    });
  }
  return { username, password };
}

async function fromKyError(error: unknown, password: string): Promise<unknown> {
  if (isHTTPError(error)) {
    const { status, statusText } = error.response;
    const redirected = status === 0 || (status >= 300 && status < 400);
    const message = redirected
      ? "the token endpoint answered with a redirect, which is not followed so credentials never leave its origin"
      : `the token endpoint answered ${status}${statusText ? ` ${statusText}` : ""}`;
    return new TokenFetchError(message, {
      code: codeForStatus(status),
      status,
      bodyExcerpt: excerpt(error.data, password),
    });
  }
  if (isTimeoutError(error)) {
    return new TokenFetchError("the token endpoint did not answer in time", {
      code: TokenFetchCode.Unavailable,
    });
  }
  if (isNetworkError(error)) {
    // ky's own errors hold the request options, password included: keep only the network cause.
    return new TokenFetchError("could not reach the token endpoint", {
      code: TokenFetchCode.Unavailable,
      cause: error.cause,
    });
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

function parseTokenBody(text: string, status: number): FetchedToken {
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
  const expiresIn = record.expires_in;
  if (expiresIn === undefined || expiresIn === null) return { token };
  if (typeof expiresIn !== "number" || !Number.isFinite(expiresIn)) {
    throw invalid('has an "expires_in" that is not a number of seconds');
  }
  return { token, expiresInMs: expiresIn * 1000 };
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

function excerpt(data: unknown, password: string): string | undefined {
  if (data === undefined || data === null || data === "") return undefined;
  let text = typeof data === "string" ? data : JSON.stringify(data);
  if (password !== "") text = text.replace(passwordPattern(password), "[redacted]");
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
 * Matches the password as sent, and as an echo may spell it inside a JSON
 * string, whatever the encoder: any character as \\uXXXX (Go escapes <>&,
 * Python everything non-ASCII, in either case of hex), or a short escape (\\/).
 */
function passwordPattern(password: string): RegExp {
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
