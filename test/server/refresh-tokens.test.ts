import { Code } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { decodeJwt } from "jose";
import { describe, expect, it, vi } from "vitest";
import { REFRESH_REFUSAL } from "../../demo/server/token-endpoint.js";
import { useTestClock } from "../helpers/clock.js";
import {
  codeOf,
  createDemoClient,
  postJson,
  refresh,
  revoke,
  signIn,
  startTestServer,
  type TokenAnswer,
} from "./fixtures.js";

/** Refreshes and expects a new pair. */
async function rotate(
  server: Parameters<typeof refresh>[0],
  refreshToken: string,
): Promise<TokenAnswer> {
  const res = await refresh(server, refreshToken);
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as TokenAnswer;
}

/** Expects `400 {"error": "invalid_grant"}` with a short description and no token in it. */
async function expectInvalidGrant(res: Response, ...secrets: string[]): Promise<string> {
  expect(res.status).toBe(400);
  expect(res.headers.get("content-type")).toBe("application/json");
  expect(res.headers.get("cache-control")).toBe("no-store");
  const text = await res.text();
  const body = JSON.parse(text) as { error: string; error_description: string };
  expect(body.error).toBe("invalid_grant");
  // One description for every refusal: it never tells a live token from a dead one.
  expect(body.error_description).toBe(REFRESH_REFUSAL);
  for (const secret of secrets) expect(text).not.toContain(secret);
  return body.error_description;
}

function whoAmI(server: Parameters<typeof refresh>[0], accessToken: string) {
  return codeOf(createDemoClient(createConnectTransport, server.url, accessToken).whoAmI({}));
}

describe("password sign-in", () => {
  it("answers token, access_token (the same), token_type Bearer, expires_in and an opaque refresh_token", async () => {
    const server = await startTestServer();
    const res = await postJson(server.tokenUrl, { username: "alice", password: "wonderland" });
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const body = (await res.json()) as TokenAnswer;
    expect(Object.keys(body).sort()).toEqual([
      "access_token",
      "expires_in",
      "refresh_token",
      "token",
      "token_type",
    ]);
    expect(body.access_token).toBe(body.token);
    expect(body.token_type).toBe("Bearer");
    expect([299, 300]).toContain(body.expires_in);
    // 32 random bytes in base64url, and nothing a JWT decoder could read.
    expect(body.refresh_token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(decodeJwt(body.token).cnf).toBeUndefined();
  });

  it('also accepts an explicit "grant_type": "password" and an OAuth form body', async () => {
    const server = await startTestServer();
    const json = await postJson(server.tokenUrl, {
      grant_type: "password",
      username: "bob",
      password: "builder",
    });
    expect(json.status).toBe(200);
    const form = await fetch(server.tokenUrl, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "grant_type=password&username=bob&password=builder",
    });
    expect(form.status).toBe(200);
    expect(((await form.json()) as TokenAnswer).token_type).toBe("Bearer");
  });
});

