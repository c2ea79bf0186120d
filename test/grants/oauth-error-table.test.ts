/**
 * Errors by their OAuth code (RFC 6749 §5.2, RFC 9449 §5): only invalid_grant refuses a password
 * or a refresh token. Every other code ends nothing and drops nothing: Internal, backoff, and the
 * same credentials or refresh token once it passes.
 */
import { inspect } from "node:util";
import { Code } from "@connectrpc/connect";
import { describe, expect, it, vi } from "vitest";
import {
  createTokenSource,
  dpopProofs,
  passwordGrant,
  refreshTokenGrant,
  type TokenEvent,
  TokenFetchError,
  type TokenSource,
} from "../../src/index.js";
import { type Answer, startOAuthEndpoint } from "./oauth-endpoint.js";

const ALICE = { username: "alice", password: "s3cret-pa55word" };

/** The codes that blame the request, the client, the scope or the proof, with their usual status. */
const NOT_REFUSALS: [code: string, status: number][] = [
  ["invalid_request", 400],
  ["invalid_client", 401],
  ["unauthorized_client", 400],
  ["unsupported_grant_type", 400],
  ["invalid_scope", 400],
  ["invalid_dpop_proof", 400],
];

const oauthError = (
  status: number,
  error: string,
  description = `the ${error} happened`,
): Answer => [status, { error, error_description: description }];

function listen(tokens: TokenSource) {
  const events: TokenEvent[] = [];
  tokens.subscribe((event) => events.push(event));
  return () => events.filter((event) => event.type === "session-ended");
}

/** Waits out the backoff: polls until a fetch succeeds (repeated failures send no request). */
const afterBackoff = (tokens: TokenSource) =>
  vi.waitFor(() => tokens.getToken(), { timeout: 5_000, interval: 50 });

function expectFailure(error: unknown, code: string, status: number) {
  expect(error).toBeInstanceOf(TokenFetchError);
  expect(error).toMatchObject({ code: Code.Internal, status, oauthError: code, reason: undefined });
  expect((error as Error).message).toMatch(
    new RegExp(
      `^the token endpoint answered ${status} [A-Za-z ]+: ${code} \\(the ${code} happened\\)$`,
    ),
  );
}

