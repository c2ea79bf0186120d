import { Code, ConnectError } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { decodeJwt, generateKeyPair, SignJWT, UnsecuredJWT } from "jose";
import { describe, expect, it } from "vitest";
import type { DemoServer } from "../../demo/server/server.js";
import { sleep } from "../helpers/wait.js";
import {
  browserTransports,
  codeOf,
  createDemoClient,
  drain,
  fetchToken,
  startTestServer,
} from "./fixtures.js";

/** A token with the server's claims, signed by a key the server has never seen. */
async function forgeToken(server: DemoServer): Promise<string> {
  const { privateKey } = await generateKeyPair("ES256");
  return new SignJWT({})
    .setProtectedHeader({ alg: "ES256", kid: server.issuer.keyId })
    .setIssuer(server.issuer.issuer)
    .setAudience(server.issuer.audience)
    .setSubject("alice")
    .setIssuedAt()
    .setExpirationTime("5m")
    .setJti("forged")
    .sign(privateKey);
}

describe.each(browserTransports)("DemoService over $name", ({ create }) => {
  it("WhoAmI returns the subject, expiry and id of the calling token", async () => {
    const server = await startTestServer();
    const token = await fetchToken(server, "bob", "builder");
    const res = await createDemoClient(create, server.url, token).whoAmI({});
    const claims = decodeJwt(token);
    expect(res.subject).toBe("bob");
    expect(res.expiresAtUnix).toBe(BigInt(claims.exp ?? 0));
    expect(res.tokenId).toBe(claims.jti);
  });

  it("Ticks streams the requested number of ticks, each with the subject", async () => {
    const server = await startTestServer();
    const client = createDemoClient(create, server.url, await fetchToken(server));
    const { items, error } = await drain(client.ticks({ count: 3, intervalMs: 10 }));
    expect(error).toBeUndefined();
    expect(items.map((t) => [t.n, t.subject])).toEqual([
      [1, "alice"],
      [2, "alice"],
      [3, "alice"],
    ]);
  });

  it("Ticks sends five ticks when no count is given", async () => {
    const server = await startTestServer();
    const client = createDemoClient(create, server.url, await fetchToken(server));
    expect((await drain(client.ticks({}))).items).toHaveLength(5);
  });

  it("Ticks rejects more than 1000 ticks or more than 5000 ms between them", async () => {
    const server = await startTestServer();
    const client = createDemoClient(create, server.url, await fetchToken(server));
    const tooMany = await drain(client.ticks({ count: 1001 }));
    expect(ConnectError.from(tooMany.error).code).toBe(Code.InvalidArgument);
    const tooSlow = await drain(client.ticks({ intervalMs: 5001 }));
    expect(ConnectError.from(tooSlow.error).code).toBe(Code.InvalidArgument);
  });

  it("answers Unauthenticated to a call without a token", async () => {
    const server = await startTestServer();
    const client = createDemoClient(create, server.url, undefined);
    expect(await codeOf(client.whoAmI({}))).toBe(Code.Unauthenticated);
    const { items, error } = await drain(client.ticks({ count: 2 }));
    expect(items).toEqual([]);
    expect(ConnectError.from(error).code).toBe(Code.Unauthenticated);
  });

  it("answers Unauthenticated to a token that is not a JWT", async () => {
    const server = await startTestServer();
    const client = createDemoClient(create, server.url, "not-a-jwt");
    expect(await codeOf(client.whoAmI({}))).toBe(Code.Unauthenticated);
  });

  it("answers Unauthenticated once the token was revoked", async () => {
    const server = await startTestServer();
    const client = createDemoClient(create, server.url, await fetchToken(server));
    expect(await codeOf(client.whoAmI({}))).toBe("ok");
    server.revokeAll();
    expect(await codeOf(client.whoAmI({}))).toBe(Code.Unauthenticated);
    const fresh = createDemoClient(create, server.url, await fetchToken(server));
    expect(await codeOf(fresh.whoAmI({}))).toBe("ok");
  });

  it("answers Unauthenticated to a token signed by another key", async () => {
    const server = await startTestServer();
    const client = createDemoClient(create, server.url, await forgeToken(server));
    expect(await codeOf(client.whoAmI({}))).toBe(Code.Unauthenticated);
  });

  it("answers Unauthenticated to an unsigned (alg none) token", async () => {
    const server = await startTestServer();
    const unsigned = new UnsecuredJWT({ jti: "x" })
      .setIssuer(server.issuer.issuer)
      .setAudience(server.issuer.audience)
      .setSubject("alice")
      .setIssuedAt()
      .setExpirationTime("5m")
      .encode();
    const client = createDemoClient(create, server.url, unsigned);
    expect(await codeOf(client.whoAmI({}))).toBe(Code.Unauthenticated);
  });

  it("answers Unauthenticated to a token from a server with another audience", async () => {
    const server = await startTestServer();
    const other = await startTestServer({ jwtAudience: "someone.else" });
    const client = createDemoClient(create, server.url, await fetchToken(other));
    expect(await codeOf(client.whoAmI({}))).toBe(Code.Unauthenticated);
  });

  it("ends Ticks with Unauthenticated after fail_after ticks in test mode", async () => {
    const server = await startTestServer({ testMode: true });
    const client = createDemoClient(create, server.url, await fetchToken(server));
    const { items, error } = await drain(client.ticks({ count: 5, failAfter: 2 }));
    expect(items.map((t) => t.n)).toEqual([1, 2]);
    expect(ConnectError.from(error).code).toBe(Code.Unauthenticated);
    expect(server.stats().unauthenticated).toBe(1);
  });

  it("ignores fail_after outside test mode", async () => {
    const server = await startTestServer();
    const client = createDemoClient(create, server.url, await fetchToken(server));
    const { items, error } = await drain(client.ticks({ count: 3, failAfter: 1 }));
    expect(error).toBeUndefined();
    expect(items).toHaveLength(3);
  });
});

