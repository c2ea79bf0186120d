import { Code, ConnectError } from "@connectrpc/connect";
import { type SessionEndReason, TokenFetchError } from "../../../src/index.js";

/** A call's error as plain JSON: what the demo page shows and the harness hands to Playwright. */
export interface ErrorInfo {
  /** The code's name, e.g. `"Unauthenticated"`. */
  code: string;
  /** The numeric code, e.g. 16 (the same numbers in Connect and grpc-web). */
  codeNumber: number;
  /** The message, without Connect's `[code]` prefix. */
  message: string;
  /** When the token could not be obtained: the facts of the `TokenFetchError` behind the error. */
  tokenFetch?: TokenFetchInfo | undefined;
}

/** The parts of a {@link TokenFetchError} a caller may show; it never holds a token or password. */
export interface TokenFetchInfo {
  message: string;
  /** The token endpoint's HTTP status, where there was one. */
  status?: number | undefined;
  /** A short, redacted excerpt of the endpoint's error body. */
  bodyExcerpt?: string | undefined;
  /** An earlier failure repeated without a request, while the source backs off. */
  repeated?: true | undefined;
  /** Why the session ended, when this failure ended it. */
  reason?: SessionEndReason | undefined;
}

/**
 * Describes an error from any client kind: a `ConnectError` (with a `TokenFetchError` cause when
 * the token could not be obtained), a bare `TokenFetchError`, or a grpc-web `RpcError`-like
 * `{ code: number, message }`.
 */
export function describeError(error: unknown): ErrorInfo {
  if (error instanceof TokenFetchError) {
    return { ...codeOf(error.code), message: error.message, tokenFetch: tokenFetchInfo(error) };
  }
  if (error instanceof ConnectError) {
    const { cause } = error;
    return {
      ...codeOf(error.code),
      message: error.rawMessage,
      ...(cause instanceof TokenFetchError && { tokenFetch: tokenFetchInfo(cause) }),
    };
  }
  if (isCodedError(error)) {
    const { cause } = error as { cause?: unknown };
    return {
      ...codeOf(error.code),
      message: error.message,
      ...(cause instanceof TokenFetchError && { tokenFetch: tokenFetchInfo(cause) }),
    };
  }
  const connectError = ConnectError.from(error);
  return { ...codeOf(connectError.code), message: connectError.rawMessage };
}

/**
 * The message for a log line (shown after the code name): for a token failure, the
 * `TokenFetchError`'s message, its HTTP status unless the message says it, and the endpoint's
 * short, redacted reason.
 */
export function formatError(info: ErrorInfo): string {
  if (info.tokenFetch === undefined) return info.message;
  const { message, status, bodyExcerpt } = info.tokenFetch;
  let line = message;
  if (status !== undefined && !message.includes(String(status))) line += ` (HTTP ${status})`;
  if (bodyExcerpt !== undefined) line += `: "${bodyExcerpt}"`;
  return line;
}

function codeOf(code: number): { code: string; codeNumber: number } {
  return { code: Code[code] ?? `code ${code}`, codeNumber: code };
}

function tokenFetchInfo(error: TokenFetchError): TokenFetchInfo {
  return {
    message: error.message,
    ...(error.status !== undefined && { status: error.status }),
    ...(error.bodyExcerpt !== undefined && { bodyExcerpt: error.bodyExcerpt }),
    ...(error.repeated && { repeated: true }),
    ...(error.reason !== undefined && { reason: error.reason }),
  };
}

function isCodedError(error: unknown): error is { code: number; message: string } {
  if (typeof error !== "object" || error === null) return false;
  const { code, message } = error as { code?: unknown; message?: unknown };
  return typeof code === "number" && Number.isInteger(code) && typeof message === "string";
}