describe("refreshTokenGrant: errors by their OAuth code", () => {
  it.each(NOT_REFUSALS)(
    "%s (%i) is Internal, ends nothing, and the same refresh token is sent once the backoff passes",
    async (code, status) => {
      const oauth = await startOAuthEndpoint();
      const tokens = createTokenSource({
        fetchToken: refreshTokenGrant({
          endpoint: oauth.token,
          clientId: "spa",
          refreshToken: "rt-0",
        }),
      });
      const ended = listen(tokens);
      oauth.next(oauthError(status, code));

      expectFailure(await tokens.getToken().catch((e: unknown) => e), code, status);
      await expect(tokens.getToken()).rejects.toMatchObject({
        repeated: true,
        code: Code.Internal,
      });
      expect(oauth.seen).toHaveLength(1);
      await afterBackoff(tokens);

      expect(oauth.seen.map(({ fields }) => fields.refresh_token)).toEqual(["rt-0", "rt-0"]);
      expect(ended()).toEqual([]);
    },
  );

  it("invalid_grant is a refusal: the refresh token is dropped and the session ends once", async () => {
    const oauth = await startOAuthEndpoint();
    const tokens = createTokenSource({
      fetchToken: refreshTokenGrant({
        endpoint: oauth.token,
        clientId: "spa",
        refreshToken: "rt-0",
      }),
    });
    const ended = listen(tokens);
    oauth.next(oauthError(400, "invalid_grant"));

    await expect(tokens.getToken()).rejects.toMatchObject({
      code: Code.Unauthenticated,
      reason: "refresh-token-refused",
      oauthError: "invalid_grant",
    });
    for (let i = 0; i < 3; i++) await tokens.getToken().catch(() => {});
    expect(oauth.seen).toHaveLength(1);
    expect(ended()).toEqual([{ type: "session-ended", reason: "refresh-token-refused" }]);
  });

  it.each([400, 401, 403])(
    "a %i without an OAuth error code is Internal, not a refusal: OAuth decides by the code only",
    async (status) => {
      const oauth = await startOAuthEndpoint();
      const tokens = createTokenSource({
        fetchToken: refreshTokenGrant({
          endpoint: oauth.token,
          clientId: "spa",
          refreshToken: "rt-0",
        }),
      });
      const ended = listen(tokens);
      oauth.next([status, "<html>nope</html>", { "content-type": "text/html" }]);

      await expect(tokens.getToken()).rejects.toMatchObject({
        code: Code.Internal,
        status,
        oauthError: undefined,
      });
      await afterBackoff(tokens);
      expect(oauth.seen.map(({ fields }) => fields.refresh_token)).toEqual(["rt-0", "rt-0"]);
      expect(ended()).toEqual([]);
    },
  );

  it("a second use_dpop_nonce in one fetch is no refusal either: the refresh token stays and the new nonce is used next", async () => {
    const oauth = await startOAuthEndpoint();
    const tokens = createTokenSource({
      fetchToken: refreshTokenGrant({
        endpoint: oauth.token,
        clientId: "spa",
        refreshToken: "rt-0",
      }),
      dpop: dpopProofs(),
    });
    const ended = listen(tokens);
    oauth.next(
      [400, { error: "use_dpop_nonce" }, { "dpop-nonce": "n-1" }],
      [400, { error: "use_dpop_nonce" }, { "dpop-nonce": "n-2" }],
    );

    await expect(tokens.getToken()).rejects.toMatchObject({
      code: Code.Internal,
      oauthError: "use_dpop_nonce",
    });
    expect(oauth.seen).toHaveLength(2);
    await afterBackoff(tokens);

    expect(oauth.seen.map(({ fields }) => fields.refresh_token)).toEqual(["rt-0", "rt-0", "rt-0"]);
    expect(ended()).toEqual([]);
  });
});

describe("passwordGrant with clientId: errors by their OAuth code", () => {
  it.each([...NOT_REFUSALS, ["use_dpop_nonce", 400] as [string, number]])(
    "%s (%i) records no refused credentials: the same password is sent once the backoff passes",
    async (code, status) => {
      const oauth = await startOAuthEndpoint();
      const credentials = vi.fn(() => ALICE);
      const tokens = createTokenSource({
        fetchToken: passwordGrant({ endpoint: oauth.token, credentials, clientId: "spa" }),
      });
      const ended = listen(tokens);
      oauth.next(oauthError(status, code));

      await expect(tokens.getToken()).rejects.toMatchObject({
        code: Code.Internal,
        oauthError: code,
      });
      await afterBackoff(tokens);

      expect(oauth.seen.map(({ fields }) => fields.password)).toEqual([
        ALICE.password,
        ALICE.password,
      ]);
      expect(credentials).toHaveBeenCalledTimes(2);
      expect(ended()).toEqual([]);
    },
  );

  it("invalid_grant refuses the credentials: they are not sent again until they change", async () => {
    const oauth = await startOAuthEndpoint();
    let credentials = ALICE;
    const tokens = createTokenSource({
      fetchToken: passwordGrant({
        endpoint: oauth.token,
        credentials: () => credentials,
        clientId: "spa",
      }),
    });
    const ended = listen(tokens);
    oauth.next(oauthError(400, "invalid_grant"));

    await expect(tokens.getToken()).rejects.toMatchObject({
      code: Code.Unauthenticated,
      reason: "credentials-refused",
      oauthError: "invalid_grant",
    });
    for (let i = 0; i < 3; i++) await tokens.getToken().catch(() => {});
    expect(oauth.seen).toHaveLength(1);
    credentials = { ...ALICE, password: "the-right-one" };
    await tokens.getToken();
    expect(oauth.seen).toHaveLength(2);
    expect(ended()).toEqual([{ type: "session-ended", reason: "credentials-refused" }]);
  });

  it("a 401 without an OAuth error code is Internal: the same password is sent again", async () => {
    const oauth = await startOAuthEndpoint();
    const tokens = createTokenSource({
      fetchToken: passwordGrant({ endpoint: oauth.token, credentials: ALICE, clientId: "spa" }),
    });
    oauth.next([401, "unauthorized", { "content-type": "text/plain" }]);

    await expect(tokens.getToken()).rejects.toMatchObject({ code: Code.Internal, status: 401 });
    await afterBackoff(tokens);
    expect(oauth.seen).toHaveLength(2);
  });
});

