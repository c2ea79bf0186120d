import { Code, ConnectError } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { decodeJwt } from "jose";
import { describe, expect, it } from "vitest";
import type { DemoServer } from "../../demo/server/server.js";
import { sleep, waitFor } from "../helpers/wait.js";
import {
  createDemoClient,
  fetchToken,
  postJson,
  refresh,
  signIn,
  startTestServer,
} from "./fixtures.js";

const alice = { username: "alice", password: "wonderland" };

/** Every counter of `GET /test/stats`, at zero. */
const zeroStats = {
  tokenRequests: 0,
  tokensIssued: 0,
  unauthenticated: 0,
  calls: {},
  passwordSignIns: 0,
  passwordChecks: 0,
  throttledSignIns: 0,
  refreshRequests: 0,
  rotations: 0,
  reuseDetections: 0,
  invalidGrants: 0,
  revokeRequests: 0,
  revocations: 0,
  dpopTokensIssued: 0,
  dpopCalls: 0,
  dpopNonceChallenges: 0,
  invalidDpopProofs: 0,
  dpopKeys: 0,
  dpopThumbprints: [],
};

/** POSTs to a test route and expects 204. */
async function steer(server: DemoServer, route: string, body: unknown = {}): Promise<void> {
  const res = await postJson(`${server.url}/test/${route}`, body);
  expect(res.status, `POST /test/${route}: ${await res.text()}`).toBe(204);
}

async function getStats(server: DemoServer) {
  const res = await fetch(`${server.url}/test/stats`);
  expect(res.status).toBe(200);
  return res.json();
}