describe("token verification", () => {
  it("answers Unauthenticated once the token has expired", async () => {
    const server = await startTestServer({ tokenTtlSeconds: 1 });
    const token = await fetchToken(server);
    // exp is whole seconds: after one second plus margin, exp <= now for certain. Real time: the
    // server's verifier (jose) reads new Date(), which no test clock reaches.
    await sleep(1100);
    for (const create of [createConnectTransport, createGrpcWebTransport]) {
      const client = createDemoClient(create, server.url, token);
      expect(await codeOf(client.whoAmI({}))).toBe(Code.Unauthenticated);
    }
  });

  it("answers Unauthenticated to an authorization header that is not a bearer token", async () => {
    const server = await startTestServer();
    const token = await fetchToken(server);
    for (const authorization of [`Basic ${token}`, `Bearer`, `Bearer ${token} extra`, token]) {
      const res = await fetch(`${server.url}/demo.v1.DemoService/WhoAmI`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization },
        body: "{}",
      });
      expect(res.status, authorization.slice(0, 12)).toBe(401);
      expect(await res.json()).toMatchObject({ code: "unauthenticated" });
    }
  });

  it("accepts the bearer scheme in any letter case", async () => {
    const server = await startTestServer();
    const res = await fetch(`${server.url}/demo.v1.DemoService/WhoAmI`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        authorization: `bearer ${await fetchToken(server)}`,
      },
      body: "{}",
    });
    expect(res.status).toBe(200);
  });
});

describe("startDemoServer close()", () => {
  it("ends an open stream promptly", async () => {
    const server = await startTestServer();
    const client = createDemoClient(createConnectTransport, server.url, await fetchToken(server));
    const stream = client.ticks({ count: 3, intervalMs: 5000 })[Symbol.asyncIterator]();
    expect((await stream.next()).value?.n).toBe(1);
    const started = Date.now();
    await server.close();
    await expect(stream.next()).rejects.toBeDefined();
    expect(Date.now() - started).toBeLessThan(1000);
  });
});