describe("passwordGrant without clientId (the app's own login API): a known OAuth code, else the status", () => {
  it.each([
    ["invalid_dpop_proof", 400],
    ["invalid_request", 400],
    ["invalid_client", 401],
    ["use_dpop_nonce", 400],
  ] as [string, number][])(
    "%s (%i) is no refusal: the same password is sent once the backoff passes",
    async (code, status) => {
      const oauth = await startOAuthEndpoint();
      const tokens = createTokenSource({
        fetchToken: passwordGrant({ endpoint: oauth.token, credentials: ALICE }),
      });
      const ended = listen(tokens);
      oauth.next(oauthError(status, code));

      await expect(tokens.getToken()).rejects.toMatchObject({
        code: Code.Internal,
        oauthError: code,
      });
      await afterBackoff(tokens);
      expect(oauth.seen.map(({ fields }) => fields.password)).toEqual([
        ALICE.password,
        ALICE.password,
      ]);
      expect(ended()).toEqual([]);
    },
  );

  it.each([
    ["400 invalid_grant", oauthError(400, "invalid_grant")],
    ["401 in plain text", [401, "bad credentials", { "content-type": "text/plain" }] as Answer],
    ["403 with an error code of the app's own", oauthError(403, "account_locked")],
    ["400 with a JSON body without an error code", [400, { message: "wrong password" }] as Answer],
  ])("%s refuses the credentials, as the login API always meant it", async (_name, answer) => {
    const oauth = await startOAuthEndpoint();
    const tokens = createTokenSource({
      fetchToken: passwordGrant({ endpoint: oauth.token, credentials: ALICE }),
    });
    const ended = listen(tokens);
    oauth.next(answer);

    await expect(tokens.getToken()).rejects.toMatchObject({
      code: Code.Unauthenticated,
      reason: "credentials-refused",
    });
    for (let i = 0; i < 3; i++) await tokens.getToken().catch(() => {});
    expect(oauth.seen).toHaveLength(1);
    expect(ended()).toHaveLength(1);
  });
});

describe("the error_description in a message", () => {
  it("is redacted of the secret sent, stripped of what RFC 6749 does not allow, and capped", async () => {
    const oauth = await startOAuthEndpoint();
    const tokens = createTokenSource({
      fetchToken: passwordGrant({ endpoint: oauth.token, credentials: ALICE, clientId: "spa" }),
    });
    const description = `bad scope for ${ALICE.password} \u0000\u202e${"x".repeat(400)}`;
    oauth.next(oauthError(400, "invalid_scope", description));

    const error = (await tokens.getToken().catch((e: unknown) => e)) as TokenFetchError;
    expect(error.message).toMatch(
      /^the token endpoint answered 400 Bad Request: invalid_scope \(bad scope for \[redacted\] x+…\)$/,
    );
    expect(error.message.length).toBeLessThan(200);
    expect(`${inspect(error)} ${error.bodyExcerpt}`).not.toContain(ALICE.password);
    expect(error.message.includes("\u0000") || error.message.includes("\u202e")).toBe(false);
  });

  it("an error code outside RFC 6749's characters is not an OAuth error", async () => {
    const oauth = await startOAuthEndpoint();
    const tokens = createTokenSource({
      fetchToken: refreshTokenGrant({
        endpoint: oauth.token,
        clientId: "spa",
        refreshToken: "rt-0",
      }),
    });
    oauth.next([400, { error: 'invalid_grant"\n<script>' }]);
    await expect(tokens.getToken()).rejects.toMatchObject({
      code: Code.Internal,
      oauthError: undefined,
    });
  });
});
