/** The demo's token endpoint speaks OAuth 2.0 to form-encoded requests (RFC 6749, RFC 7009). */
import { createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { describe, expect, it, vi } from "vitest";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";
import {
  createAuthInterceptor,
  createTokenSource,
  passwordGrant,
  refreshTokenGrant,
} from "../../src/index.js";
import { postJson, startTestServer } from "./fixtures.js";

const CLIENT = "grpc-web-auth-demo";

function postForm(url: string, fields: Record<string, string> | string) {
  return fetch(url, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: typeof fields === "string" ? fields : new URLSearchParams(fields),
  });
}

async function expectOAuthError(res: Response, status: number, error: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toBe("application/json");
  expect(res.headers.get("cache-control")).toBe("no-store");
  const body = (await res.json()) as { error: string; error_description: string };
  expect(body.error).toBe(error);
  // RFC 6749 §5.2: printable ASCII but " and \.
  expect(body.error_description).toMatch(/^[\x20\x21\x23-\x5b\x5d-\x7e]+$/);
  return body;
}

describe("POST /auth/token with a form body (OAuth 2.0)", () => {
  it("grants a password sign-in (RFC 6749 §4.3.2) with client_id and scope, and rotates with a form refresh (§6)", async () => {
    const server = await startTestServer();
    const signIn = await postForm(server.tokenUrl, {
      grant_type: "password",
      username: "alice",
      password: "wonderland",
      client_id: CLIENT,
      scope: "demo",
    });
    expect(signIn.status).toBe(200);
    expect(signIn.headers.get("cache-control")).toBe("no-store");
    const first = (await signIn.json()) as { refresh_token: string; token_type: string };
    expect(first.token_type).toBe("Bearer");

    const refreshed = await postForm(server.tokenUrl, {
      grant_type: "refresh_token",
      refresh_token: first.refresh_token,
      client_id: CLIENT,
    });
    expect(refreshed.status).toBe(200);
    expect(server.stats()).toMatchObject({ passwordSignIns: 1, rotations: 1, invalidGrants: 0 });
    // The spent one is refused with invalid_grant.
    const spent = await postForm(server.tokenUrl, {
      grant_type: "refresh_token",
      refresh_token: first.refresh_token,
      client_id: CLIENT,
    });
    await expectOAuthError(spent, 400, "invalid_grant");
  });

  it("answers a wrong password 400 invalid_grant in JSON, never echoing it", async () => {
    const server = await startTestServer();
    const res = await postForm(server.tokenUrl, {
      grant_type: "password",
      username: "alice",
      password: "not-wonderland",
      client_id: CLIENT,
    });
    const body = await expectOAuthError(res, 400, "invalid_grant");
    expect(JSON.stringify(body)).not.toContain("not-wonderland");
  });

  it.each([
    [
      "an unknown client_id",
      401,
      "invalid_client",
      { grant_type: "password", username: "alice", password: "wonderland", client_id: "x" },
    ],
    ["no grant_type", 400, "invalid_request", { username: "alice", password: "wonderland" }],
    [
      "a grant_type it does not know",
      400,
      "unsupported_grant_type",
      { grant_type: "client_credentials", client_id: CLIENT },
    ],
    [
      "a password grant without a password",
      400,
      "invalid_request",
      { grant_type: "password", username: "alice", client_id: CLIENT },
    ],
    [
      "a refresh without a refresh_token",
      400,
      "invalid_request",
      { grant_type: "refresh_token", client_id: CLIENT },
    ],
    [
      "a scope it does not grant",
      400,
      "invalid_scope",
      {
        grant_type: "password",
        username: "alice",
        password: "wonderland",
        client_id: CLIENT,
        scope: "demo admin",
      },
    ],
    [
      "a repeated parameter (RFC 6749 §3.2)",
      400,
      "invalid_request",
      "grant_type=password&username=alice&password=wonderland&password=builder",
    ],
  ] as [string, number, string, Record<string, string> | string][])(
    "answers %s with %i %s",
    async (_name, status, error, fields) => {
      const server = await startTestServer();
      await expectOAuthError(await postForm(server.tokenUrl, fields), status, error);
      expect(server.stats()).toMatchObject({ passwordSignIns: 0, tokensIssued: 0 });
    },
  );

  it("keeps the JSON login API as it was: a wrong password is 401 in plain text", async () => {
    const server = await startTestServer();
    const res = await postJson(server.tokenUrl, { username: "alice", password: "nope" });
    expect(res.status).toBe(401);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
  });
});

