import type { ServerResponse } from "node:http";
import { sendJson } from "./http-io.js";

/** OAuth error codes the demo answers with (RFC 6749 §5.2, RFC 9449 §5, RFC 7009 §2.2.1). */
export type OAuthErrorCode =
  | "invalid_request"
  | "invalid_client"
  | "invalid_grant"
  | "invalid_scope"
  | "unsupported_grant_type"
  | "invalid_dpop_proof"
  | "use_dpop_nonce";

/**
 * Answers `{"error", "error_description"}` as JSON with `cache-control: no-store`. The description
 * is a fixed sentence chosen by the caller: never a token, password or request excerpt.
 */
export function sendOAuthError(
  res: ServerResponse,
  status: number,
  error: OAuthErrorCode,
  description: string,
  headers: Record<string, string> = {},
): void {
  sendJson(
    res,
    status,
    { error, error_description: description },
    { ...headers, "cache-control": "no-store" },
  );
}
