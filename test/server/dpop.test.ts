import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { decodeJwt, exportJWK, generateKeyPair } from "jose";
import { describe, expect, it } from "vitest";
import type { DemoServer, DemoServerOptions } from "../../demo/server/server.js";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";
import { type DpopKey, dpopAuth, makeDpopKey, sha256 } from "./dpop-key.js";
import {
  bearer,
  browserTransports,
  codeOf,
  drain,
  postJson,
  refresh,
  signIn,
  startTestServer,
  type TokenAnswer,
} from "./fixtures.js";

const alice = { username: "alice", password: "wonderland" };

/** Signs in with a proof by `key`; expects a DPoP-bound answer. */
async function signInWithDpop(server: DemoServer, key: DpopKey, nonce?: string) {
  const proof = await key.proof(server.tokenUrl, nonce === undefined ? {} : { nonce });
  const res = await postJson(server.tokenUrl, alice, { dpop: proof });
  expect(res.status, await res.clone().text()).toBe(200);
  const body = (await res.json()) as TokenAnswer;
  expect(body.token_type).toBe("DPoP");
  return body;
}

/** Expects a 400 OAuth error from the token endpoint; returns the response. */
async function expectTokenError(res: Response, error: string): Promise<Response> {
  expect(res.status).toBe(400);
  expect(await res.clone().json()).toMatchObject({ error });
  return res;
}

type Create = (typeof browserTransports)[number]["create"];

function client(create: Create, server: DemoServer, interceptor: Interceptor) {
  return createClient(DemoService, create({ baseUrl: server.url, interceptors: [interceptor] }));
}

/** Starts a test-mode server and signs alice in with a new DPoP key. */
async function dpopSession(options: DemoServerOptions = {}) {
  const server = await startTestServer({ testMode: true, ...options });
  const key = await makeDpopKey();
  const { token, refresh_token } = await signInWithDpop(server, key);
  return { server, key, token, refreshToken: refresh_token };
}

