import { isJsonObject } from "./http-io.js";

/**
 * How the next token requests should misbehave (test mode only). Set with `POST /test/token-fault`.
 * With `status`, the endpoint answers that status and `body` instead of a token; with `delayMs`,
 * it waits first; with `mode: "reset-connection"`, it destroys the socket without answering.
 */
export interface TokenFault {
  /** Status to answer instead of issuing a token (200–599). Default: issue a token as usual. */
  status?: number;
  /** Wait this long before answering (0–60000 ms). Default 0. */
  delayMs?: number;
  /** Body sent with `status`. Default `"injected fault"`. */
  body?: string;
  /** Content type sent with `status`. Default `text/plain; charset=utf-8`. */
  contentType?: string;
  /** How many token requests the fault applies to. Default: all, until `POST /test/reset`. */
  times?: number;
  /** `"reset-connection"` destroys the socket instead of answering. */
  mode?: "reset-connection";
}

/** The active fault and how many uses it has left. */
export interface TokenFaults {
  /** Replaces the active fault. */
  set(fault: TokenFault): void;
  /** The fault for this token request, using up one of its `times`; undefined if none. */
  take(): TokenFault | undefined;
  clear(): void;
}

/** Creates an empty fault slot. */
export function createTokenFaults(): TokenFaults {
  let active: TokenFault | undefined;
  let remaining = Number.POSITIVE_INFINITY;
  return {
    set(fault) {
      active = fault;
      remaining = fault.times ?? Number.POSITIVE_INFINITY;
    },
    take() {
      if (!active || remaining <= 0) return undefined;
      remaining--;
      return active;
    },
    clear() {
      active = undefined;
    },
  };
}

const KEYS = new Set(["status", "delayMs", "body", "contentType", "times", "mode"]);

/** Validates a `POST /test/token-fault` body; returns the fault or a message for a 400. */
export function parseTokenFault(value: unknown): TokenFault | string {
  if (!isJsonObject(value)) return "body must be a JSON object";
  for (const key of Object.keys(value)) if (!KEYS.has(key)) return `unknown field "${key}"`;
  const { status, delayMs, body, contentType, times, mode } = value;
  const fault: TokenFault = {};
  if (status !== undefined) {
    if (!isIntIn(status, 200, 599)) return "status must be an integer from 200 to 599";
    fault.status = status;
  }
  if (delayMs !== undefined) {
    if (!isIntIn(delayMs, 0, 60_000)) return "delayMs must be an integer from 0 to 60000";
    fault.delayMs = delayMs;
  }
  if (body !== undefined) {
    if (typeof body !== "string") return "body must be a string";
    fault.body = body;
  }
  if (contentType !== undefined) {
    if (typeof contentType !== "string" || contentType === "") {
      return "contentType must be a non-empty string";
    }
    fault.contentType = contentType;
  }
  if (times !== undefined) {
    if (!isIntIn(times, 1, 1_000_000)) return "times must be a positive integer";
    fault.times = times;
  }
  if (mode !== undefined) {
    if (mode !== "reset-connection") return 'mode must be "reset-connection"';
    fault.mode = mode;
  }
  if (fault.status === undefined && fault.delayMs === undefined && fault.mode === undefined) {
    return "give at least one of status, delayMs, mode";
  }
  return fault;
}

function isIntIn(value: unknown, min: number, max: number): value is number {
  return Number.isInteger(value) && (value as number) >= min && (value as number) <= max;
}
