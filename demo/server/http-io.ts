import type { IncomingMessage, ServerResponse } from "node:http";

/** Largest request body the token and test routes accept: 16 KiB. */
export const MAX_BODY_BYTES = 16 * 1024;

/** Why a body could not be read as JSON; each maps to one status code. */
export type BodyProblem = "too-large" | "not-json";

/**
 * Reads the whole request body and parses it as JSON. An oversized body is drained (so the client
 * can read the 413) unless it is absurdly large, in which case the connection is dropped.
 */
export async function readJsonBody(
  req: IncomingMessage,
  limit = MAX_BODY_BYTES,
): Promise<{ ok: true; value: unknown } | { ok: false; problem: BodyProblem }> {
  const raw = await readBody(req, limit);
  if (!raw.ok) return raw;
  try {
    return { ok: true, value: JSON.parse(raw.text) };
  } catch {
    return { ok: false, problem: "not-json" };
  }
}

/**
 * Reads an `application/x-www-form-urlencoded` body (OAuth's request format) into an object.
 * `not-form` when the content type differs or a parameter appears twice (RFC 6749 §3.1).
 */
export async function readFormBody(
  req: IncomingMessage,
  limit = MAX_BODY_BYTES,
): Promise<
  { ok: true; value: Record<string, string> } | { ok: false; problem: "too-large" | "not-form" }
> {
  const raw = await readBody(req, limit);
  if (!raw.ok) return raw;
  if (!isFormRequest(req)) return { ok: false, problem: "not-form" };
  const value: Record<string, string> = {};
  for (const [name, param] of new URLSearchParams(raw.text)) {
    if (Object.hasOwn(value, name)) return { ok: false, problem: "not-form" };
    value[name] = param;
  }
  return { ok: true, value };
}

/** Whether the request says its body is `application/x-www-form-urlencoded`. */
export function isFormRequest(req: IncomingMessage): boolean {
  const type = (req.headers["content-type"] ?? "").split(";", 1)[0]?.trim().toLowerCase();
  return type === "application/x-www-form-urlencoded";
}

/** Whether the request says its body is `application/json` (a charset parameter allowed). */
export function isJsonRequest(req: IncomingMessage): boolean {
  const type = (req.headers["content-type"] ?? "").split(";", 1)[0]?.trim().toLowerCase();
  return type === "application/json";
}

/** Reads the whole body as UTF-8, draining (or, far over `limit`, dropping) an oversized one. */
async function readBody(
  req: IncomingMessage,
  limit: number,
): Promise<{ ok: true; text: string } | { ok: false; problem: "too-large" }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit * 64) {
      req.destroy();
      break;
    }
    if (size <= limit) chunks.push(chunk);
  }
  if (size > limit) return { ok: false, problem: "too-large" };
  return { ok: true, text: Buffer.concat(chunks).toString("utf8") };
}

/** Answers with a JSON body. */
export function sendJson(
  res: ServerResponse,
  status: number,
  value: unknown,
  headers: Record<string, string> = {},
): void {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    ...headers,
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
}

/** Answers with a short plain-text body, the way this server reports every HTTP-level error. */
export function sendText(
  res: ServerResponse,
  status: number,
  text: string,
  headers: Record<string, string> = {},
): void {
  const body = `${text}\n`;
  res.writeHead(status, {
    ...headers,
    "content-type": "text/plain; charset=utf-8",
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
}

/** Answers 405 with the `allow` header listing `allowed`. */
export function sendMethodNotAllowed(res: ServerResponse, allowed: readonly string[]): void {
  sendText(res, 405, "method not allowed", { allow: allowed.join(", ") });
}

/** The request path without the query string. */
export function pathOf(req: IncomingMessage): string {
  return (req.url ?? "/").split("?", 1)[0] ?? "/";
}

/** Whether `value` is a plain JSON object (not null, not an array). */
export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