describe("the refresh_token grant", () => {
  it("rotates: 20 refreshes in a row each answer a new access token and a new refresh token", async () => {
    const server = await startTestServer({ testMode: true });
    const first = await signIn(server);
    const seenRefresh = new Set([first.refresh_token]);
    const seenJti = new Set([decodeJwt(first.token).jti]);
    let current = first;
    for (let i = 0; i < 20; i++) {
      const next = await rotate(server, current.refresh_token);
      expect(next.token_type).toBe("Bearer");
      expect(next.access_token).toBe(next.token);
      expect(decodeJwt(next.token).sub).toBe("alice");
      seenRefresh.add(next.refresh_token);
      seenJti.add(decodeJwt(next.token).jti);
      expect(await whoAmI(server, next.token)).toBe("ok");
      current = next;
    }
    expect(seenRefresh.size).toBe(21);
    expect(seenJti.size).toBe(21);
    expect(server.stats()).toMatchObject({
      tokenRequests: 21,
      tokensIssued: 21,
      passwordSignIns: 1,
      refreshRequests: 20,
      rotations: 20,
      reuseDetections: 0,
      invalidGrants: 0,
    });
  });

  it("spends the refresh token it was given: the same one twice is a reuse", async () => {
    const server = await startTestServer();
    const { refresh_token } = await signIn(server);
    await rotate(server, refresh_token);
    const description = await expectInvalidGrant(
      await refresh(server, refresh_token),
      refresh_token,
    );
    expect(description).toBe(REFRESH_REFUSAL);
    expect(server.stats()).toMatchObject({ reuseDetections: 1, invalidGrants: 1 });
  });

  it("on reuse revokes the whole family: the newest refresh token and the family's access tokens are refused", async () => {
    const server = await startTestServer();
    const signedIn = await signIn(server);
    const second = await rotate(server, signedIn.refresh_token);
    const third = await rotate(server, second.refresh_token);
    expect(await whoAmI(server, third.token)).toBe("ok");

    // An attacker replays the stolen first refresh token.
    await expectInvalidGrant(await refresh(server, signedIn.refresh_token));

    // The legitimate client's newest refresh token is dead too, and so are its access tokens.
    await expectInvalidGrant(await refresh(server, third.refresh_token), third.refresh_token);
    expect(await whoAmI(server, third.token)).toBe(Code.Unauthenticated);
    expect(await whoAmI(server, signedIn.token)).toBe(Code.Unauthenticated);
    expect(server.stats()).toMatchObject({
      refreshRequests: 4,
      rotations: 2,
      reuseDetections: 1,
      invalidGrants: 2,
    });
  });

  it("leaves other families alone when one is revoked for reuse", async () => {
    const server = await startTestServer();
    const alice = await signIn(server);
    const bob = await signIn(server, "bob", "builder");
    await rotate(server, alice.refresh_token);
    await expectInvalidGrant(await refresh(server, alice.refresh_token));
    expect(await whoAmI(server, bob.token)).toBe("ok");
    expect((await rotate(server, bob.refresh_token)).token_type).toBe("Bearer");
  });

  it.each([
    ["an unknown refresh token", "x".repeat(43)],
    ["an access token presented as a refresh token", "access"],
  ])("answers invalid_grant to %s", async (_name, token) => {
    const server = await startTestServer();
    const { access_token } = await signIn(server);
    const presented = token === "access" ? access_token : token;
    await expectInvalidGrant(await refresh(server, presented), presented);
    expect(server.stats()).toMatchObject({ refreshRequests: 1, invalidGrants: 1 });
  });

  it("answers invalid_grant to an expired refresh token", async () => {
    const server = await startTestServer({ testMode: true });
    expect((await postJson(`${server.url}/test/refresh-ttl`, { seconds: 0 })).status).toBe(204);
    const { refresh_token } = await signIn(server);
    await expectInvalidGrant(await refresh(server, refresh_token));
    expect(server.stats()).toMatchObject({ invalidGrants: 1, rotations: 0 });
  });

  it("uses the configured refresh-token lifetime", async () => {
    const clock = useTestClock();
    const server = await startTestServer({ refreshTtlSeconds: 1 });
    const { refresh_token } = await signIn(server);
    await rotate(server, (await signIn(server)).refresh_token); // fresh ones work
    clock.advance(2100); // the server reads Date.now(), which the clock moves
    await expectInvalidGrant(await refresh(server, refresh_token));
    expect(server.stats()).toMatchObject({ invalidGrants: 1, rotations: 1 });
  });

  it.each([
    ["no refresh_token", { grant_type: "refresh_token" }, "invalid_request"],
    ["an empty refresh_token", { grant_type: "refresh_token", refresh_token: "" }],
    ["a numeric refresh_token", { grant_type: "refresh_token", refresh_token: 7 }],
    ["an unknown grant_type", { grant_type: "client_credentials" }, "unsupported_grant_type"],
  ])("answers 400 with an OAuth error for %s", async (_name, body, error = "invalid_request") => {
    const server = await startTestServer();
    const res = await postJson(server.tokenUrl, body);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error });
  });
});

