/** What the grants put on the wire: OAuth's form encoding with client_id, or the app's JSON API. */
import { describe, expect, it, vi } from "vitest";
import {
  createTokenSource,
  passwordGrant,
  refreshTokenGrant,
  type TokenEvent,
} from "../../src/index.js";
import { type OAuthEndpoint, startOAuthEndpoint } from "./oauth-endpoint.js";

const FORM = "application/x-www-form-urlencoded";
const ALICE = { username: "alice", password: "pa ss&wörd=1" };

/** No request carried a secret (or anything) in its URL: only the path. */
function expectNothingInUrls(oauth: OAuthEndpoint, secrets: string[]) {
  for (const { url } of oauth.seen) {
    expect(url).toMatch(/^\/(token|revoke)$/);
    for (const secret of secrets) {
      expect(url).not.toContain(secret);
      expect(url).not.toContain(encodeURIComponent(secret));
    }
  }
}

describe("refreshTokenGrant on the wire", () => {
  it("sends RFC 6749 §6 refreshes form-encoded with client_id, and scope only when given", async () => {
    const oauth = await startOAuthEndpoint();
    const tokens = createTokenSource({
      fetchToken: refreshTokenGrant({
        endpoint: oauth.token,
        clientId: "my-spa",
        refreshToken: "rt-0",
      }),
    });
    const first = await tokens.getToken();
    await tokens.refresh(first);

    expect(oauth.to("/token")).toEqual([
      expect.objectContaining({
        contentType: FORM,
        fields: { grant_type: "refresh_token", refresh_token: "rt-0", client_id: "my-spa" },
      }),
      expect.objectContaining({
        contentType: FORM,
        fields: { grant_type: "refresh_token", refresh_token: "rt-1", client_id: "my-spa" },
      }),
    ]);
    expect(oauth.to("/token")[0]?.body).toBe(
      "grant_type=refresh_token&refresh_token=rt-0&client_id=my-spa",
    );
    expectNothingInUrls(oauth, ["rt-0", "rt-1"]);
  });

  it("sends scope with every refresh when given", async () => {
    const oauth = await startOAuthEndpoint();
    const tokens = createTokenSource({
      fetchToken: refreshTokenGrant({
        endpoint: oauth.token,
        clientId: "my-spa",
        scope: "openid api:read",
        refreshToken: "rt-0",
      }),
    });
    await tokens.refresh(await tokens.getToken());
    for (const { fields } of oauth.to("/token")) {
      expect(fields).toMatchObject({ client_id: "my-spa", scope: "openid api:read" });
    }
    expect(oauth.to("/token")).toHaveLength(2);
  });

  it("revokes on clear() with an RFC 7009 form of token, token_type_hint and client_id, once", async () => {
    const oauth = await startOAuthEndpoint();
    const events: TokenEvent[] = [];
    const tokens = createTokenSource({
      fetchToken: refreshTokenGrant({
        endpoint: oauth.token,
        clientId: "my-spa",
        refreshToken: "rt-0",
        revokeEndpoint: oauth.revoke,
      }),
    });
    tokens.subscribe((event) => events.push(event));
    await tokens.getToken();

    tokens.clear();
    await vi.waitFor(() => expect(oauth.to("/revoke")).toHaveLength(1));
    expect(oauth.to("/revoke")[0]).toMatchObject({
      contentType: FORM,
      fields: { token: "rt-1", token_type_hint: "refresh_token", client_id: "my-spa" },
    });
    expectNothingInUrls(oauth, ["rt-0", "rt-1"]);
    expect(events.map((event) => event.type)).toEqual(["token", "cleared"]);
  });
});

describe("passwordGrant with clientId: an OAuth client", () => {
  it("signs in with the RFC 6749 §4.3.2 form, then refreshes and revokes form-encoded with client_id", async () => {
    const oauth = await startOAuthEndpoint();
    const tokens = createTokenSource({
      fetchToken: passwordGrant({
        endpoint: oauth.token,
        credentials: ALICE,
        clientId: "my-spa",
        scope: "api",
        revokeEndpoint: oauth.revoke,
      }),
    });
    await tokens.refresh(await tokens.getToken());
    tokens.clear();
    await vi.waitFor(() => expect(oauth.to("/revoke")).toHaveLength(1));

    expect(oauth.seen.map(({ contentType, fields }) => ({ contentType, fields }))).toEqual([
      {
        contentType: FORM,
        fields: {
          grant_type: "password",
          username: "alice",
          password: ALICE.password,
          client_id: "my-spa",
          scope: "api",
        },
      },
      {
        contentType: FORM,
        fields: {
          grant_type: "refresh_token",
          refresh_token: "rt-1",
          client_id: "my-spa",
          scope: "api",
        },
      },
      {
        contentType: FORM,
        fields: { token: "rt-2", token_type_hint: "refresh_token", client_id: "my-spa" },
      },
    ]);
    // The password travels form-encoded in the body, never in a URL.
    expect(oauth.seen[0]?.body).toContain("password=pa+ss%26w%C3%B6rd%3D1");
    expectNothingInUrls(oauth, [ALICE.password, "rt-1", "rt-2"]);
  });
});

