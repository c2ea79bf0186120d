import { inspect } from "node:util";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { describe, expect, it, vi } from "vitest";
import type { DemoServer } from "../../demo/server/server.js";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";
import {
  createAuthInterceptor,
  createTokenSource,
  passwordGrant,
  refreshTokenGrant,
  shareAcrossTabs,
  type TabSharing,
  type TokenSource,
} from "../../src/index.js";
import { createFakeLockWorld } from "../helpers/fake-locks.js";
import { type SecretWatch, seenInFile, watchSecrets } from "../helpers/secret-watch.js";
import { refresh as refreshAtServer, signIn, startTestServer } from "../server/fixtures.js";

const PASSWORD = "wonderland";
const ALICE = { username: "alice", password: PASSWORD };

/** A DemoService client over gRPC-Web that authenticates with `tokens`. */
function demoClient(server: DemoServer, tokens: TokenSource) {
  return createClient(
    DemoService,
    createGrpcWebTransport({
      baseUrl: server.url,
      interceptors: [createAuthInterceptor(tokens)],
    }),
  );
}

/** Revokes every refresh token issued so far, through the test route. */
async function revokeAllRefreshTokens(server: DemoServer): Promise<void> {
  const res = await fetch(`${server.url}/test/revoke-refresh`, { method: "POST" });
  expect(res.status).toBe(204);
}

/** Credentials given for the sign-in only: afterwards the app has dropped the password. */
function credentialsOnce() {
  return vi.fn().mockReturnValueOnce(ALICE).mockReturnValue(undefined);
}

/** Awaits a rejection, records it with the watch and returns it. */
async function failureOf(watch: SecretWatch, promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return watch.error(error);
  }
  throw new Error("expected a rejection");
}

function sessionEnds(watch: SecretWatch) {
  return watch.events.filter((event) => event.type === "session-ended");
}

describe("passwordGrant with rotating refresh tokens", () => {
  it("rotates the refresh token on each of 20 refreshes, asking for the password once and never reusing one", async () => {
    const server = await startTestServer({ testMode: true });
    const watch = watchSecrets(PASSWORD);
    const credentials = vi.fn(() => ALICE);
    const tokens = createTokenSource({
      fetchToken: passwordGrant({ endpoint: server.tokenUrl, credentials, http: watch.http }),
    });
    const client = demoClient(server, tokens);

    expect((await client.whoAmI({})).subject).toBe("alice");
    let current = await tokens.getToken();
    for (let i = 1; i <= 20; i++) {
      const next = await tokens.refresh(current);
      expect(next).not.toBe(current);
      expect(server.stats().refreshRequests).toBe(i);
      expect((await client.whoAmI({})).subject).toBe("alice");
      current = next;
    }

    expect(credentials).toHaveBeenCalledTimes(1);
    const stats = server.stats();
    expect(stats.passwordSignIns).toBe(1);
    expect(stats.refreshRequests).toBe(20);
    expect(stats.rotations).toBe(20);
    expect(stats.reuseDetections).toBe(0);
    expect(stats.invalidGrants).toBe(0);
    // Every call went through with the token it was given: none was refused and replayed.
    expect(stats.calls.WhoAmI).toBe(21);
    expect(stats.unauthenticated).toBe(0);
    expect(new Set(watch.refreshTokens).size).toBe(21);
    expect(watch.accessTokens.at(-1)).toBe(current);
  });

  it("signs in again with the password, once, when the refresh token is refused, and never sends the refused one again", async () => {
    const server = await startTestServer({ testMode: true });
    const watch = watchSecrets(PASSWORD);
    const credentials = vi.fn(() => ALICE);
    const tokens = createTokenSource({
      fetchToken: passwordGrant({ endpoint: server.tokenUrl, credentials, http: watch.http }),
    });
    watch.watch(tokens);
    const client = demoClient(server, tokens);
    await client.whoAmI({});
    const current = await tokens.getToken();

    await revokeAllRefreshTokens(server);
    const next = await tokens.refresh(current);
    expect(next).not.toBe(current);
    expect(server.stats()).toMatchObject({
      passwordSignIns: 2,
      refreshRequests: 1,
      invalidGrants: 1,
    });
    expect(credentials).toHaveBeenCalledTimes(2);
    expect((await client.whoAmI({})).subject).toBe("alice");

    // The next refresh uses the new family's token, not the refused one.
    await tokens.refresh(next);
    expect(server.stats()).toMatchObject({
      passwordSignIns: 2,
      refreshRequests: 2,
      rotations: 1,
      invalidGrants: 1,
    });
    expect(sessionEnds(watch)).toEqual([]);
    watch.expectNoSecrets();
  });

  it("ends the session with refresh-token-refused when the refresh token is refused and there are no credentials, and never sends it again", async () => {
    const server = await startTestServer({ testMode: true });
    const watch = watchSecrets(PASSWORD);
    const tokens = createTokenSource({
      fetchToken: passwordGrant({
        endpoint: server.tokenUrl,
        credentials: credentialsOnce(),
        http: watch.http,
      }),
    });
    watch.watch(tokens);
    const client = demoClient(server, tokens);
    await client.whoAmI({});
    const current = await tokens.getToken();

    await revokeAllRefreshTokens(server);
    const error = await failureOf(watch, tokens.refresh(current));
    expect(error).toMatchObject({ code: Code.Unauthenticated, reason: "refresh-token-refused" });
    expect(sessionEnds(watch)).toEqual([
      { type: "session-ended", reason: "refresh-token-refused" },
    ]);

    // Later calls and fetches fail without a request carrying the dropped refresh token.
    for (let i = 0; i < 3; i++) {
      const callError = await failureOf(watch, client.whoAmI({}));
      expect(ConnectError.from(callError).code).toBe(Code.Unauthenticated);
      await failureOf(watch, tokens.getToken());
    }
    expect(server.stats()).toMatchObject({
      passwordSignIns: 1,
      refreshRequests: 1,
      invalidGrants: 1,
    });
    expect(sessionEnds(watch)).toHaveLength(1);
    watch.expectNoSecrets();
  });

  it("ends the session with refresh-token-refused when another client reused a refresh token and its family was revoked", async () => {
    const server = await startTestServer({ testMode: true });
    const watch = watchSecrets(PASSWORD);
    const tokens = createTokenSource({
      fetchToken: passwordGrant({
        endpoint: server.tokenUrl,
        credentials: credentialsOnce(),
        http: watch.http,
      }),
    });
    watch.watch(tokens);
    const client = demoClient(server, tokens);
    await client.whoAmI({});
    await tokens.refresh(await tokens.getToken());
    await client.whoAmI({});
    // The grant spent the first refresh token; another client presents it again.
    const [spent] = watch.refreshTokens;
    const replay = await refreshAtServer(server, spent as string);
    expect(replay.status).toBe(400);
    expect(server.stats().reuseDetections).toBe(1);

    // The family's access token is revoked too: the call is refused, the refresh refused.
    const callError = await failureOf(watch, client.whoAmI({}));
    expect(ConnectError.from(callError).code).toBe(Code.Unauthenticated);
    expect(sessionEnds(watch)).toEqual([
      { type: "session-ended", reason: "refresh-token-refused" },
    ]);
    expect(server.stats()).toMatchObject({
      passwordSignIns: 1,
      // The grant's two (the second refused) and the other client's one.
      refreshRequests: 3,
      rotations: 1,
      reuseDetections: 1,
      invalidGrants: 2,
    });
    await failureOf(watch, client.whoAmI({}));
    expect(server.stats().refreshRequests).toBe(3);
    watch.expectNoSecrets();
  });
});