describe("DPoP at the token endpoint", () => {
  it("binds the access token to the proof's key: cnf.jkt is the key's thumbprint, token_type DPoP", async () => {
    const server = await startTestServer();
    const key = await makeDpopKey();
    const body = await signInWithDpop(server, key);
    expect(decodeJwt(body.token).cnf).toEqual({ jkt: key.jkt });
    expect(server.stats()).toMatchObject({ dpopTokensIssued: 1, tokensIssued: 1 });
  });

  it("issues Bearer tokens without cnf to requests without a DPoP header", async () => {
    const server = await startTestServer();
    const body = await signIn(server);
    expect(body.token_type).toBe("Bearer");
    expect(decodeJwt(body.token).cnf).toBeUndefined();
  });

  const badProofs: [string, (key: DpopKey, tokenUrl: string) => Promise<string>][] = [
    ["a proof for another URL", (key, url) => key.proof(url.replace("/auth/token", "/auth/x"))],
    ["a proof for GET", (key, url) => key.proof(url, { htm: "GET" })],
    ["a proof typed JWT", (key, url) => key.proof(url, { typ: "JWT" })],
    ["a proof from two minutes ago", (key, url) => key.proof(url, { iat: now() - 120 })],
    ["a proof from two minutes ahead", (key, url) => key.proof(url, { iat: now() + 120 })],
    [
      "a proof whose jwk is another key (signature does not verify)",
      async (key, url) => key.proof(url, { jwk: await exportJWK((await otherKey()).publicKey) }),
    ],
    [
      "a proof whose jwk carries the private key",
      async (key, url) => {
        const { privateKey, publicKey } = await otherKey();
        const jwk = { ...(await exportJWK(publicKey)), d: (await exportJWK(privateKey)).d };
        return key.proof(url, { jwk: jwk as never });
      },
    ],
    ["garbage", async () => "not.a.proof"],
  ];

  for (const [name, make] of badProofs) {
    it(`answers 400 invalid_dpop_proof to ${name}`, async () => {
      const server = await startTestServer();
      const res = await postJson(server.tokenUrl, alice, {
        dpop: await make(await makeDpopKey(), server.tokenUrl),
      });
      await expectTokenError(res, "invalid_dpop_proof");
      expect(server.stats()).toMatchObject({ invalidDpopProofs: 1, tokensIssued: 0 });
    });
  }

  it("refuses the same proof twice (jti replay)", async () => {
    const server = await startTestServer();
    const proof = await (await makeDpopKey()).proof(server.tokenUrl);
    expect((await postJson(server.tokenUrl, alice, { dpop: proof })).status).toBe(200);
    await expectTokenError(
      await postJson(server.tokenUrl, alice, { dpop: proof }),
      "invalid_dpop_proof",
    );
  });

  it("accepts a proof naming the configured publicUrl, and refuses one naming the server's own", async () => {
    const server = await startTestServer({ publicUrl: "https://api.example/backend" });
    const key = await makeDpopKey();
    const good = await key.proof("https://api.example/backend/auth/token");
    expect((await postJson(server.tokenUrl, alice, { dpop: good })).status).toBe(200);
    const own = await key.proof(server.tokenUrl);
    await expectTokenError(
      await postJson(server.tokenUrl, alice, { dpop: own }),
      "invalid_dpop_proof",
    );
  });

  it("binds the refresh token too: refreshing needs a proof by the same key", async () => {
    const { server, key, refreshToken } = await dpopSession();
    // Stolen without the key: no proof, or a proof by the thief's key.
    await expectTokenError(await refresh(server, refreshToken), "invalid_grant");
    const thief = await makeDpopKey();
    await expectTokenError(
      await refresh(server, refreshToken, { dpop: await thief.proof(server.tokenUrl) }),
      "invalid_grant",
    );
    // The owner still can: those attempts did not spend the token.
    const res = await refresh(server, refreshToken, { dpop: await key.proof(server.tokenUrl) });
    expect(res.status).toBe(200);
    const body = (await res.json()) as TokenAnswer;
    expect(body.token_type).toBe("DPoP");
    expect(decodeJwt(body.token).cnf).toEqual({ jkt: key.jkt });
    expect(body.refresh_token).not.toBe(refreshToken);
  });

  it("challenges a proof without a nonce with use_dpop_nonce and a DPoP-Nonce header, then accepts it with the nonce", async () => {
    const server = await startTestServer({ dpopNonces: true });
    const key = await makeDpopKey();
    const res = await expectTokenError(
      await postJson(server.tokenUrl, alice, { dpop: await key.proof(server.tokenUrl) }),
      "use_dpop_nonce",
    );
    const nonce = res.headers.get("dpop-nonce");
    expect(nonce).toMatch(/^[A-Za-z0-9_-]{16,}$/);
    await expectTokenError(
      await postJson(server.tokenUrl, alice, {
        dpop: await key.proof(server.tokenUrl, { nonce: "stale" }),
      }),
      "use_dpop_nonce",
    );
    const ok = await postJson(server.tokenUrl, alice, {
      dpop: await key.proof(server.tokenUrl, { nonce: nonce ?? "" }),
    });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("dpop-nonce")).toBe(nonce);
    expect(server.stats()).toMatchObject({ dpopNonceChallenges: 2, dpopTokensIssued: 1 });
  });
});

