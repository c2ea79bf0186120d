import type { OAuthErrorCode } from "./oauth-error.js";

/** The demo's one public OAuth client, unless `startDemoServer({ clientId })` names another. */
export const DEFAULT_CLIENT_ID = "grpc-web-auth-demo";

/** The scopes the demo grants; a token request may ask for any of them (RFC 6749 §3.3). */
export const DEMO_SCOPES: ReadonlySet<string> = new Set(["demo"]);

/** A well-formed token request, from the OAuth form or the JSON login API. */
export type TokenRequest =
  | { grant: "password"; username: string; password: string; scope?: string | undefined }
  | { grant: "refresh_token"; refreshToken: string; scope?: string | undefined };

/** An OAuth error answer (RFC 6749 §5.2): status, code and a fixed description. */
export interface OAuthRefusal {
  status: 400 | 401;
  error: OAuthErrorCode;
  description: string;
}

/**
 * Reads an OAuth token request (RFC 6749 §4.3.2 password, §6 refresh) from a form body. A public
 * client may name itself with `client_id` (§3.2.1); an unknown one is `invalid_client` (401, as
 * oidc-provider answers). Descriptions are fixed sentences: never a value from the request.
 */
export function parseOAuthTokenRequest(
  form: Readonly<Record<string, string>>,
  clientId: string,
): TokenRequest | OAuthRefusal {
  const refuse = (error: OAuthErrorCode, description: string): OAuthRefusal => ({
    status: error === "invalid_client" ? 401 : 400,
    error,
    description,
  });
  if (form.client_id !== undefined && form.client_id !== clientId) {
    return refuse("invalid_client", "client_id names no client of this server");
  }
  const scope = form.scope;
  if (scope !== undefined && !scope.split(" ").every((one) => DEMO_SCOPES.has(one))) {
    return refuse("invalid_scope", `scope may only name ${[...DEMO_SCOPES].join(", ")}`);
  }
  switch (form.grant_type) {
    case undefined:
      return refuse("invalid_request", "grant_type is missing");
    case "password": {
      const { username, password } = form;
      if (username === undefined || password === undefined) {
        return refuse("invalid_request", "the password grant needs username and password");
      }
      return { grant: "password", username, password, scope };
    }
    case "refresh_token": {
      const refreshToken = form.refresh_token;
      if (refreshToken === undefined || refreshToken === "") {
        return refuse("invalid_request", "refresh_token must be a non-empty string");
      }
      return { grant: "refresh_token", refreshToken, scope };
    }
    default:
      return refuse("unsupported_grant_type", "grant_type must be password or refresh_token");
  }
}
