import {
  type SessionEndReason,
  TokenFetchCode,
  TokenFetchError,
  type TokenFetchErrorCode,
} from "../core/token-fetch-error.js";

/**
 * What tabs tell each other over the channel. Version 3: the grant's state travels only in an
 * `answer` to a `query`, never in the `token` a fetch broadcasts; failures carry no text. A tab
 * ignores every message of another version (an old tab after a deploy, and the new ones, ignore
 * each other instead of misreading), and every field is checked and capped.
 */
export const PROTOCOL = 3;

/** A token as a tab announces it; `epoch` counts the grant states (refresh tokens) the session spent. */
interface TokenFields {
  token: string;
  expiresAt: number | null;
  bound: boolean | null;
  epoch: number;
}

export type Message =
  /** A tab fetched a token: the others take it; a higher `epoch` spends the state they hold. */
  | ({ v: 3; type: "token" } & TokenFields)
  /** A tab waits for the lock and asks for the session; `token`: the one it holds, if any. */
  | { v: 3; type: "query"; id: string; token: string | null }
  /** What a tab holds, for the query `to`: its token (any age), the state, and whether the asker's token was signed out. */
  | {
      v: 3;
      type: "answer";
      to: string;
      token: string | null;
      expiresAt: number | null;
      bound: boolean | null;
      state: string | null;
      epoch: number;
      retired: boolean;
    }
  /**
   * A tab that holds the session's newest state is going away (closed, reloaded, navigated):
   * it hands the state to the tabs that stay, which would otherwise lose the session with it.
   */
  | {
      v: 3;
      type: "handover";
      token: string | null;
      expiresAt: number | null;
      bound: boolean | null;
      state: string;
      epoch: number;
    }
  | { v: 3; type: "rejected"; token: string }
  /** A tab signed out; `revoked`: it revoked the state itself (it held it). */
  | { v: 3; type: "cleared"; token: string | null; revoked: boolean }
  | { v: 3; type: "value-query"; name: string }
  | { v: 3; type: "value"; name: string; value: unknown }
  | {
      v: 3;
      type: "failed";
      code: TokenFetchErrorCode;
      status: number | null;
      reason: SessionEndReason | null;
      until: number | null;
    };

/** The longest token, state or name a message may carry (a JWT with many claims fits). */
export const MAX_TOKEN_CHARS = 16_384;
const MAX_NAME_CHARS = 64;
const MAX_ID_CHARS = 64;

const REASONS: readonly SessionEndReason[] = [
  "credentials-refused",
  "token-refused",
  "refresh-token-refused",
  "sign-in-required",
];

/** A failure as tabs share it: its code, status and reason; never its text, cause or excerpt. */
export function failedMessage(
  { code, status, reason }: TokenFetchError,
  until: number | undefined,
): Message {
  return {
    v: 3,
    type: "failed",
    code,
    status: status ?? null,
    reason: reason ?? null,
    until: until ?? null,
  };
}

/**
 * Another tab's failure, in the library's own words for its code: text from the channel never
 * reaches an app's errors.
 */
export function relayedFailure(message: Extract<Message, { type: "failed" }>): TokenFetchError {
  const { code, status, reason } = message;
  const said =
    code === TokenFetchCode.Unauthenticated
      ? "the token endpoint refused the sign-in"
      : code === TokenFetchCode.Unavailable
        ? "the token endpoint could not be reached or failed"
        : "the token fetch failed";
  return new TokenFetchError(`${said} (fetched by another tab)`, {
    code,
    status: status ?? undefined,
    reason: reason ?? undefined,
  });
}

const isNumber = (value: unknown): value is number =>
  typeof value === "number" && Number.isFinite(value);
const isString =
  (max: number) =>
  (value: unknown): value is string =>
    typeof value === "string" && value !== "" && value.length <= max;
const isToken = isString(MAX_TOKEN_CHARS);
const isBoolean = (value: unknown): value is boolean => typeof value === "boolean";
const isEpoch = (value: unknown): value is number =>
  Number.isSafeInteger(value) && (value as number) >= 0;
const isStatus = (value: unknown): value is number =>
  Number.isInteger(value) && (value as number) >= 100 && (value as number) <= 599;
/** The value, `null` when absent, or `undefined` when it fails its check (the message is dropped). */
const orNull = <T>(value: unknown, check: (value: unknown) => value is T): T | null | undefined =>
  value === null || value === undefined ? null : check(value) ? value : undefined;

/** Accepts only well-formed messages of this version: anything else on the channel is ignored. */
export function parse(data: unknown): Message | undefined {
  if (typeof data !== "object" || data === null) return undefined;
  const message = data as Record<string, unknown>;
  if (message.v !== PROTOCOL) return undefined;
  const { type, token } = message;
  switch (type) {
    case "token": {
      const fields = tokenFields(message);
      return fields === undefined || fields.token === null
        ? undefined
        : { v: 3, type, ...fields, token: fields.token };
    }
    case "answer": {
      const fields = tokenFields(message);
      const state = orNull(message.state, isToken);
      const { to, retired } = message;
      if (fields === undefined || state === undefined || !isString(MAX_ID_CHARS)(to)) {
        return undefined;
      }
      if (!isBoolean(retired)) return undefined;
      return { v: 3, type, to, ...fields, state, retired };
    }
    case "handover": {
      const fields = tokenFields(message);
      const { state } = message;
      if (fields === undefined || !isToken(state)) return undefined;
      return { v: 3, type, ...fields, state };
    }
    case "query": {
      const { id } = message;
      const held = orNull(token, isToken);
      if (!isString(MAX_ID_CHARS)(id) || held === undefined) return undefined;
      return { v: 3, type, id, token: held };
    }
    case "rejected":
      return isToken(token) ? { v: 3, type, token } : undefined;
    case "cleared": {
      const dropped = orNull(token, isToken);
      const { revoked } = message;
      return dropped === undefined || !isBoolean(revoked)
        ? undefined
        : { v: 3, type, token: dropped, revoked };
    }
    case "value-query":
    case "value": {
      const { name } = message;
      if (!isString(MAX_NAME_CHARS)(name)) return undefined;
      return type === "value-query"
        ? { v: 3, type, name }
        : { v: 3, type, name, value: message.value };
    }
    case "failed":
      return parseFailure(message);
    default:
      return undefined;
  }
}

/** The token fields of a `token` or `answer`; `undefined` when one is malformed. */
function tokenFields(
  message: Record<string, unknown>,
): (Omit<TokenFields, "token"> & { token: string | null }) | undefined {
  const token = orNull(message.token, isToken);
  const expiresAt = orNull(message.expiresAt, isNumber);
  const bound = orNull(message.bound, isBoolean);
  const { epoch } = message;
  if (token === undefined || expiresAt === undefined || bound === undefined || !isEpoch(epoch)) {
    return undefined;
  }
  return { token, expiresAt, bound, epoch };
}

function parseFailure(message: Record<string, unknown>): Message | undefined {
  // Canceled is never sent: it is this tab's own business.
  const { code } = message;
  const status = orNull(message.status, isStatus);
  const until = orNull(message.until, isNumber);
  const reason = orNull(message.reason, (value): value is SessionEndReason =>
    REASONS.includes(value as SessionEndReason),
  );
  if (
    (code !== TokenFetchCode.Internal &&
      code !== TokenFetchCode.Unavailable &&
      code !== TokenFetchCode.Unauthenticated) ||
    status === undefined ||
    until === undefined ||
    reason === undefined
  ) {
    return undefined;
  }
  return { v: 3, type: "failed", code, status, reason, until };
}
