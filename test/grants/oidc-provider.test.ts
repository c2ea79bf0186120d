/**
 * The grants against a server no one here wrote: panva's oidc-provider (a certified OpenID
 * provider) on loopback, with a public SPA client, rotation, revocation and DPoP. The first
 * refresh token comes from a scripted authorization-code + PKCE sign-in. Counts are the
 * provider's own.
 */
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { generateKeyPair } from "jose";
import ky, { type Hooks } from "ky";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";
import {
  createAuthInterceptor,
  createTokenSource,
  type DpopProofs,
  dpopProofs,
  refreshTokenGrant,
  type TokenEvent,
  TokenFetchError,
  type TokenSource,
} from "../../src/index.js";
import { thumbprintOf } from "../helpers/dpop-proof.js";
import { type OidcProvider, startOidcProvider } from "../helpers/oidc-provider.js";
import { signIn } from "../helpers/oidc-sign-in.js";
import { type ResourceServer, startResourceServer } from "../helpers/resource-server.js";
import { type SecretWatch, watchSecrets } from "../helpers/secret-watch.js";

/**
 * A ky instance that records the tokens the provider answers with as secrets of `watch` (a
 * revocation's empty 200 is no JSON: it is skipped, not parsed).
 */
function recordingHttp(watch: SecretWatch) {
  const refreshTokens: string[] = [];
  const http = ky.create({
    hooks: {
      afterResponse: [
        async ({ response }) => {
          const text = response.ok ? await response.clone().text() : "";
          if (text === "") return;
          const body = JSON.parse(text) as Record<string, unknown>;
          if (typeof body.access_token === "string") watch.secret(body.access_token);
          if (typeof body.refresh_token === "string") {
            refreshTokens.push(body.refresh_token);
            watch.secret(body.refresh_token);
          }
        },
      ],
    },
  });
  return { http, refreshTokens };
}

/** What a test's source is built from; the refresh token is the sign-in's. */
interface SourceSetup {
  refreshToken: string;
  /** Extra hooks over the recording client, as `ky.extend` takes them. */
  hooks?: Hooks;
  dpop?: DpopProofs;
  revoke?: boolean;
}

function sourceFor(provider: OidcProvider, setup: SourceSetup) {
  const watch = watchSecrets("no-password-here");
  watch.secret(setup.refreshToken);
  const recording = recordingHttp(watch);
  const http = setup.hooks ? recording.http.extend({ hooks: setup.hooks }) : recording.http;
  const tokens = createTokenSource({
    fetchToken: refreshTokenGrant({
      endpoint: provider.token,
      clientId: provider.clientId,
      refreshToken: setup.refreshToken,
      http,
      ...(setup.revoke && { revokeEndpoint: provider.revocation }),
    }),
    ...(setup.dpop && { dpop: setup.dpop }),
  });
  watch.watch(tokens);
  const of = (type: TokenEvent["type"]) => watch.events.filter((event) => event.type === type);
  return { tokens, watch, of, refreshTokens: recording.refreshTokens };
}

function apiClient(api: ResourceServer, tokens: TokenSource) {
  return createClient(
    DemoService,
    createConnectTransport({ baseUrl: api.url, interceptors: [createAuthInterceptor(tokens)] }),
  );
}