describe("POST /auth/revoke with client_id", () => {
  it("revokes with the demo's client_id, and answers another client_id 401 invalid_client", async () => {
    const server = await startTestServer();
    const signIn = await postJson(server.tokenUrl, { username: "alice", password: "wonderland" });
    const { refresh_token } = (await signIn.json()) as { refresh_token: string };

    const stranger = await postForm(server.revokeUrl, {
      token: refresh_token,
      token_type_hint: "refresh_token",
      client_id: "someone-else",
    });
    await expectOAuthError(stranger, 401, "invalid_client");
    expect(server.stats().revocations).toBe(0);

    const own = await postForm(server.revokeUrl, {
      token: refresh_token,
      token_type_hint: "refresh_token",
      client_id: CLIENT,
    });
    expect(own.status).toBe(200);
    expect(server.stats().revocations).toBe(1);
  });
});

describe("the library's OAuth grants against the demo", () => {
  it("passwordGrant with clientId signs in, refreshes and revokes form-encoded, and a wrong password ends the session once", async () => {
    const server = await startTestServer();
    const tokens = createTokenSource({
      fetchToken: passwordGrant({
        endpoint: server.tokenUrl,
        credentials: { username: "alice", password: "wonderland" },
        clientId: server.clientId,
        scope: "demo",
        revokeEndpoint: server.revokeUrl,
      }),
    });
    const client = createClient(
      DemoService,
      createGrpcWebTransport({
        baseUrl: server.url,
        interceptors: [createAuthInterceptor(tokens)],
      }),
    );
    expect((await client.whoAmI({})).subject).toBe("alice");
    await tokens.refresh(await tokens.getToken());
    tokens.clear();
    await vi.waitFor(() => expect(server.stats().revocations).toBe(1));
    expect(server.stats()).toMatchObject({ passwordSignIns: 1, rotations: 1, invalidGrants: 0 });

    const wrong = createTokenSource({
      fetchToken: passwordGrant({
        endpoint: server.tokenUrl,
        credentials: { username: "alice", password: "builder" },
        clientId: server.clientId,
      }),
    });
    const ended: string[] = [];
    wrong.subscribe((event) => {
      if (event.type === "session-ended") ended.push(event.reason);
    });
    await expect(wrong.getToken()).rejects.toMatchObject({ oauthError: "invalid_grant" });
    for (let i = 0; i < 2; i++) {
      await expect(wrong.getToken()).rejects.toMatchObject({ reason: "credentials-refused" });
    }
    expect(ended).toEqual(["credentials-refused"]);
    expect(server.stats().passwordSignIns).toBe(1);
  });

  it("refreshTokenGrant with the demo's clientId rotates", async () => {
    const server = await startTestServer();
    const signIn = await postJson(server.tokenUrl, { username: "bob", password: "builder" });
    const { refresh_token } = (await signIn.json()) as { refresh_token: string };
    const tokens = createTokenSource({
      fetchToken: refreshTokenGrant({
        endpoint: server.tokenUrl,
        clientId: server.clientId,
        refreshToken: refresh_token,
      }),
    });
    let current = await tokens.getToken();
    for (let i = 0; i < 3; i++) current = await tokens.refresh(current);
    expect(server.stats()).toMatchObject({ rotations: 4, invalidGrants: 0 });
  });
});
