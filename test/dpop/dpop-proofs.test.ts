/**
 * DPoP (RFC 9449) from the client's side, against the demo backend, which verifies every proof
 * with jose: tokens bound to the source's key, proofs per attempt, nonce challenges.
 */
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { describe, expect, it, vi } from "vitest";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";
import type { BindableDpopProofs } from "../../src/dpop/dpop-proofs.js";
import {
  createAuthInterceptor,
  createTokenSource,
  type DpopProofs,
  dpopProofs,
  passwordGrant,
  type TokenGrant,
} from "../../src/index.js";
import { startTestServer } from "../server/fixtures.js";

/** The proofs as a token source binds them (internal). */
const bindable = (proofs: DpopProofs) => proofs as BindableDpopProofs;

const transports = {
  "grpc-web": createGrpcWebTransport,
  connect: createConnectTransport,
} as const;

function decode(jwt: string): { header: Record<string, unknown>; claims: Record<string, unknown> } {
  const [header, claims] = jwt.split(".").map((part) => {
    try {
      return JSON.parse(Buffer.from(part, "base64url").toString()) as Record<string, unknown>;
    } catch {
      return {};
    }
  }) as [Record<string, unknown>, Record<string, unknown>];
  return { header, claims };
}

async function makeWorld(kind: keyof typeof transports, options: { dpopNonces?: boolean } = {}) {
  const server = await startTestServer({ testMode: true, ...options });
  const tokens = createTokenSource({
    fetchToken: passwordGrant({
      endpoint: server.tokenUrl,
      credentials: { username: "alice", password: "wonderland" },
    }),
    dpop: dpopProofs(),
  });
  const sent: Headers[] = [];
  const record: Interceptor = (next) => (req) => {
    sent.push(new Headers(req.header));
    return next(req);
  };
  const client = createClient(
    DemoService,
    transports[kind]({
      baseUrl: server.url,
      interceptors: [createAuthInterceptor(tokens), record],
    }),
  );
  return { server, tokens, client, sent };
}

describe.each(Object.keys(transports) as (keyof typeof transports)[])("DPoP over %s", (kind) => {
  it("gets a DPoP-bound token and sends it with a fresh proof on unary and streaming calls", async () => {
    const { server, client, sent } = await makeWorld(kind);
    expect((await client.whoAmI({})).subject).toBe("alice");
    const ticks = [];
    for await (const tick of client.ticks({ count: 3 })) ticks.push(tick.n);
    expect(ticks).toEqual([1, 2, 3]);
    expect((await client.whoAmI({})).subject).toBe("alice");
    const stats = server.stats();
    expect(stats.dpopTokensIssued).toBe(1);
    expect(stats.dpopCalls).toBe(3);
    expect(stats.dpopKeys).toBe(1);
    const proofs = sent.map((header) => header.get("dpop") as string);
    expect(new Set(proofs).size).toBe(3);
    for (const [i, header] of sent.entries()) {
      expect(header.get("authorization")).toMatch(/^DPoP /);
      const { header: jose, claims } = decode(proofs[i] as string);
      expect(jose).toMatchObject({ typ: "dpop+jwt", alg: "ES256" });
      expect(Object.keys(jose.jwk as object).sort()).toEqual(["crv", "kty", "x", "y"]);
      expect(claims).toMatchObject({ htm: "POST" });
      expect(claims.htu).toBe(`${server.url}/demo.v1.DemoService/${i === 1 ? "Ticks" : "WhoAmI"}`);
      expect(typeof claims.ath).toBe("string");
    }
  });

  it("answers an RPC's nonce challenge with one replay, then keeps the nonce for later calls", async () => {
    const { server, client, sent } = await makeWorld(kind);
    await client.whoAmI({});
    server.dpop.setRequireNonces(true);
    expect((await client.whoAmI({})).subject).toBe("alice");
    expect(sent).toHaveLength(3);
    expect(server.stats().dpopNonceChallenges).toBe(1);
    expect(decode(sent[2]?.get("dpop") as string).claims.nonce).toEqual(expect.any(String));
    expect((await client.whoAmI({})).subject).toBe("alice");
    expect(sent).toHaveLength(4);
    expect(server.stats().dpopNonceChallenges).toBe(1);
    expect(server.stats().tokenRequests).toBe(1);
  });

  it("answers the token endpoint's nonce challenge with one more request", async () => {
    const { server, client, sent } = await makeWorld(kind, { dpopNonces: true });
    expect((await client.whoAmI({})).subject).toBe("alice");
    // The token answer carried the nonce for this origin: the call needed no challenge.
    expect(server.stats().tokenRequests).toBe(2);
    expect(server.stats().dpopNonceChallenges).toBe(1);
    expect(sent).toHaveLength(1);
  });

  it("makes at most two replays for a nonce challenge and a refused token, never a loop", async () => {
    const { server, client, sent } = await makeWorld(kind);
    await client.whoAmI({});
    server.revokeAll();
    server.dpop.setRequireNonces(true);
    expect((await client.whoAmI({})).subject).toBe("alice");
    expect(sent.length - 1).toBeLessThanOrEqual(3);
    expect(server.stats().tokenRequests).toBeLessThanOrEqual(3);
  });
});