/** A form-encoded refresh by hand, as RFC 6749 §6 has it: is the refresh token still alive? */
async function refreshByHand(provider: OidcProvider, refreshToken: string) {
  const res = await fetch(provider.token, {
    method: "POST",
    body: new URLSearchParams({
      grant_type: "refresh_token",
      refresh_token: refreshToken,
      client_id: provider.clientId,
    }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe("refreshTokenGrant against oidc-provider", () => {
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
  beforeEach(() => {
    provider.reset();
    api.resetStats();
  });

  it("rotates the refresh token 20 times with 0 invalid_grant at the provider, and every token works at the API", async () => {
    const { refresh_token } = await signIn(provider, { login: "carol" });
    provider.reset();
    const { tokens, watch, of, refreshTokens } = sourceFor(provider, {
      refreshToken: refresh_token,
    });
    const client = apiClient(api, tokens);

    expect((await client.whoAmI({})).subject).toBe("carol");
    let current = await tokens.getToken();
    for (let i = 2; i <= 20; i++) {
      current = await tokens.refresh(current);
      expect((await client.whoAmI({})).subject).toBe("carol");
    }

    expect(provider.stats()).toMatchObject({
      tokenRequests: 20,
      grants: { refresh_token: 20 },
      tokenErrors: {},
      invalidGrants: 0,
      refreshTokenReuse: 0,
      refreshTokensConsumed: 20,
      grantsRevoked: 0,
      serverErrors: 0,
    });
    expect(new Set([refresh_token, ...refreshTokens]).size).toBe(21);
    expect(api.stats()).toMatchObject({ calls: { WhoAmI: 20 }, accepted: 20, unauthenticated: 0 });
    expect(of("session-ended")).toEqual([]);
    watch.expectNoSecrets();
  });

  it("revokes the refresh token at the provider on clear(): a later refresh with it answers invalid_grant", async () => {
    const { refresh_token } = await signIn(provider);
    const { tokens, watch, of, refreshTokens } = sourceFor(provider, {
      refreshToken: refresh_token,
      revoke: true,
    });
    await tokens.refresh(await tokens.getToken());
    const held = refreshTokens.at(-1) as string;

    tokens.clear();
    await vi.waitFor(() => expect(provider.stats().revocationRequests).toBe(1));
    expect(provider.stats()).toMatchObject({ revocations: 1, revocationErrors: {} });
    expect(await refreshByHand(provider, held)).toMatchObject({
      status: 400,
      body: { error: "invalid_grant" },
    });
    expect(of("revoke-failed")).toEqual([]);
    watch.expectNoSecrets();
  });

  it("keeps the session through a one-off invalid_request: the next fetch after the backoff succeeds with the same refresh token", async () => {
    const { refresh_token } = await signIn(provider);
    provider.reset();
    let spoil = true;
    const bodies: Record<string, string>[] = [];
    const { tokens, of, watch } = sourceFor(provider, {
      refreshToken: refresh_token,
      hooks: {
        beforeRequest: [
          async ({ request }) => {
            bodies.push(Object.fromEntries(new URLSearchParams(await request.clone().text())));
            // One request goes out malformed (a content type the provider does not read), as a
            // broken proxy or a hook of the app might make it.
            if (spoil) request.headers.set("content-type", "text/plain");
            spoil = false;
          },
        ],
      },
    });

    const error = await tokens.getToken().then(() => undefined, watch.error);
    expect(error).toBeInstanceOf(TokenFetchError);
    expect(error).toMatchObject({
      code: Code.Internal,
      status: 400,
      oauthError: "invalid_request",
      reason: undefined,
    });
    expect((error as Error).message).toMatch(
      /^the token endpoint answered 400 Bad Request: invalid_request \(only application\/x-www-form-urlencoded/,
    );
    // The backoff holds the next calls without a request; then the same refresh token works.
    await expect(tokens.getToken()).rejects.toMatchObject({ repeated: true });
    expect(provider.stats().tokenRequests).toBe(1);
    const token = await vi.waitFor(() => tokens.getToken(), { timeout: 5_000, interval: 100 });
    expect(token).toEqual(expect.any(String));

    expect(bodies.map((body) => body.refresh_token)).toEqual([refresh_token, refresh_token]);
    expect(provider.stats()).toMatchObject({
      tokenRequests: 2,
      grants: { refresh_token: 1 },
      tokenErrors: { invalid_request: 1 },
      invalidGrants: 0,
    });
    expect(of("session-ended")).toEqual([]);
    watch.expectNoSecrets();
  });

  it("ends the session once when the refresh token was revoked at the provider, and sends it no more", async () => {
    const { refresh_token } = await signIn(provider);
    const { tokens, watch, of, refreshTokens } = sourceFor(provider, {
      refreshToken: refresh_token,
    });
    const current = await tokens.getToken();
    const held = refreshTokens.at(-1) as string;
    const revoked = await fetch(provider.revocation, {
      method: "POST",
      body: new URLSearchParams({ token: held, client_id: provider.clientId }),
    });
    expect(revoked.status).toBe(200);
    provider.reset();

    const error = await tokens.refresh(current).then(() => undefined, watch.error);
    expect(error).toMatchObject({
      code: Code.Unauthenticated,
      reason: "refresh-token-refused",
      oauthError: "invalid_grant",
    });
    for (let i = 0; i < 5; i++) await tokens.getToken().catch(watch.error);

    expect(of("session-ended")).toEqual([
      { type: "session-ended", reason: "refresh-token-refused" },
    ]);
    expect(provider.stats()).toMatchObject({ tokenRequests: 1, invalidGrants: 1 });
    watch.expectNoSecrets();
  });

  it("uses a DPoP-bound refresh token with the key handed over from the sign-in", async () => {
    const keyPair = await generateKeyPair("ES256");
    const dpop = dpopProofs({ keyPair });
    expect(await dpop.thumbprint()).toBe(await thumbprintOf(keyPair));
    const signedIn = await signIn(provider, { dpop: keyPair });
    expect(signedIn.token_type).toBe("DPoP");
    provider.reset();
    const { tokens, of } = sourceFor(provider, { refreshToken: signedIn.refresh_token, dpop });
    const client = apiClient(api, tokens);

    expect((await client.whoAmI({})).subject).toBe("alice");
    let current = await tokens.getToken();
    for (let i = 0; i < 3; i++) {
      current = await tokens.refresh(current);
      expect((await client.whoAmI({})).subject).toBe("alice");
    }

    expect(provider.stats()).toMatchObject({
      tokenRequests: 4,
      grants: { refresh_token: 4 },
      invalidGrants: 0,
    });
    expect(api.stats()).toMatchObject({ accepted: 4, dpopAccepted: 4, unauthenticated: 0 });
    expect(of("session-ended")).toEqual([]);
  });

  it("cannot use a DPoP-bound refresh token with a key of its own: the provider refuses it, once", async () => {
    const signedIn = await signIn(provider, { dpop: await generateKeyPair("ES256") });
    provider.reset();
    const { tokens, of } = sourceFor(provider, {
      refreshToken: signedIn.refresh_token,
      dpop: dpopProofs(),
    });

    await expect(tokens.getToken()).rejects.toMatchObject({
      code: Code.Unauthenticated,
      oauthError: "invalid_grant",
    });
    expect(provider.events).toContainEqual(
      expect.objectContaining({ type: "grant.error", detail: "failed jkt verification" }),
    );
    expect(of("session-ended")).toHaveLength(1);
  });

  it("tells listeners revoke-failed when the provider refuses the revocation, and the refresh token stays alive there", async () => {
    const { refresh_token } = await signIn(provider);
    const { tokens, of, watch, refreshTokens } = sourceFor(provider, {
      refreshToken: refresh_token,
      revoke: true,
      hooks: {
        beforeRequest: [
          // The revocation goes out without client_id, as the library's revocation did before.
          async ({ request }) => {
            if (!request.url.endsWith("/token/revocation")) return;
            const form = new URLSearchParams(await request.clone().text());
            form.delete("client_id");
            return new Request(request, { body: form });
          },
        ],
      },
    });
    await tokens.getToken();
    const held = refreshTokens.at(-1) as string;
    provider.reset();

    tokens.clear();
    await vi.waitFor(() => expect(of("revoke-failed")).toHaveLength(1));
    const [event] = of("revoke-failed") as Extract<TokenEvent, { type: "revoke-failed" }>[];
    watch.error(event?.error);
    expect(event?.error).toBeInstanceOf(TokenFetchError);
    expect(event?.error).toMatchObject({
      code: Code.Internal,
      status: 400,
      oauthError: "invalid_request",
    });
    expect(event?.error.message).toBe(
      "the revocation endpoint answered 400 Bad Request: invalid_request (no client authentication mechanism provided)",
    );
    expect(provider.stats()).toMatchObject({
      revocationRequests: 1,
      revocationErrors: { invalid_request: 1 },
    });
    expect((await refreshByHand(provider, held)).status).toBe(200);
    watch.expectNoSecrets();
  });
});

describe("refreshTokenGrant against oidc-provider with DPoP nonces required at the token endpoint", () => {
  let provider: OidcProvider;
  beforeAll(async () => {
    provider = await startOidcProvider({ requireDpopNonce: true });
  });
  afterAll(() => provider.close());

  it("answers the nonce challenge with one retry, then keeps the nonce for the next refreshes", async () => {
    const keyPair = await generateKeyPair("ES256");
    const signedIn = await signIn(provider, { dpop: keyPair });
    provider.reset();
    const { tokens, of } = sourceFor(provider, {
      refreshToken: signedIn.refresh_token,
      dpop: dpopProofs({ keyPair }),
    });

    let current = await tokens.getToken();
    expect(provider.stats()).toMatchObject({
      tokenRequests: 2,
      dpopNonceChallenges: 1,
      grants: { refresh_token: 1 },
    });
    for (let i = 0; i < 3; i++) current = await tokens.refresh(current);

    expect(provider.stats()).toMatchObject({
      tokenRequests: 5,
      dpopNonceChallenges: 1,
      grants: { refresh_token: 4 },
      invalidGrants: 0,
    });
    expect(of("error")).toEqual([]);
  });
});
