import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { calculateJwkThumbprint, decodeJwt, exportJWK } from "jose";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";
import {
  authorizationCodeGrant,
  createAuthInterceptor,
  createTokenSource,
  dpopProofs,
  type RefreshTokenStore,
  type SignInKeyStore,
  type SignInStorage,
  shareAcrossTabs,
  type TokenEvent,
  TokenFetchError,
} from "../../src/index.js";
import { createFakeLockWorld } from "../helpers/fake-locks.js";
import { type OidcProvider, startOidcProvider } from "../helpers/oidc-provider.js";
import { answerAuthorization } from "../helpers/provider-login.js";
import { type ResourceServer, startResourceServer } from "../helpers/resource-server.js";

const SCOPE = "openid offline_access api";

/** A Storage in memory: one tab's sessionStorage. */
function memoryStorage(): SignInStorage & { items: Map<string, string> } {
  const items = new Map<string, string>();
  return {
    items,
    getItem: (key) => items.get(key) ?? null,
    setItem: (key, value) => void items.set(key, value),
    removeItem: (key) => void items.delete(key),
  };
}

/** A SignInKeyStore in memory: what IndexedDB keeps across a navigation in a browser. */
function memoryKeyStore(): SignInKeyStore & { size(): number } {
  const pairs = new Map<string, CryptoKeyPair>();
  return {
    size: () => pairs.size,
    async save(id, pair) {
      pairs.set(id, pair);
    },
    async take(id) {
      const pair = pairs.get(id);
      pairs.delete(id);
      return pair;
    },
    // Entries in the order they were saved: the newest is the last.
    latest: async () => [...pairs.values()].at(-1),
  };
}

interface PageOptions {
  dpop?: boolean;
  storage?: ReturnType<typeof memoryStorage>;
  keyStore?: SignInKeyStore;
  store?: RefreshTokenStore;
}

/** Tab sharing for a page that is the only tab: its own lock manager and channel. */
function soleTab() {
  const apis = { locks: createFakeLockWorld().tab("only"), BroadcastChannel };
  return shareAcrossTabs(`sign-in-${crypto.randomUUID()}`, { apis });
}

/**
 * One page of the app: the grant with its browser seams injected (navigation, address bar,
 * sessionStorage), its token source, and what it navigated to. A "reload" is a new page on the
 * same storage.
 */
function makePage(provider: OidcProvider, options: PageOptions = {}) {
  const storage = options.storage ?? memoryStorage();
  const navigations: URL[] = [];
  const addressBar: URL[] = [];
  const signIn = authorizationCodeGrant({
    issuer: provider.issuer,
    clientId: provider.clientId,
    redirectUri: redirectUri(provider),
    scope: SCOPE,
    resource: provider.resource,
    navigate: (url) => navigations.push(url),
    replaceUrl: (url) => addressBar.push(url),
    storage,
    keyStore: options.keyStore,
    store: options.store,
  });
  const tokens = createTokenSource({
    fetchToken: signIn,
    ...(options.dpop && { dpop: dpopProofs() }),
    // A store needs tabs that take turns: this page is the only tab of its (in-memory) browser.
    ...(options.store && { crossTab: soleTab() }),
  });
  const events: TokenEvent[] = [];
  tokens.subscribe((event) => events.push(event));
  return {
    signIn,
    tokens,
    storage,
    navigations,
    addressBar,
    events,
    /** The authorization request the last signIn() navigated to. */
    authorization: () => navigations.at(-1) as URL,
    /** Signs in: to the provider, through its forms, and back to handleCallback. */
    async signInThrough(login = "alice"): Promise<string> {
      await signIn.signIn();
      const back = await answerAuthorization(this.authorization(), redirectUri(provider), {
        login,
      });
      expect(await signIn.handleCallback(back)).toBe(true);
      return back;
    },
  };
}

const redirectUri = (provider: OidcProvider) => provider.redirectUris[0] as string;

function demoClient(api: ResourceServer, page: ReturnType<typeof makePage>) {
  return createClient(
    DemoService,
    createConnectTransport({
      baseUrl: api.url,
      interceptors: [createAuthInterceptor(page.tokens)],
    }),
  );
}

async function refusal(promise: Promise<unknown>): Promise<TokenFetchError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TokenFetchError);
  return error as TokenFetchError;
}

