import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { decodeJwt, generateKeyPair } from "jose";
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "vitest";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";
import { signDpopProof, thumbprintOf } from "./dpop-proof.js";
import { type OidcProvider, startOidcProvider } from "./oidc-provider.js";
import { signIn } from "./oidc-sign-in.js";
import { type ResourceServer, startResourceServer } from "./resource-server.js";

// The harness proven against itself with plain fetch and URLSearchParams: none of the library.

type Json = Record<string, unknown>;

/** A form-encoded refresh, as RFC 6749 §6 wants it. */
async function refresh(
  provider: OidcProvider,
  refreshToken: string,
  dpop?: { key: CryptoKeyPair; nonce?: string },
): Promise<{ status: number; body: Json; headers: Headers }> {
  const headers: Record<string, string> = {};
  if (dpop) {
    headers.dpop = await signDpopProof(dpop.key, {
      htu: provider.token,
      ...(dpop.nonce !== undefined && { nonce: dpop.nonce }),
    });
  }
  const res = await fetch(provider.token, {
    method: "POST",
    headers,
    body: new URLSearchParams({
      grant_type: "refresh_token",
      refresh_token: refreshToken,
      client_id: provider.clientId,
    }),
  });
  return { status: res.status, body: (await res.json()) as Json, headers: res.headers };
}

/** A unary Connect call to WhoAmI with JSON, as a browser's fetch would make it. */
async function whoAmI(
  api: ResourceServer,
  authorization?: { scheme: "Bearer" | "DPoP"; token: string; proof?: string },
): Promise<{ status: number; body: Json; headers: Headers }> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (authorization) headers.authorization = `${authorization.scheme} ${authorization.token}`;
  if (authorization?.proof) headers.dpop = authorization.proof;
  const res = await fetch(`${api.url}/demo.v1.DemoService/WhoAmI`, {
    method: "POST",
    headers,
    body: "{}",
  });
  return { status: res.status, body: (await res.json()) as Json, headers: res.headers };
}

const whoAmIUrl = (api: ResourceServer) => `${api.url}/demo.v1.DemoService/WhoAmI`;