describe("test routes", () => {
  it.each([
    ["POST", "revoke"],
    ["POST", "revoke-refresh"],
    ["POST", "token-fault"],
    ["POST", "token-ttl"],
    ["POST", "refresh-ttl"],
    ["POST", "dpop-nonces"],
    ["POST", "reset"],
    ["GET", "stats"],
  ])("answer 404 to %s /test/%s when test mode is off", async (method, route) => {
    const server = await startTestServer();
    const res = await fetch(`${server.url}/test/${route}`, {
      method,
      ...(method === "POST" && { body: '{"status": 500}' }),
    });
    expect(res.status).toBe(404);
    expect((await postJson(server.tokenUrl, alice)).status).toBe(200);
  });

  it("answer 404 to an unknown route and 405 to the wrong method", async () => {
    const server = await startTestServer({ testMode: true });
    expect((await fetch(`${server.url}/test/nope`)).status).toBe(404);
    expect((await fetch(`${server.url}/test/revoke`)).status).toBe(405);
  });

  it("stats count token requests, issued tokens, calls per method and Unauthenticated answers", async () => {
    const server = await startTestServer({ testMode: true });
    const token = await fetchToken(server);
    await postJson(server.tokenUrl, { username: "alice", password: "nope" });
    const client = createDemoClient(createConnectTransport, server.url, token);
    await client.whoAmI({});
    for await (const _ of client.ticks({ count: 1 })) {
      // drain
    }
    const anonymous = createDemoClient(createConnectTransport, server.url, undefined);
    await expect(anonymous.whoAmI({})).rejects.toBeInstanceOf(ConnectError);

    expect(await getStats(server)).toEqual({
      ...zeroStats,
      tokenRequests: 2,
      tokensIssued: 1,
      unauthenticated: 1,
      calls: { WhoAmI: 2, Ticks: 1 },
      passwordSignIns: 1,
      passwordChecks: 2,
    });
    expect(server.stats()).toEqual(await getStats(server));
  });

  it("revoke makes every token issued so far fail, but not later ones", async () => {
    const server = await startTestServer({ testMode: true });
    const before = createDemoClient(createConnectTransport, server.url, await fetchToken(server));
    await steer(server, "revoke");
    await expect(before.whoAmI({})).rejects.toMatchObject({ code: Code.Unauthenticated });
    const after = createDemoClient(createConnectTransport, server.url, await fetchToken(server));
    await expect(after.whoAmI({})).resolves.toMatchObject({ subject: "alice" });
  });

  it('revoke with {"future": true} also refuses every later token, until reset', async () => {
    const server = await startTestServer({ testMode: true });
    await steer(server, "revoke", { future: true });
    const later = createDemoClient(createConnectTransport, server.url, await fetchToken(server));
    await expect(later.whoAmI({})).rejects.toMatchObject({ code: Code.Unauthenticated });
    await steer(server, "reset");
    const afterReset = createDemoClient(
      createConnectTransport,
      server.url,
      await fetchToken(server),
    );
    await expect(afterReset.whoAmI({})).resolves.toMatchObject({ subject: "alice" });
  });

  it("revoke-refresh refuses every refresh token issued so far but leaves access tokens valid", async () => {
    const server = await startTestServer({ testMode: true });
    const before = await signIn(server);
    await steer(server, "revoke-refresh");
    const res = await refresh(server, before.refresh_token);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: "invalid_grant" });
    const client = createDemoClient(createConnectTransport, server.url, before.token);
    await expect(client.whoAmI({})).resolves.toMatchObject({ subject: "alice" });
    const after = await signIn(server);
    expect((await refresh(server, after.refresh_token)).status).toBe(200);
  });

  it("revoke still revokes access tokens only: refresh tokens keep working", async () => {
    const server = await startTestServer({ testMode: true });
    const before = await signIn(server);
    await steer(server, "revoke");
    const res = await refresh(server, before.refresh_token);
    expect(res.status).toBe(200);
    const { token } = (await res.json()) as { token: string };
    const client = createDemoClient(createConnectTransport, server.url, token);
    await expect(client.whoAmI({})).resolves.toMatchObject({ subject: "alice" });
  });

  it("refresh-ttl changes the lifetime of future refresh tokens and reset restores it", async () => {
    const server = await startTestServer({ testMode: true });
    await steer(server, "refresh-ttl", { seconds: 0 });
    expect((await refresh(server, (await signIn(server)).refresh_token)).status).toBe(400);
    await steer(server, "reset");
    expect((await refresh(server, (await signIn(server)).refresh_token)).status).toBe(200);
  });

  it.each([[{ seconds: -1 }], [{ seconds: 2_592_001 }], [{ seconds: "60" }], [{}]])(
    "refresh-ttl rejects %j with 400",
    async (body) => {
      const server = await startTestServer({ testMode: true });
      expect((await postJson(`${server.url}/test/refresh-ttl`, body)).status).toBe(400);
    },
  );

  it("dpop-nonces switches the nonce requirement and reset restores it", async () => {
    const server = await startTestServer({ testMode: true });
    expect((await postJson(server.tokenUrl, alice)).headers.get("dpop-nonce")).toBeNull();
    await steer(server, "dpop-nonces", { on: true });
    expect((await postJson(server.tokenUrl, alice)).headers.get("dpop-nonce")).toMatch(/^\S{16,}$/);
    await steer(server, "reset");
    expect((await postJson(server.tokenUrl, alice)).headers.get("dpop-nonce")).toBeNull();
    expect((await postJson(`${server.url}/test/dpop-nonces`, { on: "yes" })).status).toBe(400);
  });

  it("token-fault answers the given status, body and content type for the next `times` requests", async () => {
    const server = await startTestServer({ testMode: true });
    await steer(server, "token-fault", {
      status: 503,
      body: '{"error":"down"}',
      contentType: "application/json",
      times: 2,
    });
    for (let i = 0; i < 2; i++) {
      const res = await postJson(server.tokenUrl, alice);
      expect(res.status).toBe(503);
      expect(res.headers.get("content-type")).toBe("application/json");
      expect(await res.text()).toBe('{"error":"down"}');
    }
    expect((await postJson(server.tokenUrl, alice)).status).toBe(200);
    expect((await getStats(server)).tokenRequests).toBe(3);
  });

  it("token-fault without times lasts until reset", async () => {
    const server = await startTestServer({ testMode: true });
    await steer(server, "token-fault", { status: 500 });
    for (let i = 0; i < 3; i++) expect((await postJson(server.tokenUrl, alice)).status).toBe(500);
    await steer(server, "reset");
    expect((await postJson(server.tokenUrl, alice)).status).toBe(200);
  });

  it("token-fault can answer 200 with a garbage body", async () => {
    const server = await startTestServer({ testMode: true });
    await steer(server, "token-fault", { status: 200, body: "<html>garbage", times: 1 });
    const res = await postJson(server.tokenUrl, alice);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("<html>garbage");
  });

  it("token-fault with only delayMs answers late and then issues a token", async () => {
    const server = await startTestServer({ testMode: true });
    await steer(server, "token-fault", { delayMs: 300, times: 1 });
    const started = Date.now();
    const res = await postJson(server.tokenUrl, alice);
    expect(res.status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
  });

  it("a delayed token answer is dropped, not issued, when the client goes away", async () => {
    const server = await startTestServer({ testMode: true });
    await steer(server, "token-fault", { delayMs: 600, times: 1 });
    const controller = new AbortController();
    const request = fetch(server.tokenUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(alice),
      signal: controller.signal,
    }).catch(() => "aborted");
    await waitFor(() => server.stats().tokenRequests === 1, {
      what: "the token request to arrive",
    });
    controller.abort();
    expect(await request).toBe("aborted");
    // Past the 600 ms the answer was delayed by: no token may be issued in it.
    await sleep(800);
    expect(await getStats(server)).toMatchObject({ tokenRequests: 1, tokensIssued: 0 });
  });

  it("token-fault reset-connection drops the connection without an answer", async () => {
    const server = await startTestServer({ testMode: true });
    await steer(server, "token-fault", { mode: "reset-connection", times: 1 });
    await expect(postJson(server.tokenUrl, alice)).rejects.toThrow(TypeError);
    expect((await postJson(server.tokenUrl, alice)).status).toBe(200);
  });

  it("close() does not wait for a delayed token answer", async () => {
    const server = await startTestServer({ testMode: true });
    await steer(server, "token-fault", { delayMs: 60_000 });
    const pending = postJson(server.tokenUrl, alice).catch((e: unknown) => e);
    await waitFor(() => server.stats().tokenRequests === 1, {
      what: "the token request to arrive",
    });
    const started = Date.now();
    await server.close();
    expect(await pending).toBeInstanceOf(TypeError);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it.each([
    ["an empty fault", {}],
    ["an unknown field", { status: 500, colour: "red" }],
    ["a status out of range", { status: 99 }],
    ["a negative delay", { delayMs: -1 }],
    ["zero times", { status: 500, times: 0 }],
    ["an unknown mode", { mode: "explode" }],
    ["a body that is not a string", { status: 500, body: { a: 1 } }],
    ["a body that is not JSON", "status=500"],
  ])("token-fault rejects %s with 400", async (_name, fault) => {
    const server = await startTestServer({ testMode: true });
    const res = await postJson(`${server.url}/test/token-fault`, fault);
    expect(res.status).toBe(400);
    expect((await postJson(server.tokenUrl, alice)).status).toBe(200);
  });

  it("token-ttl changes the lifetime of future tokens and reset restores it", async () => {
    const server = await startTestServer({ testMode: true, tokenTtlSeconds: 120 });
    await steer(server, "token-ttl", { seconds: 7 });
    const res = await postJson(server.tokenUrl, alice);
    const { token, expires_in } = (await res.json()) as { token: string; expires_in: number };
    expect([6, 7]).toContain(expires_in);
    const { exp = 0, iat = 0 } = decodeJwt(token);
    expect(exp - iat).toBe(7);

    await steer(server, "reset");
    const again = (await (await postJson(server.tokenUrl, alice)).json()) as { expires_in: number };
    expect([119, 120]).toContain(again.expires_in);
  });

  it("token-ttl of 0 issues tokens that are already expired", async () => {
    const server = await startTestServer({ testMode: true });
    await steer(server, "token-ttl", { seconds: 0 });
    const client = createDemoClient(createConnectTransport, server.url, await fetchToken(server));
    await expect(client.whoAmI({})).rejects.toMatchObject({ code: Code.Unauthenticated });
  });

  it.each([[{ seconds: -1 }], [{ seconds: 1.5 }], [{ seconds: "60" }], [{}]])(
    "token-ttl rejects %j with 400",
    async (body) => {
      const server = await startTestServer({ testMode: true });
      expect((await postJson(`${server.url}/test/token-ttl`, body)).status).toBe(400);
    },
  );

  it("reset clears faults and stats but keeps the users", async () => {
    const server = await startTestServer({ testMode: true, users: { dave: "pw" } });
    await fetchToken(server, "dave", "pw");
    await steer(server, "token-fault", { status: 500 });
    await steer(server, "reset");
    expect(await getStats(server)).toEqual(zeroStats);
    await fetchToken(server, "dave", "pw");
  });
});
