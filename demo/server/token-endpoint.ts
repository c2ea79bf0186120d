import type { IncomingMessage, ServerResponse } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import type { CredentialChecker } from "./credentials.js";
import { isJsonObject, readJsonBody, sendJson, sendMethodNotAllowed, sendText } from "./http-io.js";
import type { StatsRecorder } from "./stats.js";
import type { TokenFault, TokenFaults } from "./token-faults.js";
import type { TokenIssuer } from "./token-issuer.js";

/** Options for {@link createTokenEndpoint}. */
export interface TokenEndpointOptions {
  issuer: TokenIssuer;
  checkCredentials: CredentialChecker;
  stats: StatsRecorder;
  /** Injected faults; only given in test mode. Default: none. */
  faults?: TokenFaults;
  /** Aborted when the server closes, so delayed answers do not keep it alive. */
  signal: AbortSignal;
}

/** A Node request handler for a route. */
export type RouteHandler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

/**
 * Creates the `POST /auth/token` handler: `{"username", "password"}` in, `{"token", "expires_in"}`
 * out. 400 for a malformed body, 401 for bad credentials, 405 for other methods, 413 above 16 KiB.
 * Neither passwords nor tokens are ever logged.
 */
export function createTokenEndpoint(options: TokenEndpointOptions): RouteHandler {
  const { issuer, checkCredentials, stats, faults, signal } = options;
  return async (req, res) => {
    stats.tokenRequest();
    if (req.method !== "POST") return sendMethodNotAllowed(res, ["POST"]);
    const body = await readJsonBody(req);
    const fault = faults?.take();
    if (fault && (await answeredByFault(fault, req, res, signal))) return;
    if (!body.ok) {
      return body.problem === "too-large"
        ? sendText(res, 413, "request body too large")
        : sendText(res, 400, "request body must be JSON");
    }
    const { value } = body;
    if (
      !isJsonObject(value) ||
      typeof value.username !== "string" ||
      typeof value.password !== "string"
    ) {
      return sendText(res, 400, 'expected {"username": string, "password": string}');
    }
    if (!checkCredentials(value.username, value.password)) {
      return sendText(res, 401, "invalid username or password");
    }
    const { token, expiresIn } = await issuer.issue(value.username);
    stats.tokenIssued();
    sendJson(res, 200, { token, expires_in: expiresIn }, { "cache-control": "no-store" });
  };
}

/** Applies a fault; false when it only delayed and the request should be answered normally. */
async function answeredByFault(
  fault: TokenFault,
  req: IncomingMessage,
  res: ServerResponse,
  signal: AbortSignal,
): Promise<boolean> {
  if (fault.delayMs) {
    // Give up early when the server closes or the client goes away (a closed browser tab).
    const gone = new AbortController();
    const onClose = () => gone.abort();
    res.once("close", onClose);
    try {
      await sleep(fault.delayMs, undefined, { signal: AbortSignal.any([signal, gone.signal]) });
    } catch {
      req.socket.destroy();
      return true;
    } finally {
      res.off("close", onClose);
    }
  }
  if (fault.mode === "reset-connection") {
    req.socket.destroy();
    return true;
  }
  if (fault.status === undefined) return false;
  const body = fault.body ?? "injected fault";
  res.writeHead(fault.status, {
    "content-type": fault.contentType ?? "text/plain; charset=utf-8",
    "content-length": Buffer.byteLength(body),
    "cache-control": "no-store",
  });
  res.end(body);
  return true;
}