describe("authorizationCodeGrant against oidc-provider", () => {
  let provider: OidcProvider;
  let api: ResourceServer;
  beforeAll(async () => {
    provider = await startOidcProvider({ requireDpopNonce: false });
    api = await startResourceServer(provider);
  });
  afterAll(async () => {
    await api.close();
    await provider.close();
  });
  afterEach(() => {
    provider.reset();
    api.resetStats();
  });

  test("signs in with PKCE S256, state and nonce kept out of the URL, and calls succeed", async () => {
    const page = makePage(provider);
    await page.signIn.signIn();

    const auth = page.authorization();
    expect(auth.origin + auth.pathname).toBe(provider.authorization);
    const params = Object.fromEntries(auth.searchParams);
    expect(params).toMatchObject({
      client_id: provider.clientId,
      response_type: "code",
      redirect_uri: redirectUri(provider),
      scope: SCOPE,
      code_challenge_method: "S256",
      resource: provider.resource,
    });
    expect(params.state).toMatch(/^[\w-]{43}$/);
    expect(params.nonce).toMatch(/^[\w-]{43}$/);
    expect(params.code_challenge).toMatch(/^[\w-]{43}$/);
    expect(params).not.toHaveProperty("dpop_jkt");
    const [pending] = [...page.storage.items.values()];
    const { verifier } = JSON.parse(pending as string) as { verifier: string };
    expect(auth.href).not.toContain(verifier);

    const back = await answerAuthorization(auth, redirectUri(provider), { login: "carol" });
    expect(await page.signIn.handleCallback(back)).toBe(true);
    // The code left the address bar; the verifier left sessionStorage.
    expect(page.addressBar.map(String)).toEqual([redirectUri(provider)]);
    expect(page.storage.items.size).toBe(0);
    expect(provider.stats().tokenRequests).toBe(0);

    const reply = await demoClient(api, page).whoAmI({});
    expect(reply.subject).toBe("carol");
    expect(provider.stats()).toMatchObject({
      tokenRequests: 1,
      grants: { authorization_code: 1 },
      invalidGrants: 0,
    });
  });

  test("binds the code and the tokens to the source's DPoP key (dpop_jkt, cnf.jkt)", async () => {
    const page = makePage(provider, { dpop: true, keyStore: memoryKeyStore() });
    await page.signInThrough();
    const token = await page.tokens.getToken();

    const jkt = page.authorization().searchParams.get("dpop_jkt");
    expect(jkt).toMatch(/^[\w-]{43}$/);
    expect((decodeJwt(token).cnf as { jkt?: string }).jkt).toBe(jkt);
    await demoClient(api, page).whoAmI({});
    expect(api.stats()).toMatchObject({ accepted: 1, dpopAccepted: 1, unauthenticated: 0 });
  });

  test("refreshes with rotation after sign-in, and clear() revokes the session once", async () => {
    const page = makePage(provider, { dpop: true });
    await page.signInThrough();
    let token = await page.tokens.getToken();
    for (let i = 0; i < 3; i++) token = await page.tokens.refresh(token);
    await demoClient(api, page).whoAmI({});

    page.tokens.clear();
    await expect.poll(() => provider.stats().revocations).toBe(1);
    expect(provider.stats()).toMatchObject({
      grants: { authorization_code: 1, refresh_token: 3 },
      refreshTokensConsumed: 3,
      invalidGrants: 0,
      revocationRequests: 1,
    });
    // Signed out: the next fetch asks for a sign-in, without a request.
    const ended = await refusal(page.tokens.getToken());
    expect(ended.reason).toBe("sign-in-required");
    expect(provider.stats().tokenRequests).toBe(4);
  });

  test("a refused refresh token ends the session with refresh-token-refused", async () => {
    let saved: string | undefined;
    const page = makePage(provider, {
      store: {
        load: () => undefined,
        save: (refreshToken) => {
          saved = refreshToken;
        },
      },
    });
    await page.signInThrough();
    const token = await page.tokens.getToken();
    // The refresh token is revoked behind the session's back (signed out elsewhere).
    await page.signIn.revoke?.({ state: saved as string, signal: AbortSignal.timeout(5_000) });
    const seen = page.events.length;

    const error = await refusal(page.tokens.refresh(token));
    expect(error.reason).toBe("refresh-token-refused");
    expect(page.events.slice(seen)).toContainEqual({
      type: "session-ended",
      reason: "refresh-token-refused",
    });
    expect(provider.stats()).toMatchObject({ invalidGrants: 1, revocations: 1 });
    // Not sent again: the next fetch asks for a sign-in without a request.
    expect(await refusal(page.tokens.getToken())).toMatchObject({
      reason: "refresh-token-refused",
    });
    expect(provider.stats().tokenRequests).toBe(2);
  });

  test("answers an error=access_denied callback with an error naming it, and no token request", async () => {
    const page = makePage(provider);
    await page.signIn.signIn();
    const back = await answerAuthorization(page.authorization(), redirectUri(provider), {
      abort: true,
    });
    expect(new URL(back).searchParams.get("error")).toBe("access_denied");

    const error = await refusal(page.signIn.handleCallback(back));
    expect(error.message).toMatch(/access_denied/);
    expect(page.addressBar).toHaveLength(1);
    expect(await refusal(page.tokens.getToken())).toMatchObject({ reason: "sign-in-required" });
    expect(provider.stats().tokenRequests).toBe(0);
  });

  test("refuses a callback with a wrong state, and makes no token request", async () => {
    const page = makePage(provider);
    await page.signIn.signIn();
    const back = new URL(await answerAuthorization(page.authorization(), redirectUri(provider)));
    back.searchParams.set("state", "not-the-state");

    const error = await refusal(page.signIn.handleCallback(back));
    expect(error.message).toMatch(/state does not match/);
    expect(await refusal(page.tokens.getToken())).toMatchObject({ reason: "sign-in-required" });
    expect(provider.stats().tokenRequests).toBe(0);
  });

  test("refuses a replayed callback, and makes no second token request", async () => {
    const page = makePage(provider);
    const back = await page.signInThrough();
    await page.tokens.getToken();

    const error = await refusal(page.signIn.handleCallback(back));
    expect(error.message).toMatch(/no sign-in waiting/);
    expect(provider.stats().tokenRequests).toBe(1);
  });

  test("refuses a callback in a page that never started a sign-in", async () => {
    const victim = makePage(provider);
    const attacker = makePage(provider);
    await attacker.signIn.signIn();
    const back = await answerAuthorization(attacker.authorization(), redirectUri(provider));

    const error = await refusal(victim.signIn.handleCallback(back));
    expect(error.message).toMatch(/never started/);
    expect(await refusal(victim.tokens.getToken())).toMatchObject({ reason: "sign-in-required" });
    expect(provider.stats().tokenRequests).toBe(0);
  });

  test("refuses a callback whose iss is another issuer (RFC 9207)", async () => {
    const page = makePage(provider);
    await page.signIn.signIn();
    const back = new URL(await answerAuthorization(page.authorization(), redirectUri(provider)));
    expect(back.searchParams.get("iss")).toBe(provider.issuer);
    back.searchParams.set("iss", "https://evil.example");

    const error = await refusal(page.signIn.handleCallback(back));
    expect(error.message).toMatch(/iss/);
    expect(provider.stats().tokenRequests).toBe(0);
  });

  test("checks the ID token: a nonce other than the one sent fails the exchange", async () => {
    const page = makePage(provider);
    await page.signIn.signIn();
    // The pending sign-in's nonce is changed under it: the provider's ID token carries the old.
    const [[key, value]] = [...page.storage.items] as [[string, string]];
    page.storage.items.set(key, JSON.stringify({ ...JSON.parse(value), nonce: "another" }));
    const back = await answerAuthorization(page.authorization(), redirectUri(provider));
    await page.signIn.handleCallback(back);

    const error = await refusal(page.tokens.getToken());
    expect(error.message).toMatch(/nonce/);
    expect(provider.stats().tokenRequests).toBe(1);
  });

  test("returns false for a URL that is not the provider's answer", async () => {
    const page = makePage(provider);
    expect(await page.signIn.handleCallback("http://127.0.0.1/other?code=x&state=y")).toBe(false);
    expect(await page.signIn.handleCallback(redirectUri(provider))).toBe(false);
    expect(page.addressBar).toHaveLength(0);
  });

  test("without a sign-in, a fetch ends the session with sign-in-required and no request", async () => {
    const page = makePage(provider);
    const error = await refusal(page.tokens.getToken());
    expect(error).toMatchObject({ code: 16, reason: "sign-in-required" });
    expect(page.events).toContainEqual({ type: "session-ended", reason: "sign-in-required" });
    expect(provider.stats().tokenRequests).toBe(0);
  });

  test("keeps the DPoP key across the navigation: a new page finds it and exchanges the code", async () => {
    const storage = memoryStorage();
    const keyStore = memoryKeyStore();
    const before = makePage(provider, { dpop: true, storage, keyStore });
    await before.signIn.signIn();
    const jkt = before.authorization().searchParams.get("dpop_jkt");
    expect(keyStore.size()).toBe(1);
    const back = await answerAuthorization(before.authorization(), redirectUri(provider));

    // The page is gone; a new one (a new source, a new dpopProofs()) takes the callback.
    const after = makePage(provider, { dpop: true, storage, keyStore });
    await after.signIn.handleCallback(back);
    const token = await after.tokens.getToken();
    expect(keyStore.size()).toBe(0);
    expect((decodeJwt(token).cnf as { jkt?: string }).jkt).toBe(jkt);
    await demoClient(api, after).whoAmI({});
    expect(api.stats()).toMatchObject({ dpopAccepted: 1, unauthenticated: 0 });
  });

  test("a sign-in started while another page's is at the provider names the same key", async () => {
    const keyStore = memoryKeyStore();
    // Two pages of one browser (one IndexedDB), and no tab sharing between them: the first has
    // left for the provider when the second starts its sign-in.
    const first = makePage(provider, { dpop: true, keyStore });
    await first.signIn.signIn();
    const second = makePage(provider, { dpop: true, keyStore });
    await second.signIn.signIn();
    const jkt = first.authorization().searchParams.get("dpop_jkt");
    expect(second.authorization().searchParams.get("dpop_jkt")).toBe(jkt);
    expect(keyStore.size()).toBe(2);

    // Each comes back with its own code, bound to the one key; either can be exchanged.
    const back = await answerAuthorization(second.authorization(), redirectUri(provider));
    expect(await second.signIn.handleCallback(back)).toBe(true);
    expect((decodeJwt(await second.tokens.getToken()).cnf as { jkt?: string }).jkt).toBe(jkt);
  });

  test("a sign-in after a sign-out does not take up the key given up at sign-out", async () => {
    const keyStore = memoryKeyStore();
    const page = makePage(provider, { dpop: true, keyStore });
    await page.signInThrough();
    const before = decodeJwt(await page.tokens.getToken()).cnf as { jkt?: string };
    // A sign-in of the old key waits still (abandoned at the provider), then the user signs out.
    await page.signIn.signIn();
    page.tokens.clear();
    await page.signIn.signIn();
    expect(page.authorization().searchParams.get("dpop_jkt")).not.toBe(before.jkt);
  });

  test("a new page without the DPoP key refuses the callback instead of a doomed exchange", async () => {
    const storage = memoryStorage();
    const before = makePage(provider, { dpop: true, storage });
    await before.signIn.signIn();
    const back = await answerAuthorization(before.authorization(), redirectUri(provider));

    const after = makePage(provider, { dpop: true, storage });
    const error = await refusal(after.signIn.handleCallback(back));
    expect(error.message).toMatch(/DPoP key .* is gone/);
    expect(provider.stats().tokenRequests).toBe(0);
  });

  test("a reload with a refresh token store needs no new sign-in", async () => {
    let saved: string | undefined;
    const store: RefreshTokenStore = {
      load: () => saved,
      save: (refreshToken) => {
        saved = refreshToken;
      },
    };
    const first = makePage(provider, { store });
    await first.signInThrough();
    await first.tokens.getToken();

    const reloaded = makePage(provider, { store });
    expect((await demoClient(api, reloaded).whoAmI({})).subject).toBe("alice");
    expect(provider.stats()).toMatchObject({
      grants: { authorization_code: 1, refresh_token: 1 },
      invalidGrants: 0,
    });
  });

  test("an answer with DPoP nonces: the exchange and refreshes retry once with the nonce", async () => {
    const strict = await startOidcProvider({ requireDpopNonce: true });
    try {
      const page = makePage(strict, { dpop: true });
      await page.signInThrough();
      const token = await page.tokens.getToken();
      await page.tokens.refresh(token);
      expect(strict.stats()).toMatchObject({
        grants: { authorization_code: 1, refresh_token: 1 },
        dpopNonceChallenges: 1,
        invalidGrants: 0,
      });
    } finally {
      await strict.close();
    }
  });
});