describe("passwordGrant without clientId: the app's own JSON login API, as before", () => {
  it("signs in and refreshes with JSON, and revokes with a form without client_id", async () => {
    const oauth = await startOAuthEndpoint();
    const tokens = createTokenSource({
      fetchToken: passwordGrant({
        endpoint: oauth.token,
        credentials: ALICE,
        revokeEndpoint: oauth.revoke,
      }),
    });
    await tokens.refresh(await tokens.getToken());
    tokens.clear();
    await vi.waitFor(() => expect(oauth.to("/revoke")).toHaveLength(1));

    expect(oauth.seen.map(({ contentType, fields }) => ({ contentType, fields }))).toEqual([
      { contentType: "application/json", fields: { username: "alice", password: ALICE.password } },
      {
        contentType: "application/json",
        fields: { grant_type: "refresh_token", refresh_token: "rt-1" },
      },
      { contentType: FORM, fields: { token: "rt-2", token_type_hint: "refresh_token" } },
    ]);
    expectNothingInUrls(oauth, [ALICE.password, "rt-1", "rt-2"]);
  });
});

describe("the OAuth options", () => {
  const endpoint = "https://idp.example/token";
  const cases: [string, () => unknown, RegExp][] = [
    [
      "refreshTokenGrant without clientId",
      () =>
        refreshTokenGrant({ endpoint, refreshToken: "rt" } as Parameters<
          typeof refreshTokenGrant
        >[0]),
      /^refreshTokenGrant: clientId is required/,
    ],
    [
      "refreshTokenGrant with an empty clientId",
      () => refreshTokenGrant({ endpoint, refreshToken: "rt", clientId: "" }),
      /^refreshTokenGrant: clientId must be a non-empty string/,
    ],
    [
      "refreshTokenGrant with a numeric clientId",
      () => refreshTokenGrant({ endpoint, refreshToken: "rt", clientId: 42 as unknown as string }),
      /^refreshTokenGrant: clientId must be a non-empty string/,
    ],
    [
      "refreshTokenGrant with an empty scope",
      () => refreshTokenGrant({ endpoint, refreshToken: "rt", clientId: "spa", scope: "" }),
      /^refreshTokenGrant: scope must be a non-empty string of space-separated scope tokens/,
    ],
    [
      "refreshTokenGrant with a scope of doubled spaces",
      () => refreshTokenGrant({ endpoint, refreshToken: "rt", clientId: "spa", scope: "a  b" }),
      /^refreshTokenGrant: scope must be/,
    ],
    [
      'refreshTokenGrant with a scope holding "',
      () => refreshTokenGrant({ endpoint, refreshToken: "rt", clientId: "spa", scope: 'a"b' }),
      /^refreshTokenGrant: scope must be/,
    ],
    [
      "passwordGrant with an empty clientId",
      () => passwordGrant({ endpoint, credentials: ALICE, clientId: "" }),
      /^passwordGrant: clientId must be a non-empty string/,
    ],
    [
      "passwordGrant with scope but no clientId",
      () => passwordGrant({ endpoint, credentials: ALICE, scope: "api" }),
      /^passwordGrant: scope is an OAuth parameter and needs clientId/,
    ],
  ];
  it.each(cases)("%s is a TypeError naming the option", (_name, make, message) => {
    expect(make).toThrow(TypeError);
    expect(make).toThrow(message);
  });

  it("accepts a clientId and a scope of several tokens", () => {
    expect(() =>
      refreshTokenGrant({ endpoint, refreshToken: "rt", clientId: "spa", scope: "openid api" }),
    ).not.toThrow();
    expect(() =>
      passwordGrant({ endpoint, credentials: ALICE, clientId: "spa", scope: "openid api" }),
    ).not.toThrow();
  });
});
