/** Refresh tokens are sent at most once each: bounds that hold whatever the endpoint answers. */
import { describe, expect, it, onTestFinished } from "vitest";
import {
  createTokenSource,
  dpopProofs,
  refreshTokenGrant,
  TokenFetchCode,
} from "../../src/index.js";
import { createAuthority } from "../helpers/authority.js";
import { startTokenEndpoint } from "../helpers/token-endpoint.js";

async function endpointThat(
  answer: (body: Record<string, string>) => [number, object, Record<string, string>?],
) {
  const endpoint = await startTokenEndpoint(createAuthority());
  onTestFinished(() => endpoint.close());
  const bodies: Record<string, string>[] = [];
  endpoint.behave((_req, res, body) => {
    const parsed = Object.fromEntries(new URLSearchParams(body));
    bodies.push(parsed);
    const [status, json, headers] = answer(parsed);
    res.writeHead(status, { "content-type": "application/json", ...headers });
    res.end(JSON.stringify(json));
  });
  return { endpoint, bodies };
}

describe("refresh tokens", () => {
  it("sends a refused refresh token once per source however often it is offered", async () => {
    const { endpoint, bodies } = await endpointThat(() => [400, { error: "invalid_grant" }]);
    const tokens = createTokenSource({
      fetchToken: refreshTokenGrant({
        endpoint: endpoint.url,
        clientId: "spa",
        refreshToken: () => "spent",
      }),
    });
    for (let i = 0; i < 5; i++) await tokens.getToken().catch(() => {});
    expect(bodies).toEqual([
      { grant_type: "refresh_token", refresh_token: "spent", client_id: "spa" },
    ]);
  });

  it("does not resend a refresh whose answer carried a nonce but was no nonce challenge", async () => {
    const { endpoint, bodies } = await endpointThat(() => [
      503,
      { error: "temporarily_unavailable" },
      { "dpop-nonce": "fresh-nonce" },
    ]);
    const tokens = createTokenSource({
      fetchToken: refreshTokenGrant({
        endpoint: endpoint.url,
        clientId: "spa",
        refreshToken: "rt-1",
      }),
      dpop: dpopProofs(),
    });
    await expect(tokens.getToken()).rejects.toMatchObject({ code: TokenFetchCode.Unavailable });
    expect(bodies).toHaveLength(1);
  });

  it("answers a nonce challenge with one more refresh, not two", async () => {
    const { endpoint, bodies } = await endpointThat(() => [
      400,
      { error: "use_dpop_nonce" },
      { "dpop-nonce": `nonce-${Math.random()}` },
    ]);
    const tokens = createTokenSource({
      fetchToken: refreshTokenGrant({
        endpoint: endpoint.url,
        clientId: "spa",
        refreshToken: "rt-1",
      }),
      dpop: dpopProofs(),
    });
    // A second challenge blames the proof, not the refresh token: no refusal (RFC 9449 §8).
    await expect(tokens.getToken()).rejects.toMatchObject({
      code: TokenFetchCode.Internal,
      oauthError: "use_dpop_nonce",
    });
    expect(bodies).toHaveLength(2);
  });
});
