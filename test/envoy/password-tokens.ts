import { createTokenSource, type TokenSource } from "../../src/index.js";

/**
 * A token source that signs in at the demo's token endpoint with a username and password. Written
 * against `createTokenSource`'s `fetchToken` option only, so these tests exercise Envoy, not the
 * library's grant helpers.
 */
export function passwordTokens(endpoint: string, username: string, password: string): TokenSource {
  return createTokenSource({
    fetchToken: async ({ signal }) => {
      const res = await fetch(endpoint, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ username, password }),
        signal,
      });
      if (!res.ok) throw new Error(`token endpoint answered ${res.status}`);
      const body = (await res.json()) as { token?: unknown; access_token?: unknown };
      const token = body.token ?? body.access_token;
      if (typeof token !== "string") throw new Error("no token or access_token in the answer");
      return token;
    },
  });
}
