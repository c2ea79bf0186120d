import type { Page } from "@playwright/test";
import type { OidcPageStats } from "../../demo/web/oidc-client-ts.js";
import { type OidcProvider, startOidcProvider } from "../helpers/oidc-provider.js";
import { type ResourceServer, startResourceServer } from "../helpers/resource-server.js";
import { expect, ok, test } from "./fixtures.js";
import { WEB_URL } from "./servers.js";

// A real OIDC SDK in Chromium: oidc-client-ts signs in by redirect at oidc-provider, and the
// library calls the resource server with the README's oidc-client-ts recipe as fetchToken. The
// client kind does not matter here (the page uses Connect), so this runs in one project only.
test.skip(
  ({ clientKind }) => clientKind !== "connect",
  "oidc-client-ts runs in the connect project",
);

const PAGE = "/oidc-client-ts.html";

let provider: OidcProvider;
let api: ResourceServer;
test.beforeAll(async () => {
  provider = await startOidcProvider({
    corsOrigins: [WEB_URL],
    redirectUris: [WEB_URL + PAGE],
    // Bearer tokens: oidc-client-ts is not asked for DPoP here.
    dpop: false,
  });
  api = await startResourceServer(provider, { corsOrigins: [WEB_URL] });
});
test.afterAll(async () => {
  await api?.close();
  await provider?.close();
});

/** Opens the page, signs in through the provider's dev login and consent forms, and comes back. */
async function signIn(page: Page): Promise<void> {
  const query = new URLSearchParams({
    issuer: provider.issuer,
    client_id: provider.clientId,
    resource: provider.resource,
    api: api.url,
  });
  await page.goto(`${PAGE}?${query}`);
  await expect(page.getByTestId("status")).toHaveText("signed out");
  await page.getByTestId("sign-in").click();
  // oidc-provider's devInteractions: any login and password, then consent.
  await page.waitForURL((url) => url.origin === provider.issuer);
  await page.locator('input[name="login"]').fill("alice");
  await page.locator('input[name="password"]').fill("any-password");
  await page.locator('button[type="submit"]').click();
  await page.locator('input[name="prompt"][value="consent"]').waitFor({ state: "attached" });
  await page.locator('button[type="submit"]').click();
  await page.waitForURL((url) => url.origin === WEB_URL && url.pathname === PAGE);
  await expect(page.getByTestId("status")).toHaveText("signed in as alice");
  expect(await page.evaluate(() => window.oidcPage.ready)).toBe("alice");
}

const whoAmI = (page: Page) => page.evaluate(() => window.oidcPage.whoAmI());
const stats = (page: Page): Promise<OidcPageStats> => page.evaluate(() => window.oidcPage.stats());
const held = (page: Page) => page.evaluate(() => window.oidcPage.held());

test("signs in by redirect and survives a token revoked at the resource server with one replay and one signinSilent()", async ({
  page,
}) => {
  provider.reset();
  await signIn(page);
  expect(provider.stats()).toMatchObject({ grants: { authorization_code: 1 } });
  api.resetStats();

  const first = ok(await whoAmI(page));
  expect(first.subject).toBe("alice");
  // The SDK's token from the sign-in, taken as it is.
  expect(await stats(page)).toMatchObject({ tokensFetched: 1, silentRenews: 0, replays: 0 });
  const { accessToken } = await held(page);
  if (accessToken === undefined) throw new Error("oidc-client-ts holds no access token");
  api.revokeAccessToken(accessToken);
  provider.reset();
  api.resetStats();

  const second = ok(await whoAmI(page));

  expect(second.subject).toBe("alice");
  expect(second.tokenId).not.toBe(first.tokenId);
  expect(await stats(page)).toMatchObject({ replays: 1, silentRenews: 1, tokensFetched: 2 });
  expect(api.stats()).toMatchObject({ calls: { WhoAmI: 2 }, accepted: 1, unauthenticated: 1 });
  expect(api.stats().refused).toEqual({ denied_token: 1 });
  // signinSilent() spent the refresh token: one refresh_token grant, nothing else.
  expect(provider.stats()).toMatchObject({
    tokenRequests: 1,
    grants: { refresh_token: 1 },
    serverErrors: 0,
  });
  expect((await held(page)).accessToken).not.toBe(accessToken);
});

test("ends the session when the provider refuses the refresh token: one signinSilent(), no replay, the call fails Unauthenticated", async ({
  page,
}) => {
  await signIn(page);
  ok(await whoAmI(page));
  const { accessToken, refreshToken } = await held(page);
  if (accessToken === undefined || refreshToken === undefined) {
    throw new Error("oidc-client-ts holds no access or refresh token");
  }
  // RFC 7009 at the provider: the refresh token (and its grant) is gone.
  const revoked = await fetch(provider.revocation, {
    method: "POST",
    body: new URLSearchParams({
      token: refreshToken,
      token_type_hint: "refresh_token",
      client_id: provider.clientId,
    }),
  });
  expect(revoked.status).toBe(200);
  api.revokeAccessToken(accessToken);
  provider.reset();
  api.resetStats();

  const result = await whoAmI(page);

  expect(result.ok).toBe(false);
  if (result.ok) return;
  expect(result.error.code).toBe("Unauthenticated");
  expect(result.error.tokenFetch?.reason).toBe("refresh-token-refused");
  // No token to replay with: the refused call is not sent again.
  expect(await stats(page)).toMatchObject({
    replays: 0,
    silentRenews: 1,
    sessionEnded: ["refresh-token-refused"],
  });
  expect(provider.stats()).toMatchObject({ tokenRequests: 1, invalidGrants: 1 });
  expect(api.stats()).toMatchObject({ calls: { WhoAmI: 1 }, unauthenticated: 1 });
});
