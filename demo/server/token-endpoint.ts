import type { IncomingMessage, ServerResponse } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import type { CredentialChecker } from "./credentials.js";
import { DpopProofError, type DpopVerifier } from "./dpop-proof.js";
import {
  isFormRequest,
  isJsonObject,
  isJsonRequest,
  readFormBody,
  readJsonBody,
  sendJson,
  sendMethodNotAllowed,
  sendText,
} from "./http-io.js";
import { sendOAuthError } from "./oauth-error.js";
import { parseOAuthTokenRequest, type TokenRequest } from "./oauth-token-request.js";
import type { PublicUrl } from "./public-url.js";
import type { RefreshGrant, RefreshTokenStore } from "./refresh-tokens.js";
import type { SignInThrottle } from "./sign-in-throttle.js";
import type { StatsRecorder } from "./stats.js";
import type { TokenFault, TokenFaults } from "./token-faults.js";
import type { TokenIssuer } from "./token-issuer.js";

/** Options for {@link createTokenEndpoint}. */
export interface TokenEndpointOptions {
  issuer: TokenIssuer;
  /** Starts a refresh-token family at each sign-in and rotates it at each refresh. */
  refreshTokens: RefreshTokenStore;
  checkCredentials: CredentialChecker;
  /** Per-account backoff: how long an account must wait before its password is checked. */
  throttle: SignInThrottle;
  /** Checks the `DPoP` header of a token request, when there is one. */
  dpop: DpopVerifier;
  /** The URL clients use for this endpoint, which a DPoP proof's `htu` must name. */
  publicUrl: PublicUrl;
  stats: StatsRecorder;
  /** The `client_id` of the demo's public OAuth client; a form request may name no other. */
  clientId: string;
  /** Injected faults; only given in test mode. Default: none. */
  faults?: TokenFaults;
  /** Aborted when the server closes, so delayed answers do not keep it alive. */
  signal: AbortSignal;
}

/** A Node request handler for a route. */
export type RouteHandler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

/** The body of a successful token answer. */
export interface TokenResponseBody {
  /** The access token, as older clients read it. */
  token: string;
  /** The same access token, under its OAuth name. */
  access_token: string;
  /** `"DPoP"` when the token is bound to a DPoP key, else `"Bearer"`. */
  token_type: "Bearer" | "DPoP";
  /** Whole seconds until the access token expires. */
  expires_in: number;
  /** A new refresh token; the one a refresh request presented is spent. */
  refresh_token: string;
}

const PASSWORD_SHAPE = 'expected {"username": string, "password": string}';

/**
 * The one description of every refused refresh token (unknown, expired, revoked, reused, or bound
 * to a key the request did not prove): a thief's answer never tells a live token from a dead one.
 */
export const REFRESH_REFUSAL = "the refresh token is invalid";

const UNSUPPORTED_TYPE =
  "content type must be application/x-www-form-urlencoded (OAuth) or application/json";

