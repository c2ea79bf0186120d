import type { SharedToken } from "../core/tab-sharing.js";
import {
  type SessionEndReason,
  TokenFetchCode,
  type TokenFetchError,
  type TokenFetchErrorCode,
} from "../core/token-fetch-error.js";

/** What tabs tell each other over the channel (version 2: tokens carry the grant's state). */
export type Message =
  | {
      v: 2;
      type: "token";
      token: string;
      expiresAt: number | null;
      state: string | null;
      bound: boolean | null;
    }
  | { v: 2; type: "rejected"; token: string }
  | { v: 2; type: "cleared"; token: string | null }
  | { v: 2; type: "query" }
  | { v: 2; type: "value-query"; name: string }
  | { v: 2; type: "value"; name: string; value: unknown }
  | {
      v: 2;
      type: "failed";
      code: TokenFetchErrorCode;
      status: number | null;
      message: string;
      reason: SessionEndReason | null;
      until: number | null;
    };

const REASONS: readonly SessionEndReason[] = [
  "credentials-refused",
  "token-refused",
  "refresh-token-refused",
  "sign-in-required",
];

export function tokenMessage(shared: SharedToken): Message {
  return {
    v: 2,
    type: "token",
    token: shared.token,
    expiresAt: shared.expiresAt ?? null,
    state: shared.state ?? null,
    bound: shared.bound ?? null,
  };
}

/** A failure as tabs share it: code, status, message and reason; never its cause or excerpt. */
export function failedMessage(
  { code, status, message, reason }: TokenFetchError,
  until: number | undefined,
): Message {
  return {
    v: 2,
    type: "failed",
    code,
    status: status ?? null,
    message,
    reason: reason ?? null,
    until: until ?? null,
  };
}

const isNumber = (value: unknown): value is number =>
  typeof value === "number" && Number.isFinite(value);
const orNull = <T>(value: unknown, check: (value: unknown) => value is T): T | null | undefined =>
  value === null || value === undefined ? null : check(value) ? value : undefined;
const isString = (value: unknown): value is string => typeof value === "string";
const isBoolean = (value: unknown): value is boolean => typeof value === "boolean";

/** Accepts only well-formed messages of this version: anything else on the channel is ignored. */
export function parse(data: unknown): Message | undefined {
  if (typeof data !== "object" || data === null) return undefined;
  const message = data as Record<string, unknown>;
  if (message.v !== 2) return undefined;
  const { type, token } = message;
  switch (type) {
    case "token": {
      const expiresAt = orNull(message.expiresAt, isNumber);
      const state = orNull(message.state, isString);
      const bound = orNull(message.bound, isBoolean);
      if (
        !isString(token) ||
        token === "" ||
        expiresAt === undefined ||
        state === undefined ||
        bound === undefined
      ) {
        return undefined;
      }
      return { v: 2, type, token, expiresAt, state, bound };
    }
    case "rejected":
      return isString(token) ? { v: 2, type, token } : undefined;
    case "cleared": {
      const dropped = orNull(token, isString);
      return dropped === undefined ? undefined : { v: 2, type, token: dropped };
    }
    case "query":
      return { v: 2, type };
    case "value-query":
    case "value": {
      const { name } = message;
      if (!isString(name)) return undefined;
      return type === "value-query"
        ? { v: 2, type, name }
        : { v: 2, type, name, value: message.value };
    }
    case "failed":
      return parseFailure(message);
    default:
      return undefined;
  }
}

function parseFailure(message: Record<string, unknown>): Message | undefined {
  // Canceled is never sent; a cut message keeps a stray essay off the callers' errors.
  const { code, message: text } = message;
  const status = orNull(message.status, Number.isInteger as (value: unknown) => value is number);
  const until = orNull(message.until, isNumber);
  const reason = orNull(message.reason, (value): value is SessionEndReason =>
    REASONS.includes(value as SessionEndReason),
  );
  if (
    (code !== TokenFetchCode.Internal &&
      code !== TokenFetchCode.Unavailable &&
      code !== TokenFetchCode.Unauthenticated) ||
    !isString(text) ||
    status === undefined ||
    until === undefined ||
    reason === undefined
  ) {
    return undefined;
  }
  return { v: 2, type: "failed", code, status, message: text.slice(0, 300), reason, until };
}