describe.each(browserTransports)("DPoP-bound calls over $name", ({ create }) => {
  it("accepts unary and server-streaming calls with good proofs, and counts the key once", async () => {
    const { server, key, token } = await dpopSession();
    const demo = client(create, server, dpopAuth(token, key));
    expect((await demo.whoAmI({})).subject).toBe("alice");
    expect((await demo.whoAmI({})).subject).toBe("alice");
    const { items, error } = await drain(demo.ticks({ count: 3 }));
    expect(error).toBeUndefined();
    expect(items.map((tick) => tick.n)).toEqual([1, 2, 3]);
    expect(server.stats()).toMatchObject({
      dpopCalls: 3,
      dpopKeys: 1,
      dpopThumbprints: [key.jkt],
      unauthenticated: 0,
    });
  });

  it("counts distinct keys: two clients with their own keys make dpopKeys 2", async () => {
    const { server, key, token } = await dpopSession();
    const otherClient = await makeDpopKey();
    const other = await signInWithDpop(server, otherClient);
    await client(create, server, dpopAuth(token, key)).whoAmI({});
    await client(create, server, dpopAuth(other.token, otherClient)).whoAmI({});
    await client(create, server, dpopAuth(token, key)).whoAmI({});
    expect(server.stats()).toMatchObject({
      dpopKeys: 2,
      dpopThumbprints: [key.jkt, otherClient.jkt].sort(),
    });
  });

  const refusals: [string, (s: Awaited<ReturnType<typeof dpopSession>>) => Promise<Interceptor>][] =
    [
      [
        "a stolen DPoP token used with a proof by another key",
        async ({ token }) => dpopAuth(token, await makeDpopKey()),
      ],
      [
        "a proof made for another method's URL (htu)",
        async ({ token, key }) =>
          dpopAuth(token, key, (url) => ({ htu: url.replace("WhoAmI", "Ticks") })),
      ],
      [
        "a proof with the wrong ath",
        async ({ token, key }) => dpopAuth(token, key, () => ({ ath: sha256(`${token}x`) })),
      ],
      [
        "a proof for GET (htm)",
        async ({ token, key }) => dpopAuth(token, key, () => ({ htm: "GET" })),
      ],
      ["a DPoP-bound token sent as Bearer", async ({ token }) => bearer(token)],
      [
        "a DPoP token without a proof",
        async ({ token }) =>
          (next) =>
          (req) => {
            req.header.set("authorization", `DPoP ${token}`);
            return next(req);
          },
      ],
      [
        "a Bearer token (no cnf) sent with the DPoP scheme",
        async ({ server, key }) => dpopAuth((await signIn(server)).token, key),
      ],
    ];

  for (const [name, makeInterceptor] of refusals) {
    it(`answers Unauthenticated to ${name}`, async () => {
      const session = await dpopSession();
      const demo = client(create, session.server, await makeInterceptor(session));
      const error = await demo.whoAmI({}).then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );
      expect(error?.code).toBe(Code.Unauthenticated);
      expect(error?.rawMessage.length).toBeLessThan(80);
      expect(error?.rawMessage).not.toContain(session.token);
      expect(session.server.stats()).toMatchObject({ dpopCalls: 0, unauthenticated: 1 });
    });
  }

  it("answers Unauthenticated to the same proof sent twice (jti replay)", async () => {
    const { server, key, token } = await dpopSession();
    const proof = await key.proof(`${server.url}/demo.v1.DemoService/WhoAmI`, {
      accessToken: token,
    });
    const replaying: Interceptor = (next) => (req) => {
      req.header.set("authorization", `DPoP ${token}`);
      req.header.set("dpop", proof);
      return next(req);
    };
    const demo = client(create, server, replaying);
    expect(await codeOf(demo.whoAmI({}))).toBe("ok");
    expect(await codeOf(demo.whoAmI({}))).toBe(Code.Unauthenticated);
  });

  it("challenges a call without a nonce (dpop-nonce, www-authenticate), then accepts it with the nonce", async () => {
    const { server, key, token } = await dpopSession();
    expect((await postJson(`${server.url}/test/dpop-nonces`, { on: true })).status).toBe(204);
    const challenged = await client(create, server, dpopAuth(token, key))
      .whoAmI({})
      .then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );
    expect(challenged?.code).toBe(Code.Unauthenticated);
    const nonce = challenged?.metadata.get("dpop-nonce");
    expect(nonce).toMatch(/^[A-Za-z0-9_-]{16,}$/);
    expect(challenged?.metadata.get("www-authenticate")).toMatch(/^DPoP error="use_dpop_nonce"/);

    let answeredNonce: string | null = null;
    const demo = client(
      create,
      server,
      dpopAuth(token, key, () => ({ nonce: nonce ?? "" })),
    );
    const res = await demo.whoAmI(
      {},
      { onHeader: (headers) => (answeredNonce = headers.get("dpop-nonce")) },
    );
    expect(res.subject).toBe("alice");
    expect(answeredNonce).toBe(nonce);
    const { error } = await drain(demo.ticks({ count: 2 }));
    expect(error).toBeUndefined();
    expect(server.stats()).toMatchObject({ dpopNonceChallenges: 1, dpopCalls: 2 });
  });

  it("a nonce challenge on a server stream also carries the nonce", async () => {
    const { server, key, token } = await dpopSession();
    expect((await postJson(`${server.url}/test/dpop-nonces`, { on: true })).status).toBe(204);
    const { error } = await drain(client(create, server, dpopAuth(token, key)).ticks({ count: 1 }));
    expect(ConnectError.from(error).code).toBe(Code.Unauthenticated);
    expect(ConnectError.from(error).metadata.get("dpop-nonce")).toBeTruthy();
  });
});

describe("DPoP over native gRPC (behind Envoy)", () => {
  it("accepts a DPoP-bound call whose proof names the gRPC URL", async () => {
    const server = await startTestServer({ behindEnvoy: true });
    const key = await makeDpopKey();
    const { token } = await signInWithDpop(server, key);
    const transport = createGrpcTransport({
      baseUrl: server.grpcUrl ?? "",
      interceptors: [dpopAuth(token, key)],
    });
    expect((await createClient(DemoService, transport).whoAmI({})).subject).toBe("alice");
  });
});

function now(): number {
  return Math.floor(Date.now() / 1000);
}

function otherKey() {
  return generateKeyPair("ES256", { extractable: true });
}