/**
 * Creates the `POST /auth/token` handler. Two dialects, told apart by the content type:
 *
 * - OAuth 2.0 (`application/x-www-form-urlencoded`, RFC 6749 Appendix B): `grant_type=password`
 *   with `username` and `password` (§4.3.2), or `grant_type=refresh_token` with `refresh_token`
 *   (§6); `client_id` may name the demo's public client (anything else is 401 `invalid_client`),
 *   `scope` may ask for `demo`. Every error is an OAuth error (§5.2): a wrong password is 400
 *   `invalid_grant`; a missing or repeated parameter `invalid_request`.
 * - The JSON login API (what `passwordGrant` without `clientId` sends): `{"username",
 *   "password"}` (optionally `"grant_type": "password"`), or `{"grant_type": "refresh_token",
 *   "refresh_token"}`; a wrong password is 401 in plain text, a malformed body 400 in plain text.
 *
 * Both answer {@link TokenResponseBody} with `cache-control: no-store`. A refused refresh token
 * answers 400 `{"error": "invalid_grant"}`; a spent one presented again also revokes its family.
 *
 * With a valid `DPoP` proof header (RFC 9449), the access token is bound to the proof's key
 * (`cnf.jkt`, `token_type: "DPoP"`), and so is a new refresh-token family: refreshing it then needs
 * a proof by the same key. A refused proof answers 400 `{"error": "invalid_dpop_proof"}`, or
 * `{"error": "use_dpop_nonce"}` with a `DPoP-Nonce` header when a nonce is required; while nonces
 * are required, every answer carries a current `DPoP-Nonce`. A refresh token of a bound family is
 * looked at only with a proof by its key: without one, the answer is the same `invalid_grant` as
 * for a token never issued. A proof is verified (and its `jti` remembered) only after the
 * password was right or the refresh token known, so unauthenticated requests cost no memory.
 *
 * After five wrong passwords in a row an account waits before its next password is checked
 * (`throttle`): 429 with `Retry-After`, and the password is not looked at. 405 for other
 * methods, 415 for a body that is neither form nor JSON (a `text/plain` sign-in would be a
 * cross-site request without a CORS preflight), 413 above 16 KiB. Neither passwords nor tokens
 * are ever logged or echoed.
 */
