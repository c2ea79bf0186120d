import { onTestFinished } from "vitest";
import { createAuthority } from "../helpers/authority.js";
import { startTokenEndpoint, type TokenEndpoint } from "../helpers/token-endpoint.js";

/** One request as the endpoint received it. */
export interface SeenRequest {
  /** The request target: path and query string, as sent. */
  url: string;
  /** The `content-type` header exactly as sent. */
  contentType: string | undefined;
  /** The body's fields: a form's, or a JSON object's. */
  fields: Record<string, unknown>;
  /** The raw body. */
  body: string;
}

/** An error answer to give instead of a token: status, JSON body, headers. */
export type Answer = [status: number, body: unknown, headers?: Record<string, string>];

/** A loopback OAuth-ish endpoint: `/token` mints, `/revoke` answers 200; or as `next` says. */
export interface OAuthEndpoint {
  endpoint: TokenEndpoint;
  token: string;
  revoke: string;
  seen: SeenRequest[];
  /** Requests to one path. */
  to(path: "/token" | "/revoke"): SeenRequest[];
  /** Answers the next requests (to either path) with these, in order; then as usual. */
  next(...answers: Answer[]): void;
}

/**
 * Starts a real HTTP endpoint on loopback that reads form and JSON bodies, records them, and
 * answers token requests with `{access_token, expires_in, refresh_token}` (a new refresh token
 * each time: `rt-1`, `rt-2`, …) and revocations with an empty 200.
 */
export async function startOAuthEndpoint(): Promise<OAuthEndpoint> {
  const endpoint = await startTokenEndpoint(createAuthority());
  onTestFinished(() => endpoint.close());
  const base = endpoint.url.replace(/\/auth\/token$/, "");
  const seen: SeenRequest[] = [];
  const queue: Answer[] = [];
  let issued = 0;
  endpoint.behave((req, res, body) => {
    const contentType = req.headers["content-type"];
    let fields: Record<string, unknown> = {};
    if (contentType?.startsWith("application/json")) fields = JSON.parse(body);
    else fields = Object.fromEntries(new URLSearchParams(body));
    seen.push({ url: req.url ?? "", contentType, fields, body });
    const answer = queue.shift();
    if (answer !== undefined) {
      const [status, json, headers] = answer;
      res.writeHead(status, { "content-type": "application/json", ...headers });
      res.end(typeof json === "string" ? json : JSON.stringify(json));
      return;
    }
    if (req.url?.startsWith("/revoke")) {
      res.writeHead(200, { "content-length": 0 }).end();
      return;
    }
    issued++;
    res.writeHead(200, { "content-type": "application/json" });
    res.end(
      JSON.stringify({
        access_token: `at-${issued}`,
        token_type: "Bearer",
        expires_in: 300,
        refresh_token: `rt-${issued}`,
      }),
    );
  });
  return {
    endpoint,
    token: `${base}/token`,
    revoke: `${base}/revoke`,
    seen,
    to: (path) => seen.filter((request) => request.url.startsWith(path)),
    next: (...answers) => queue.push(...answers),
  };
}