describe("revocation on clear()", () => {
  it("with revokeEndpoint, clear() revokes the refresh token once and it no longer works", async () => {
    const server = await startTestServer({ testMode: true });
    const watch = watchSecrets(PASSWORD);
    const tokens = createTokenSource({
      fetchToken: passwordGrant({
        endpoint: server.tokenUrl,
        credentials: () => ALICE,
        revokeEndpoint: server.revokeUrl,
        http: watch.http,
      }),
    });
    await tokens.refresh(await tokens.getToken());
    const held = watch.refreshTokens.at(-1) as string;

    tokens.clear();
    await vi.waitFor(() => expect(server.stats().revokeRequests).toBe(1));
    expect(server.stats().revocations).toBe(1);
    const res = await refreshAtServer(server, held);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toBe("invalid_grant");

    // A second clear() has nothing to revoke; a new sign-in is not revoked by the first.
    tokens.clear();
    await tokens.getToken();
    expect(server.stats()).toMatchObject({ revokeRequests: 1, revocations: 1, passwordSignIns: 2 });
  });

  it("without revokeEndpoint, clear() only forgets the refresh token: no revocation is sent", async () => {
    const server = await startTestServer({ testMode: true });
    const watch = watchSecrets(PASSWORD);
    const tokens = createTokenSource({
      fetchToken: passwordGrant({
        endpoint: server.tokenUrl,
        credentials: () => ALICE,
        http: watch.http,
      }),
    });
    await tokens.refresh(await tokens.getToken());
    const held = watch.refreshTokens.at(-1) as string;

    tokens.clear();
    await tokens.getToken();
    expect(server.stats()).toMatchObject({ revokeRequests: 0, passwordSignIns: 2 });
    expect((await refreshAtServer(server, held)).status).toBe(200);
  });
});