describe("POST /auth/revoke", () => {
  it("revokes a refresh token's family and answers 200 with an empty body", async () => {
    const server = await startTestServer();
    const signedIn = await signIn(server);
    const next = await rotate(server, signedIn.refresh_token);
    const res = await revoke(server, {
      token: next.refresh_token,
      token_type_hint: "refresh_token",
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(await res.text()).toBe("");
    await expectInvalidGrant(await refresh(server, next.refresh_token));
    // The family's access tokens go with it.
    expect(await whoAmI(server, next.token)).toBe(Code.Unauthenticated);
    expect(server.stats()).toMatchObject({ revokeRequests: 1, revocations: 1 });
  });

  it("answers 200 to an unknown or already revoked token, without counting a revocation", async () => {
    const server = await startTestServer();
    const { refresh_token } = await signIn(server);
    expect((await revoke(server, { token: "nope" })).status).toBe(200);
    expect((await revoke(server, { token: refresh_token })).status).toBe(200);
    expect((await revoke(server, { token: refresh_token })).status).toBe(200);
    expect(server.stats()).toMatchObject({ revokeRequests: 3, revocations: 1 });
  });

  it("revokes an access token by itself when given one, whatever the hint", async () => {
    const server = await startTestServer();
    const signedIn = await signIn(server);
    const res = await revoke(server, {
      token: signedIn.access_token,
      token_type_hint: "access_token",
    });
    expect(res.status).toBe(200);
    expect(await whoAmI(server, signedIn.access_token)).toBe(Code.Unauthenticated);
    // The refresh token still works: revoking an access token does not end the session.
    expect((await rotate(server, signedIn.refresh_token)).token_type).toBe("Bearer");
  });

  it.each([
    ["a body without token", "token_type_hint=refresh_token", "application/x-www-form-urlencoded"],
    ["an empty token", "token=", "application/x-www-form-urlencoded"],
    ["a JSON body", '{"token":"abc"}', "application/json"],
    ["a repeated token", "token=a&token=b", "application/x-www-form-urlencoded"],
  ])("answers 400 invalid_request to %s", async (_name, body, contentType) => {
    const server = await startTestServer();
    const res = await fetch(server.revokeUrl, {
      method: "POST",
      headers: { "content-type": contentType },
      body,
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: "invalid_request" });
  });

  it.each(["GET", "PUT", "DELETE"])("answers 405 with `allow: POST` to %s", async (method) => {
    const server = await startTestServer();
    const res = await fetch(server.revokeUrl, { method });
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("POST");
  });
});

describe("secrets", () => {
  it("never writes a password, access token or refresh token to a log, an error body or the stats", async () => {
    const server = await startTestServer({ testMode: true });
    const written: string[] = [];
    const record = (...args: unknown[]) => {
      written.push(args.map(String).join(" "));
      return true;
    };
    for (const method of ["log", "info", "warn", "error", "debug"] as const) {
      vi.spyOn(console, method).mockImplementation(record);
    }
    vi.spyOn(process.stdout, "write").mockImplementation(record);
    vi.spyOn(process.stderr, "write").mockImplementation(record);
    try {
      const bodies: string[] = [];
      const first = await signIn(server);
      const second = await rotate(server, first.refresh_token);
      for (const res of [
        await postJson(server.tokenUrl, { username: "alice", password: "wrong-password" }),
        await refresh(server, first.refresh_token), // reuse
        await refresh(server, second.refresh_token), // family revoked
        await refresh(server, first.access_token),
        await revoke(server, { token: second.refresh_token }),
        await fetch(`${server.url}/test/stats`),
      ]) {
        bodies.push(await res.text());
      }
      bodies.push(String(await whoAmI(server, second.token)), JSON.stringify(server.stats()));
      const secrets = [
        "wonderland",
        "wrong-password",
        first.token,
        first.refresh_token,
        second.token,
        second.refresh_token,
      ];
      for (const text of [...written, ...bodies]) {
        for (const secret of secrets) expect(text).not.toContain(secret);
      }
    } finally {
      vi.restoreAllMocks();
    }
  });
});