describe("dpopProofs", () => {
  it("makes one non-extractable key per session: the same for every call, a new one after sign-out", async () => {
    const { tokens, client } = await makeWorld("connect");
    const generate = vi.spyOn(crypto.subtle, "generateKey");
    try {
      for (let i = 0; i < 5; i++) await client.whoAmI({});
      expect(generate).toHaveBeenCalledTimes(1);
      tokens.clear();
      await client.whoAmI({});
      expect(generate).toHaveBeenCalledTimes(2);
      const pairs = await Promise.all(
        generate.mock.results.map((result) => result.value as Promise<CryptoKeyPair>),
      );
      for (const pair of pairs) {
        expect(pair.privateKey.extractable).toBe(false);
        expect(pair.privateKey.type).toBe("private");
      }
      expect(pairs[0]).not.toBe(pairs[1]);
    } finally {
      generate.mockRestore();
    }
  });

  it("signs once per proof, and hashes a token once for all its proofs", async () => {
    const key = bindable(dpopProofs()).bind(undefined);
    await key.proof("POST", "https://api.example.com/x", "token-1");
    const sign = vi.spyOn(crypto.subtle, "sign");
    const digest = vi.spyOn(crypto.subtle, "digest");
    const generate = vi.spyOn(crypto.subtle, "generateKey");
    const proofs = new Set<string>();
    for (let i = 0; i < 10; i++) {
      proofs.add(await key.proof("POST", "https://api.example.com/x?q=1#f", "token-1"));
    }
    expect(sign).toHaveBeenCalledTimes(10);
    expect(digest).toHaveBeenCalledTimes(0);
    expect(generate).toHaveBeenCalledTimes(0);
    await key.proof("POST", "https://api.example.com/x", "token-2");
    expect(digest).toHaveBeenCalledTimes(1);
    expect(proofs.size).toBe(10);
    const { claims } = decode([...proofs][0] as string);
    expect(claims.htu).toBe("https://api.example.com/x");
    vi.restoreAllMocks();
  });

  it("keeps a nonce per origin and puts it in later proofs", async () => {
    const key = bindable(dpopProofs()).bind(undefined);
    const challenge = (nonce: string) => ({
      code: 16,
      headers: { "dpop-nonce": nonce, "www-authenticate": 'DPoP error="use_dpop_nonce"' },
    });
    expect(key.challenge("https://a.example/x", challenge("n-1"), undefined)).toBe(true);
    // The proof that was refused already carried n-1: one more attempt would not help.
    const sent = await key.prove("https://a.example/y", "token");
    expect(sent.nonce).toBe("n-1");
    expect(key.challenge("https://a.example/y", challenge("n-1"), sent)).toBe(false);
    // A new nonce on another answer is kept, but it is no challenge.
    expect(
      key.challenge(
        "https://c.example/y",
        { code: 5, headers: { "dpop-nonce": "n-2" } },
        undefined,
      ),
    ).toBeUndefined();
    // Unauthenticated with a nonce but without the DPoP challenge is no nonce challenge either.
    expect(
      key.challenge(
        "https://d.example/y",
        {
          code: 16,
          headers: { "dpop-nonce": "n-3", "www-authenticate": 'DPoP error="invalid_token"' },
        },
        undefined,
      ),
    ).toBeUndefined();
    expect(decode(await key.proof("POST", "https://c.example/z")).claims.nonce).toBe("n-2");
    expect(decode(await key.proof("POST", "https://a.example/z")).claims.nonce).toBe("n-1");
    expect(decode(await key.proof("POST", "https://b.example/z")).claims.nonce).toBeUndefined();
  });

  it("gives a custom fetchToken a signer for its own token endpoint", async () => {
    const server = await startTestServer({ testMode: true });
    const grant: TokenGrant = async ({ dpop, signal }) => {
      const proof = await dpop?.proof("POST", server.tokenUrl);
      const res = await fetch(server.tokenUrl, {
        method: "POST",
        headers: { "content-type": "application/json", ...(proof ? { dpop: proof } : {}) },
        body: JSON.stringify({ username: "alice", password: "wonderland" }),
        signal,
      });
      const answer = (await res.json()) as { access_token: string; token_type: string };
      expect(answer.token_type).toBe("DPoP");
      return answer.access_token;
    };
    const tokens = createTokenSource({ fetchToken: grant, dpop: dpopProofs() });
    const client = createClient(
      DemoService,
      createConnectTransport({
        baseUrl: server.url,
        interceptors: [createAuthInterceptor(tokens)],
      }),
    );
    expect((await client.whoAmI({})).subject).toBe("alice");
  });

  it("makes a stolen DPoP token useless without the key", async () => {
    const { server, tokens, client } = await makeWorld("connect");
    await client.whoAmI({});
    const stolen = await tokens.getToken();
    const thief = createClient(
      DemoService,
      createConnectTransport({
        baseUrl: server.url,
        interceptors: [
          (next) => (req) => {
            req.header.set("authorization", `DPoP ${stolen}`);
            return next(req);
          },
        ],
      }),
    );
    const error = await thief.whoAmI({}).catch((e: unknown) => ConnectError.from(e));
    expect((error as ConnectError).code).toBe(Code.Unauthenticated);
    const asBearer = createClient(
      DemoService,
      createConnectTransport({
        baseUrl: server.url,
        interceptors: [
          (next) => (req) => {
            req.header.set("authorization", `Bearer ${stolen}`);
            return next(req);
          },
        ],
      }),
    );
    const bearer = await asBearer.whoAmI({}).catch((e: unknown) => ConnectError.from(e));
    expect((bearer as ConnectError).code).toBe(Code.Unauthenticated);
  });

  it("rejects options that are not dpopProofs() with a TypeError", () => {
    expect(() => createTokenSource({ fetchToken: async () => "t", dpop: true as never })).toThrow(
      /dpop must be dpopProofs\(\)/,
    );
    expect(() => dpopProofs({ store: {} as never })).toThrow(/store/);
  });
});
