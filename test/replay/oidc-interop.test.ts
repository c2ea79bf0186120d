/**
 * The interceptor↔source contract against servers no one here wrote: oidc-provider issues the
 * tokens, a resource server verifies them (and DPoP proofs, with nonces) against its JWKS. Both
 * adapters, counted at the provider and at the API.
 */
import { type Client, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { GrpcWebClientBase } from "grpc-web";
import { generateKeyPair } from "jose";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";
import { createGrpcWebInterceptors } from "../../src/grpc-web.js";
import {
  createAuthInterceptor,
  createTokenSource,
  dpopProofs,
  refreshTokenGrant,
  type TokenEvent,
  type TokenSource,
} from "../../src/index.js";
import { grpcWebWhoAmI } from "../helpers/grpc-web-calls.js";
import { type OidcProvider, startOidcProvider } from "../helpers/oidc-provider.js";
import { signIn } from "../helpers/oidc-sign-in.js";
import { type ResourceServer, startResourceServer } from "../helpers/resource-server.js";
import { useXmlHttpRequest } from "../helpers/xhr.js";

useXmlHttpRequest();

type Adapter = "connect" | "grpc-web transport" | "grpc-web runtime";
const adapters: Adapter[] = ["connect", "grpc-web transport", "grpc-web runtime"];

/** WhoAmI through one adapter, resolving to the subject. */
function whoAmI(adapter: Adapter, api: ResourceServer, tokens: TokenSource): () => Promise<string> {
  if (adapter === "grpc-web runtime") {
    const client = new GrpcWebClientBase({
      format: "binary",
      ...createGrpcWebInterceptors(tokens, { baseUrl: api.url }),
    });
    return async () => (await grpcWebWhoAmI(client, api.url)).subject;
  }
  const interceptors: Interceptor[] = [createAuthInterceptor(tokens)];
  const transport =
    adapter === "connect"
      ? createConnectTransport({ baseUrl: api.url, interceptors })
      : createGrpcWebTransport({ baseUrl: api.url, interceptors });
  const client: Client<typeof DemoService> = createClient(DemoService, transport);
  return async () => (await client.whoAmI({})).subject;
}

/** A DPoP source over the provider's refresh-token grant, with the key the sign-in bound. */
async function dpopSource(provider: OidcProvider) {
  const keyPair = await generateKeyPair("ES256");
  const { refresh_token } = await signIn(provider, { dpop: keyPair });
  const events: TokenEvent[] = [];
  const tokens = createTokenSource({
    fetchToken: refreshTokenGrant({
      endpoint: provider.token,
      clientId: provider.clientId,
      refreshToken: refresh_token,
    }),
    dpop: dpopProofs({ keyPair }),
  });
  tokens.subscribe((event) => events.push(event));
  return { tokens, events };
}

/** A source that delegates every member of the documented TokenSource, as an app's wrapper. */
function delegating(source: TokenSource, proven: string[]): TokenSource {
  return {
    getToken: (options) => source.getToken(options),
    refresh: (rejected, options) => source.refresh(rejected, options),
    invalidate: (rejected) => source.invalidate(rejected),
    clear: () => source.clear(),
    subscribe: (listener) => source.subscribe(listener),
    peek: () => source.peek(),
    current: () => source.current?.(),
    proven(token) {
      proven.push(token);
      source.proven?.(token);
    },
    proofFor: (token) => source.proofFor?.(token),
  };
}

describe("DPoP nonces at a resource server", () => {
  let provider: OidcProvider;
  let api: ResourceServer;
  beforeAll(async () => {
    provider = await startOidcProvider();
    api = await startResourceServer(provider, { requireNonce: true });
  });
  afterAll(async () => {
    await api.close();
    await provider.close();
  });
  beforeEach(() => api.resetStats());

  it.each(adapters)(
    "answers a new nonce with one replay per call and no token request, 50 calls in flight (%s)",
    async (adapter) => {
      const { tokens } = await dpopSource(provider);
      const call = whoAmI(adapter, api, tokens);
      // The first call learns the nonce: one challenge, one replay.
      expect(await call()).toBe("alice");
      provider.reset();
      api.resetStats();
      api.rotateNonce();

      const subjects = await Promise.all(Array.from({ length: 50 }, () => call()));

      expect(subjects).toEqual(Array(50).fill("alice"));
      expect(provider.stats()).toMatchObject({ tokenRequests: 0 });
      const stats = api.stats();
      // Each call was refused at most once for the nonce, and never for its token.
      expect(stats.accepted).toBe(50);
      expect(stats.refused.use_dpop_nonce ?? 0).toBeGreaterThan(0);
      expect(stats.refused.use_dpop_nonce ?? 0).toBeLessThanOrEqual(50);
      expect(stats.unauthenticated).toBe(stats.refused.use_dpop_nonce);
      expect(stats.calls.WhoAmI).toBe(50 + (stats.refused.use_dpop_nonce ?? 0));
    },
  );
});

describe("the documented TokenSource contract", () => {
  let provider: OidcProvider;
  let api: ResourceServer;
  beforeAll(async () => {
    provider = await startOidcProvider();
    api = await startResourceServer(provider);
  });
  afterAll(async () => {
    await api.close();
    await provider.close();
  });

  it.each(adapters)(
    "keeps DPoP and the proving call through a wrapper that delegates every member (%s)",
    async (adapter) => {
      const { tokens } = await dpopSource(provider);
      const proven: string[] = [];
      const call = whoAmI(adapter, api, delegating(tokens, proven));
      api.resetStats();

      expect(await call()).toBe("alice");
      expect(await call()).toBe("alice");

      // A bound token sent as Bearer would be refused: both calls went as DPoP with a proof.
      expect(api.stats()).toMatchObject({ accepted: 2, dpopAccepted: 2, unauthenticated: 0 });
      // The first success proved the token; the second took it without a wait.
      expect(proven).toEqual([await tokens.getToken()]);
      expect(tokens.current?.()).toBe(await tokens.getToken());
    },
  );

  it.each(adapters)(
    "tells a custom fetchToken which token the server refused, and replays once (%s)",
    async (adapter) => {
      // An app's fetchToken over an SDK that caches: it must know when its cached token is bad.
      const { refresh_token } = await signIn(provider);
      const sdk = createTokenSource({
        fetchToken: refreshTokenGrant({
          endpoint: provider.token,
          clientId: provider.clientId,
          refreshToken: refresh_token,
        }),
      });
      const asked: (string | undefined)[] = [];
      const tokens = createTokenSource({
        fetchToken: ({ rejected }) => {
          asked.push(rejected);
          return rejected === undefined ? sdk.getToken() : sdk.refresh(rejected);
        },
      });
      const first = await tokens.getToken();
      api.revokeAccessToken(first);
      api.resetStats();

      expect(await whoAmI(adapter, api, tokens)()).toBe("alice");

      expect(asked).toEqual([undefined, first]);
      expect(api.stats()).toMatchObject({ accepted: 1, unauthenticated: 1 });
      expect(api.stats().refused).toEqual({ denied_token: 1 });
    },
  );
});

describe("token types", () => {
  let provider: OidcProvider;
  let api: ResourceServer;
  beforeAll(async () => {
    // No DPoP at the provider: it issues Bearer tokens whatever the client proves.
    provider = await startOidcProvider({ dpop: false });
    api = await startResourceServer(provider);
  });
  afterAll(async () => {
    await api.close();
    await provider.close();
  });

  it.each(adapters)(
    "sends a Bearer token from a DPoP source without a proof, and says so once (%s)",
    async (adapter) => {
      const { refresh_token } = await signIn(provider);
      const events: TokenEvent[] = [];
      const tokens = createTokenSource({
        fetchToken: refreshTokenGrant({
          endpoint: provider.token,
          clientId: provider.clientId,
          refreshToken: refresh_token,
        }),
        dpop: dpopProofs(),
      });
      tokens.subscribe((event) => events.push(event));
      const call = whoAmI(adapter, api, tokens);
      api.resetStats();

      expect(await call()).toBe("alice");
      await tokens.refresh(await tokens.getToken());
      expect(await call()).toBe("alice");

      expect(api.stats()).toMatchObject({ accepted: 2, dpopAccepted: 0, unauthenticated: 0 });
      expect(events.filter((event) => event.type === "bearer-token")).toHaveLength(1);
      expect(tokens.proofFor?.(await tokens.getToken())).toBeUndefined();
    },
  );

  it("fails a token of a type it cannot send with Internal, naming the type", async () => {
    const tokens = createTokenSource({
      fetchToken: async () => ({ token: "abc", tokenType: "MAC" }),
    });
    await expect(tokens.getToken()).rejects.toMatchObject({
      code: 13,
      message: expect.stringContaining('"MAC"'),
    });
  });

  it("takes the token type case-insensitively, and DPoP only on a source with dpop", async () => {
    const bearer = createTokenSource({
      fetchToken: async () => ({ token: "a", tokenType: "bEaReR" }),
    });
    expect(await bearer.getToken()).toBe("a");
    const dpop = createTokenSource({
      fetchToken: async () => ({ token: "b", tokenType: "dpop" }),
      dpop: dpopProofs(),
    });
    expect(await dpop.getToken()).toBe("b");
    expect(dpop.proofFor?.("b")?.scheme).toBe("DPoP");
    const unbound = createTokenSource({
      fetchToken: async () => ({ token: "c", tokenType: "DPoP" }),
    });
    await expect(unbound.getToken()).rejects.toMatchObject({ code: 13 });
  });
});