describe("startOidcProvider and signIn", () => {
  let provider: OidcProvider;
  beforeAll(async () => {
    provider = await startOidcProvider();
  });
  afterAll(() => provider.close());
  beforeEach(() => provider.reset());

  test("signs in with PKCE and answers a Bearer JWT for the resource, a refresh and an ID token", async () => {
    const tokens = await signIn(provider, { login: "bob" });

    expect(tokens.token_type).toBe("Bearer");
    expect(tokens.expires_in).toBe(300);
    expect(tokens.refresh_token).toEqual(expect.any(String));
    expect(decodeJwt(tokens.id_token)).toMatchObject({ sub: "bob", aud: provider.clientId });
    const claims = decodeJwt(tokens.access_token);
    expect(claims).toMatchObject({ sub: "bob", iss: provider.issuer, aud: provider.resource });
    expect(claims.cnf).toBeUndefined();
    expect(provider.stats()).toMatchObject({
      tokenRequests: 1,
      grants: { authorization_code: 1 },
      tokenErrors: {},
      serverErrors: 0,
    });
  });

  test("binds the code and the tokens to the DPoP key given at sign-in", async () => {
    const key = await generateKeyPair("ES256");

    const tokens = await signIn(provider, { dpop: key });

    expect(tokens.token_type).toBe("DPoP");
    expect(decodeJwt(tokens.access_token).cnf).toEqual({ jkt: await thumbprintOf(key) });
    expect(provider.stats()).toMatchObject({ tokenRequests: 1, grants: { authorization_code: 1 } });
  });

  test("rotates the refresh token, and a spent one answers invalid_grant and revokes the grant", async () => {
    const first = await signIn(provider);

    const rotated = await refresh(provider, first.refresh_token);
    expect(rotated.status).toBe(200);
    expect(rotated.body.refresh_token).not.toBe(first.refresh_token);
    const reused = await refresh(provider, first.refresh_token);
    expect(reused).toMatchObject({ status: 400, body: { error: "invalid_grant" } });
    // Reuse detection revoked the whole grant: the rotated token is dead too.
    const afterReuse = await refresh(provider, rotated.body.refresh_token as string);
    expect(afterReuse).toMatchObject({ status: 400, body: { error: "invalid_grant" } });

    expect(provider.stats()).toMatchObject({
      tokenRequests: 4,
      grants: { authorization_code: 1, refresh_token: 1 },
      invalidGrants: 2,
      refreshTokenReuse: 1,
      refreshTokensConsumed: 1,
      grantsRevoked: 1,
    });
  });

  test("refuses a JSON-bodied refresh with invalid_request (the bug the library's refresh grant had)", async () => {
    const { refresh_token } = await signIn(provider);

    const res = await fetch(provider.token, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        grant_type: "refresh_token",
        refresh_token,
        client_id: provider.clientId,
      }),
    });

    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      error: "invalid_request",
      error_description:
        "only application/x-www-form-urlencoded content-type bodies are supported on POST /token",
    });
    expect(provider.stats()).toMatchObject({
      tokenRequests: 2,
      tokenErrors: { invalid_request: 1 },
    });
    // The refresh token itself is still good: nothing was spent.
    expect((await refresh(provider, refresh_token)).status).toBe(200);
  });

  test("revoking the refresh token makes the next refresh answer invalid_grant", async () => {
    const { refresh_token } = await signIn(provider);

    const res = await fetch(provider.revocation, {
      method: "POST",
      body: new URLSearchParams({
        token: refresh_token,
        token_type_hint: "refresh_token",
        client_id: provider.clientId,
      }),
    });
    expect(res.status).toBe(200);

    expect(await refresh(provider, refresh_token)).toMatchObject({
      status: 400,
      body: { error: "invalid_grant" },
    });
    expect(provider.stats()).toMatchObject({
      revocationRequests: 1,
      revocations: 1,
      revocationErrors: {},
      invalidGrants: 1,
    });
  });

  test("a DPoP-bound refresh token needs a proof by its own key", async () => {
    const key = await generateKeyPair("ES256");
    const { refresh_token } = await signIn(provider, { dpop: key });

    const stranger = await refresh(provider, refresh_token, {
      key: await generateKeyPair("ES256"),
    });
    expect(stranger).toMatchObject({
      status: 400,
      body: { error: "invalid_grant", error_description: "grant request is invalid" },
    });
    const owner = await refresh(provider, refresh_token, { key });
    expect(owner.status).toBe(200);
    expect(owner.body.token_type).toBe("DPoP");

    expect(provider.events).toContainEqual({
      type: "grant.error",
      error: "invalid_grant",
      description: "grant request is invalid",
      detail: "failed jkt verification",
    });
    expect(provider.stats()).toMatchObject({ tokenRequests: 3, invalidGrants: 1 });
  });
});

describe("startOidcProvider with requireDpopNonce", () => {
  let provider: OidcProvider;
  beforeAll(async () => {
    provider = await startOidcProvider({ requireDpopNonce: true });
  });
  afterAll(() => provider.close());

  test("answers a proof without a nonce 400 use_dpop_nonce with a DPoP-Nonce header", async () => {
    const key = await generateKeyPair("ES256");
    // signIn meets the challenge once and retries with the nonce.
    const { refresh_token } = await signIn(provider, { dpop: key });
    expect(provider.stats()).toMatchObject({ tokenRequests: 2, dpopNonceChallenges: 1 });

    const challenged = await refresh(provider, refresh_token, { key });
    expect(challenged.status).toBe(400);
    expect(challenged.body.error).toBe("use_dpop_nonce");
    const nonce = challenged.headers.get("dpop-nonce");
    expect(nonce).toEqual(expect.any(String));
    // The token endpoint says it in the body only; WWW-Authenticate is for resource servers.
    expect(challenged.headers.get("www-authenticate")).toBeNull();

    const answered = await refresh(provider, refresh_token, { key, nonce: nonce as string });
    expect(answered.status).toBe(200);
    expect(provider.stats()).toMatchObject({
      tokenRequests: 4,
      dpopNonceChallenges: 2,
      grants: { authorization_code: 1, refresh_token: 1 },
    });
  });
});