export function createTokenEndpoint(options: TokenEndpointOptions): RouteHandler {
  const { issuer, refreshTokens, checkCredentials, throttle, dpop, publicUrl, stats, faults } =
    options;
  const { signal } = options;
  const { clientId } = options;

  async function answerTokens(res: ServerResponse, grant: RefreshGrant): Promise<void> {
    const issued = await issuer.issue(grant.subject, { jkt: grant.jkt });
    refreshTokens.recordAccessToken(grant.familyId, issued.tokenId);
    stats.tokenIssued();
    if (grant.jkt !== undefined) stats.count("dpopTokensIssued");
    const body: TokenResponseBody = {
      token: issued.token,
      access_token: issued.token,
      token_type: grant.jkt === undefined ? "Bearer" : "DPoP",
      expires_in: issued.expiresIn,
      refresh_token: grant.refreshToken,
    };
    sendJson(res, 200, body, { "cache-control": "no-store", pragma: "no-cache" });
  }

  /**
   * The proof's key thumbprint; undefined without a proof (none needed: no `bound` key);
   * "without-key" when `bound` was not proved (nothing answered yet); "answered" after a 400.
   */
  async function checkProof(
    req: IncomingMessage,
    res: ServerResponse,
    bound?: string,
  ): Promise<string | undefined | "answered" | "without-key"> {
    const header = req.headers.dpop;
    if (header === undefined && bound === undefined) return undefined;
    // Two DPoP headers make a malformed proof, as RFC 9449 §4.3 asks.
    const proof = Array.isArray(header) ? header.join(", ") : header;
    try {
      const { jkt } = await dpop.verify(proof, {
        method: "POST",
        url: publicUrl.ofRequest(req),
        ...(bound !== undefined && { jkt: bound }),
      });
      return jkt;
    } catch (e) {
      if (!(e instanceof DpopProofError)) throw e;
      stats.count(e.code === "use_dpop_nonce" ? "dpopNonceChallenges" : "invalidDpopProofs");
      if (e.withoutKey) return "without-key";
      sendOAuthError(res, 400, e.code, e.message);
      return "answered";
    }
  }

  const refuseRefresh = (res: ServerResponse) => {
    stats.count("invalidGrants");
    sendOAuthError(res, 400, "invalid_grant", REFRESH_REFUSAL);
  };

  return async (req, res) => {
    // While nonces are required, every answer (errors included) tells the client the current one.
    const nonce = dpop.nonce();
    if (nonce !== undefined) res.setHeader("dpop-nonce", nonce);
    stats.tokenRequest();
    if (req.method !== "POST") return sendMethodNotAllowed(res, ["POST"]);
    const oauth = isFormRequest(req);
    if (!oauth && !isJsonRequest(req)) {
      req.resume();
      return sendText(res, 415, UNSUPPORTED_TYPE);
    }
    const body = oauth ? await readFormBody(req) : await readJsonBody(req);
    const fault = faults?.take();
    if (fault && (await answeredByFault(fault, req, res, signal))) return;
    if (!body.ok) {
      if (body.problem === "too-large") return sendText(res, 413, "request body too large");
      if (!oauth) return sendText(res, 400, "request body must be JSON");
      // RFC 6749 §3.2: parameters must not repeat.
      return sendOAuthError(res, 400, "invalid_request", "a parameter was given more than once");
    }
    let request: TokenRequest;
    if (oauth) {
      const parsed = parseOAuthTokenRequest(body.value as Record<string, string>, clientId);
      if ("error" in parsed) {
        return sendOAuthError(res, parsed.status, parsed.error, parsed.description);
      }
      request = parsed;
    } else {
      const parsed = parseTokenRequest(body.value);
      if ("refusal" in parsed) {
        const { refusal } = parsed;
        if (refusal === "not-password-shape") return sendText(res, 400, PASSWORD_SHAPE);
        return refusal === "unsupported_grant_type"
          ? sendOAuthError(res, 400, refusal, "grant_type must be password or refresh_token")
          : sendOAuthError(res, 400, refusal, "refresh_token must be a non-empty string");
      }
      request = parsed;
    }

    if (request.grant === "password") {
      const { username, password } = request;
      const waitMs = throttle.waitMs(username);
      if (waitMs > 0) {
        stats.count("throttledSignIns");
        const retryAfter = String(Math.ceil(waitMs / 1000));
        const text = "too many wrong passwords for this account: try again later";
        return oauth
          ? sendOAuthError(res, 429, "invalid_request", text, { "retry-after": retryAfter })
          : sendText(res, 429, text, { "retry-after": retryAfter });
      }
      stats.count("passwordChecks");
      const right = checkCredentials(username, password);
      throttle.checked(username, right);
      if (!right) {
        // OAuth says it with invalid_grant (RFC 6749 §5.2); the JSON login API as it always did.
        return oauth
          ? sendOAuthError(res, 400, "invalid_grant", "invalid username or password")
          : sendText(res, 401, "invalid username or password");
      }
      const jkt = await checkProof(req, res);
      if (jkt === "answered" || jkt === "without-key") return;
      stats.count("passwordSignIns");
      return answerTokens(res, refreshTokens.start(username, jkt));
    }

    stats.count("refreshRequests");
    // Unknown tokens are refused before the proof is looked at (its jti is not remembered);
    // a bound family's token is looked at only with a proof by its key.
    const binding = refreshTokens.bindingOf(request.refreshToken);
    if (binding === undefined) return refuseRefresh(res);
    const jkt = await checkProof(req, res, binding.jkt);
    if (jkt === "answered") return;
    if (jkt === "without-key") return refuseRefresh(res);
    const rotated = refreshTokens.rotate(request.refreshToken, jkt);
    if ("problem" in rotated) {
      if (rotated.problem === "reused") stats.count("reuseDetections");
      return refuseRefresh(res);
    }
    stats.count("rotations");
    return answerTokens(res, rotated);
  };
}

/**
 * A JSON login API request, or why it is answered 400: an OAuth error for the refresh grant,
 * plain text (as before there were grants) for a body that is not a sign-in.
 */
function parseTokenRequest(
  value: unknown,
): TokenRequest | { refusal: "unsupported_grant_type" | "invalid_request" | "not-password-shape" } {
  if (!isJsonObject(value)) return { refusal: "not-password-shape" };
  const grantType = value.grant_type;
  if (grantType === "refresh_token") {
    const refreshToken = value.refresh_token;
    if (typeof refreshToken !== "string" || refreshToken === "") {
      return { refusal: "invalid_request" };
    }
    return { grant: "refresh_token", refreshToken };
  }
  if (grantType !== undefined && grantType !== "password") {
    return { refusal: "unsupported_grant_type" };
  }
  const { username, password } = value;
  if (typeof username !== "string" || typeof password !== "string") {
    return { refusal: "not-password-shape" };
  }
  return { grant: "password", username, password };
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
