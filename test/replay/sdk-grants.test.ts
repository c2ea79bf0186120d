/**
 * The README's recipes for a fetchToken over an OIDC SDK (demo/web/lib/sdk-grants.ts): each is the
 * README's block verbatim. auth0-spa-js and keycloak-js are not installed: their recipes run here
 * against stand-ins that cache and refresh as those SDKs document, with real tokens from
 * oidc-provider and a real Connect call to a resource server that refuses a revoked one.
 * (oidc-client-ts runs for real, in Chromium: test/browser/oidc-client-ts.spec.ts.)
 */
import { readFileSync } from "node:fs";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { decodeJwt } from "jose";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  type Auth0Like,
  auth0Grant,
  type KeycloakLike,
  keycloakGrant,
} from "../../demo/web/lib/sdk-grants.js";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";
import { createAuthInterceptor, createTokenSource, type TokenGrant } from "../../src/index.js";
import { type OidcProvider, startOidcProvider } from "../helpers/oidc-provider.js";
import { signIn } from "../helpers/oidc-sign-in.js";
import { type ResourceServer, startResourceServer } from "../helpers/resource-server.js";

const recipes = readFileSync(new URL("../../demo/web/lib/sdk-grants.ts", import.meta.url), "utf8");
const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");

describe("the README's SDK recipes", () => {
  it.each(["oidc-client-ts", "auth0-spa-js", "keycloak-js"])(
    "are the code the tests run, verbatim (%s)",
    (sdk) => {
      const region = new RegExp(`// #region ${sdk}\\n([\\s\\S]*?)// #endregion ${sdk}\\n`).exec(
        recipes,
      )?.[1];
      expect(region, `a region for ${sdk} in sdk-grants.ts`).toBeDefined();
      const blocks = [...readme.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1] as string);
      expect(blocks.some((block) => block.endsWith(region as string))).toBe(true);
    },
  );
});

/** An SDK's session: the tokens it holds, refreshed at the provider's token endpoint. */
class Session {
  accessToken: string;
  expiresAt: number;
  /** Refresh-token grants this session made. */
  refreshes = 0;
  #refreshToken: string;

  constructor(
    private readonly provider: OidcProvider,
    signedIn: { access_token: string; refresh_token: string; expires_in: number },
  ) {
    this.accessToken = signedIn.access_token;
    this.#refreshToken = signedIn.refresh_token;
    this.expiresAt = Date.now() + signedIn.expires_in * 1000;
  }

  /** RFC 6749 §6, as both SDKs send it for a public client: a form with `client_id`. */
  async refresh(): Promise<void> {
    this.refreshes++;
    const res = await fetch(this.provider.token, {
      method: "POST",
      body: new URLSearchParams({
        grant_type: "refresh_token",
        refresh_token: this.#refreshToken,
        client_id: this.provider.clientId,
      }),
    });
    const answer = (await res.json()) as Record<string, unknown>;
    if (!res.ok) throw new Error(`refresh refused: ${String(answer.error)}`);
    this.accessToken = answer.access_token as string;
    this.#refreshToken = answer.refresh_token as string;
    this.expiresAt = Date.now() + (answer.expires_in as number) * 1000;
  }
}

/**
 * auth0-spa-js's `getTokenSilently` (useRefreshTokens): the cached token unless it expires within
 * 60 s (the SDK's leeway) or `cacheMode` is `"off"`, which always goes to the token endpoint.
 */
function auth0StandIn(session: Session): Auth0Like & { options: unknown[] } {
  const options: unknown[] = [];
  return {
    options,
    async getTokenSilently(given = {}) {
      options.push(given);
      const cacheMode = given.cacheMode ?? "on";
      if (cacheMode === "off" || session.expiresAt - Date.now() < 60_000) await session.refresh();
      return session.accessToken;
    },
  };
}

/**
 * keycloak-js's `updateToken(minValidity = 5)`: refreshes when the token expires within
 * `minValidity` seconds, always when it is -1; resolves to whether it refreshed; `token` holds the
 * current one.
 */
function keycloakStandIn(session: Session): KeycloakLike & { asked: number[] } {
  const asked: number[] = [];
  return {
    asked,
    get token() {
      return session.accessToken;
    },
    async updateToken(minValidity = 5) {
      asked.push(minValidity);
      const due = minValidity === -1 || session.expiresAt - Date.now() < minValidity * 1000;
      if (due) await session.refresh();
      return due;
    },
  };
}

describe("recipes over SDK stand-ins, against oidc-provider", () => {
  let provider: OidcProvider;
  let api: ResourceServer;
  beforeAll(async () => {
    provider = await startOidcProvider({ dpop: false });
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

  /** A Connect client on a source over `grant`, counting replays. */
  function connectOver(grant: TokenGrant) {
    const replays: string[] = [];
    const tokens = createTokenSource({ fetchToken: grant });
    const interceptors = [
      createAuthInterceptor(tokens, { onReplay: (e) => replays.push(e.method) }),
    ];
    const client = createClient(
      DemoService,
      createConnectTransport({ baseUrl: api.url, interceptors }),
    );
    return { client, tokens, replays };
  }

  const kinds = {
    "auth0-spa-js": (session: Session) => {
      const sdk = auth0StandIn(session);
      return { grant: auth0Grant(sdk), forced: () => sdk.options.filter(isCacheOff).length };
    },
    "keycloak-js": (session: Session) => {
      const sdk = keycloakStandIn(session);
      return { grant: keycloakGrant(sdk), forced: () => sdk.asked.filter((m) => m === -1).length };
    },
  };

  it.each(Object.keys(kinds) as (keyof typeof kinds)[])(
    "survives a token revoked at the resource server with one replay and one forced refresh (%s)",
    async (kind) => {
      const session = new Session(provider, await signIn(provider));
      const { grant, forced } = kinds[kind](session);
      const { client, replays } = connectOver(grant);
      const first = await client.whoAmI({});
      expect(first.subject).toBe("alice");
      // The SDK's cached token, taken without a refresh.
      expect(session.refreshes).toBe(0);
      expect(first.tokenId).toBe(decodeJwt(session.accessToken).jti);
      api.revokeAccessToken(session.accessToken);
      provider.reset();
      api.resetStats();

      const second = await client.whoAmI({});

      expect(second.subject).toBe("alice");
      expect(second.tokenId).not.toBe(first.tokenId);
      expect(replays).toEqual(["demo.v1.DemoService/WhoAmI"]);
      expect(forced()).toBe(1);
      expect(session.refreshes).toBe(1);
      expect(provider.stats()).toMatchObject({ tokenRequests: 1, grants: { refresh_token: 1 } });
      expect(api.stats()).toMatchObject({ accepted: 1, unauthenticated: 1 });
      expect(api.stats().refused).toEqual({ denied_token: 1 });
    },
  );

  it("keycloak-js: does not force a refresh when the SDK already holds a newer token than the refused one", async () => {
    const session = new Session(provider, await signIn(provider));
    const sdk = keycloakStandIn(session);
    const grant = keycloakGrant(sdk);
    const refused = session.accessToken;
    // Renewed elsewhere (the app's own updateToken, onTokenExpired) before this fetch.
    await session.refresh();
    const held = session.accessToken;

    const token = await grant({
      signal: new AbortController().signal,
      state: undefined,
      rejected: refused,
    });

    expect(token).toBe(held);
    expect(sdk.asked).toEqual([30]);
    expect(session.refreshes).toBe(1);
  });
});

function isCacheOff(options: unknown): boolean {
  return (options as { cacheMode?: string }).cacheMode === "off";
}