describe("startResourceServer", () => {
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
  beforeEach(() => api.resetStats());

  test("accepts a Bearer token and a DPoP-bound token with its proof", async () => {
    const bearer = await signIn(provider, { login: "bob" });
    const key = await generateKeyPair("ES256");
    const bound = await signIn(provider, { dpop: key });

    const plain = await whoAmI(api, { scheme: "Bearer", token: bearer.access_token });
    expect(plain).toMatchObject({ status: 200, body: { subject: "bob" } });
    const proof = await signDpopProof(key, {
      htu: whoAmIUrl(api),
      accessToken: bound.access_token,
    });
    const dpop = await whoAmI(api, { scheme: "DPoP", token: bound.access_token, proof });
    expect(dpop).toMatchObject({ status: 200, body: { subject: "alice" } });

    expect(api.stats()).toEqual({
      calls: { WhoAmI: 2 },
      accepted: 2,
      dpopAccepted: 1,
      unauthenticated: 0,
      refused: {},
    });
  });

  test("refuses a DPoP-bound token sent as Bearer, with a DPoP challenge", async () => {
    const { access_token } = await signIn(provider, { dpop: await generateKeyPair("ES256") });

    const res = await whoAmI(api, { scheme: "Bearer", token: access_token });

    expect(res).toMatchObject({ status: 401, body: { code: "unauthenticated" } });
    expect(res.headers.get("www-authenticate")).toMatch(/^DPoP error="invalid_token"/);
    expect(api.stats()).toMatchObject({
      unauthenticated: 1,
      refused: { bound_token_as_bearer: 1 },
    });
  });

  test("refuses a replayed proof and a proof for another URL", async () => {
    const key = await generateKeyPair("ES256");
    const { access_token } = await signIn(provider, { dpop: key });
    const proof = await signDpopProof(key, { htu: whoAmIUrl(api), accessToken: access_token });
    const elsewhere = await signDpopProof(key, {
      htu: `${api.url}/demo.v1.DemoService/Ticks`,
      accessToken: access_token,
    });

    expect((await whoAmI(api, { scheme: "DPoP", token: access_token, proof })).status).toBe(200);
    const replay = await whoAmI(api, { scheme: "DPoP", token: access_token, proof });
    const wrongUrl = await whoAmI(api, { scheme: "DPoP", token: access_token, proof: elsewhere });

    for (const res of [replay, wrongUrl]) {
      expect(res.status).toBe(401);
      expect(res.headers.get("www-authenticate")).toMatch(/^DPoP error="invalid_dpop_proof"/);
    }
    expect(api.stats()).toMatchObject({ accepted: 1, refused: { invalid_dpop_proof: 2 } });
  });

  test("refuses a token denied by the test, and only that one", async () => {
    const denied = await signIn(provider);
    const other = await signIn(provider);

    api.revokeAccessToken(denied.access_token);

    const res = await whoAmI(api, { scheme: "Bearer", token: denied.access_token });
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toMatch(/^Bearer error="invalid_token"/);
    expect((await whoAmI(api, { scheme: "Bearer", token: other.access_token })).status).toBe(200);
    expect(api.stats()).toMatchObject({ accepted: 1, refused: { denied_token: 1 } });
  });

  test("refuses a call without a token and a token of another issuer", async () => {
    const stranger = await startOidcProvider();
    try {
      const foreign = await signIn(stranger);
      expect((await whoAmI(api)).status).toBe(401);
      expect((await whoAmI(api, { scheme: "Bearer", token: foreign.access_token })).status).toBe(
        401,
      );
    } finally {
      await stranger.close();
    }
    expect(api.stats()).toMatchObject({ refused: { missing_token: 1, invalid_token: 1 } });
  });

  test("serves gRPC-Web and gRPC, and the DPoP challenge reaches the client on both", async () => {
    const { access_token } = await signIn(provider, { dpop: await generateKeyPair("ES256") });
    const asBearer: Interceptor = (next) => (req) => {
      req.header.set("authorization", `Bearer ${access_token}`);
      return next(req);
    };

    for (const transport of [
      createGrpcWebTransport({ baseUrl: api.url, httpVersion: "1.1", interceptors: [asBearer] }),
      createGrpcTransport({ baseUrl: api.url, interceptors: [asBearer] }),
    ]) {
      const error = await createClient(DemoService, transport)
        .whoAmI({})
        .then(() => undefined, ConnectError.from);
      expect(error?.code).toBe(Code.Unauthenticated);
      expect(error?.metadata.get("www-authenticate")).toMatch(/^DPoP error="invalid_token"/);
    }
    expect(api.stats()).toMatchObject({ refused: { bound_token_as_bearer: 2 } });
  });

  test("answers CORS preflights for allowed origins and exposes the challenge headers", async () => {
    const origin = "http://127.0.0.1:5173";
    const browserApi = await startResourceServer(provider, { corsOrigins: [origin] });
    try {
      const preflight = await fetch(whoAmIUrl(browserApi), {
        method: "OPTIONS",
        headers: {
          origin,
          "access-control-request-method": "POST",
          "access-control-request-headers": "authorization, dpop, content-type",
        },
      });
      expect(preflight.status).toBe(204);
      expect(preflight.headers.get("access-control-allow-origin")).toBe(origin);
      expect(preflight.headers.get("access-control-allow-headers")).toMatch(/dpop/);
      const call = await fetch(whoAmIUrl(browserApi), {
        method: "POST",
        headers: { origin, "content-type": "application/json" },
        body: "{}",
      });
      expect(call.status).toBe(401);
      const exposed = call.headers.get("access-control-expose-headers") ?? "";
      for (const name of ["www-authenticate", "dpop-nonce", "grpc-status"]) {
        expect(exposed).toContain(name);
      }
    } finally {
      await browserApi.close();
    }
  });
});