describe("refreshTokenGrant with a refresh token got elsewhere", () => {
  it("rotates the refresh token across several refreshes, then ends the session with refresh-token-refused when it is refused", async () => {
    const server = await startTestServer({ testMode: true });
    const watch = watchSecrets(PASSWORD);
    const answer = await signIn(server);
    watch.secret(answer.refresh_token);
    watch.secret(answer.access_token);
    const tokens = createTokenSource({
      fetchToken: refreshTokenGrant({
        endpoint: server.tokenUrl,
        clientId: server.clientId,
        refreshToken: answer.refresh_token,
        http: watch.http,
      }),
    });
    watch.watch(tokens);
    const client = demoClient(server, tokens);

    expect((await client.whoAmI({})).subject).toBe("alice");
    let current = await tokens.getToken();
    for (let i = 0; i < 4; i++) {
      current = await tokens.refresh(current);
      expect((await client.whoAmI({})).subject).toBe("alice");
    }
    expect(server.stats()).toMatchObject({
      passwordSignIns: 1,
      refreshRequests: 5,
      rotations: 5,
      reuseDetections: 0,
      invalidGrants: 0,
    });
    expect(new Set([answer.refresh_token, ...watch.refreshTokens]).size).toBe(6);

    await revokeAllRefreshTokens(server);
    const error = await failureOf(watch, tokens.refresh(current));
    expect(error).toMatchObject({ code: Code.Unauthenticated, reason: "refresh-token-refused" });
    expect(sessionEnds(watch)).toEqual([
      { type: "session-ended", reason: "refresh-token-refused" },
    ]);
    await failureOf(watch, tokens.getToken());
    expect(server.stats()).toMatchObject({ refreshRequests: 6, invalidGrants: 1 });
    watch.expectNoSecrets();
  });
});

/** A store needs tabs that take turns: one tab's sharing, over an in-memory lock manager. */
function oneTab(): { crossTab: TabSharing } {
  const apis = { locks: createFakeLockWorld().tab("a"), BroadcastChannel };
  return { crossTab: shareAcrossTabs(`store-${crypto.randomUUID()}`, { apis }) };
}

describe("a refresh token store", () => {
  it("is given each rotated refresh token, and undefined on clear()", async () => {
    const server = await startTestServer({ testMode: true });
    const watch = watchSecrets(PASSWORD);
    const store = { load: vi.fn(() => undefined), save: vi.fn() };
    const tokens = createTokenSource({
      fetchToken: passwordGrant({
        endpoint: server.tokenUrl,
        credentials: ALICE,
        http: watch.http,
        store,
      }),
      ...oneTab(),
    });
    let current = await tokens.getToken();
    for (let i = 0; i < 3; i++) current = await tokens.refresh(current);
    expect(store.save.mock.calls).toEqual(watch.refreshTokens.map((token) => [token]));
    expect(watch.refreshTokens).toHaveLength(4);

    tokens.clear();
    expect(store.save.mock.calls.at(-1)).toEqual([undefined]);
    expect(store.save).toHaveBeenCalledTimes(5);
    expect(store.load).toHaveBeenCalledTimes(1);
  });

  it("refreshes with the refresh token it loads, without asking for the password", async () => {
    const server = await startTestServer({ testMode: true });
    const answer = await signIn(server);
    const credentials = vi.fn(() => ALICE);
    const tokens = createTokenSource({
      fetchToken: passwordGrant({
        endpoint: server.tokenUrl,
        credentials,
        store: { load: () => answer.refresh_token, save: () => {} },
      }),
      ...oneTab(),
    });
    expect((await demoClient(server, tokens).whoAmI({})).subject).toBe("alice");
    expect(credentials).not.toHaveBeenCalled();
    expect(server.stats()).toMatchObject({ passwordSignIns: 1, refreshRequests: 1, rotations: 1 });
  });

  it("that fails falls back to the credentials, and is reported on the console without a secret", async () => {
    const server = await startTestServer({ testMode: true });
    const watch = watchSecrets(PASSWORD);
    const store = {
      load: vi.fn(() => {
        throw new Error(`storage unreadable, last password ${PASSWORD}`);
      }),
      save: vi.fn((token: string | undefined) =>
        Promise.reject(new Error(`quota exceeded saving ${token} for ${PASSWORD}`)),
      ),
    };
    const tokens = createTokenSource({
      fetchToken: passwordGrant({
        endpoint: server.tokenUrl,
        credentials: ALICE,
        http: watch.http,
        store,
      }),
      ...oneTab(),
    });
    watch.watch(tokens);
    const client = demoClient(server, tokens);

    expect((await client.whoAmI({})).subject).toBe("alice");
    await tokens.refresh(await tokens.getToken());
    expect((await client.whoAmI({})).subject).toBe("alice");
    expect(server.stats()).toMatchObject({ passwordSignIns: 1, rotations: 1 });
    expect(store.save).toHaveBeenCalledTimes(2);

    const reported = () =>
      vi
        .mocked(console.error)
        .mock.calls.map((args) => args.map((arg) => inspect(arg)).join(" "))
        .join("\n");
    await vi.waitFor(() => expect(reported().match(/save failed/g)).toHaveLength(2));
    expect(reported()).toMatch(/store's load failed/);
    watch.expectNoSecrets();
  });
});

describe("secrets", () => {
  it("no error, event or console output of the failure tests above holds the password, a refresh token or an access token", () => {
    // The tests above each checked their own output; this checks each against every secret.
    expect(seenInFile.texts.length).toBeGreaterThan(0);
    expect(seenInFile.secrets.size).toBeGreaterThan(1);
    for (const text of seenInFile.texts) {
      for (const secret of seenInFile.secrets) expect(text.includes(secret), text).toBe(false);
    }
  });
});