describe("authorizationCodeGrant options", () => {
  const base = { issuer: "https://id.example.com", clientId: "spa", redirectUri: "https://app/cb" };

  test("refuses bad options with a TypeError naming the option", () => {
    expect(() => authorizationCodeGrant({ ...base, issuer: "http://id.example.com" })).toThrow(
      /issuer must be an https URL/,
    );
    expect(() => authorizationCodeGrant({ ...base, clientId: "" })).toThrow(/clientId/);
    expect(() => authorizationCodeGrant({ ...base, redirectUri: "" })).toThrow(/redirectUri/);
    expect(() => authorizationCodeGrant({ ...base, scope: "a  b" })).toThrow(/scope/);
    expect(() =>
      authorizationCodeGrant({ ...base, storage: {} as unknown as SignInStorage }),
    ).toThrow(/storage/);
  });

  test("computes dpop_jkt as the RFC 7638 thumbprint of the source's key", async () => {
    const grant = authorizationCodeGrant(base);
    let handle: Parameters<NonNullable<typeof grant.attach>>[0]["dpop"];
    grant.attach = ({ dpop }) => {
      handle = dpop;
    };
    createTokenSource({ fetchToken: grant, dpop: dpopProofs() });
    const pair = await handle?.keyPair();
    const expected = await calculateJwkThumbprint(
      await exportJWK((pair as CryptoKeyPair).publicKey),
    );
    expect(await handle?.thumbprint()).toBe(expected);
  });
});