describe("startResourceServer with requireNonce", () => {
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

  test("refuses a proof with a stale nonce with use_dpop_nonce and the new nonce", async () => {
    const key = await generateKeyPair("ES256");
    const { access_token } = await signIn(provider, { dpop: key });
    const call = async (nonce?: string) =>
      whoAmI(api, {
        scheme: "DPoP",
        token: access_token,
        proof: await signDpopProof(key, {
          htu: whoAmIUrl(api),
          accessToken: access_token,
          ...(nonce !== undefined && { nonce }),
        }),
      });

    const first = await call();
    expect(first.status).toBe(401);
    expect(first.headers.get("www-authenticate")).toMatch(/^DPoP error="use_dpop_nonce"/);
    const nonce = first.headers.get("dpop-nonce") as string;
    expect(nonce).toBe(api.nonce());
    const good = await call(nonce);
    expect(good.status).toBe(200);
    expect(good.headers.get("dpop-nonce")).toBe(nonce);

    const fresh = api.rotateNonce();
    const stale = await call(nonce);
    expect(stale.status).toBe(401);
    expect(stale.headers.get("www-authenticate")).toMatch(/^DPoP error="use_dpop_nonce"/);
    expect(stale.headers.get("dpop-nonce")).toBe(fresh);
    expect((await call(fresh)).status).toBe(200);

    expect(api.stats()).toMatchObject({
      calls: { WhoAmI: 4 },
      accepted: 2,
      refused: { use_dpop_nonce: 2 },
    });
  });
});
