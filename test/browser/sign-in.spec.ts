import type { APIRequestContext, BrowserContext, Page } from "@playwright/test";
import type { OidcProviderStats } from "../helpers/oidc-provider.js";
import type { ResourceServerStats } from "../helpers/resource-server.js";
import { expect, test } from "./fixtures.js";
import { IDP_ACCESS_TOKEN_TTL, IDP_STATS_URL, IDP_URL, WEB_URL } from "./servers.js";

// Sign-in by redirect against oidc-provider (demo/idp/main.ts): the client kind does not matter
// (the page calls with Connect), so these run in one project only.
test.skip(({ clientKind }) => clientKind !== "grpc-web", "sign-in runs in the grpc-web project");

interface IdpStats {
  provider: OidcProviderStats;
  api: ResourceServerStats;
}

async function idpStats(request: APIRequestContext): Promise<IdpStats> {
  const res = await request.get(`${IDP_STATS_URL}/stats`);
  expect(res.ok()).toBe(true);
  return (await res.json()) as IdpStats;
}

test.beforeEach(async ({ request }) => {
  const res = await request.post(`${IDP_STATS_URL}/reset`);
  expect(res.status()).toBe(204);
});

/** Opens sign-in.html and waits until it has read its URL. */
async function openPage(context: BrowserContext, path = "/sign-in.html"): Promise<Page> {
  const page = await context.newPage();
  await page.goto(path);
  await page.waitForFunction(() => window.signInPage !== undefined);
  return page;
}

/** The page's answer to its URL: handleCallback's result, or its error. */
const callbackOf = (page: Page) => page.evaluate(() => window.signInPage.callback);

/** The browser's request for sign-in.html with the provider's answer (a code or an error). */
const isCallback = (url: string) => /\/sign-in\.html\?(.*&)?(code|error)=/.test(url);

/**
 * Plays the user at the provider: `start` leaves for it; then fills the dev login and consent
 * forms (or cancels) until the browser asks for sign-in.html with the answer, and waits until that
 * page has read it. Resolves to the callback URL the browser asked for.
 */
async function atProvider(
  page: Page,
  start: () => Promise<unknown>,
  options: { login?: string; cancel?: boolean } = {},
): Promise<string> {
  const back = page.waitForRequest((r) => r.isNavigationRequest() && isCallback(r.url()), {
    timeout: 30_000,
  });
  back.catch(() => {});
  await start();
  for (let step = 0; step < 6; step++) {
    const next = await Promise.race([
      back.then(() => "back" as const),
      page
        .waitForURL((url) => url.pathname.includes("/interaction/"), { waitUntil: "commit" })
        .then(() => "interaction" as const),
    ]);
    if (next === "back") break;
    const url = page.url();
    const submit = page.locator("button[type=submit]").first();
    await submit.waitFor();
    const login = page.locator('input[name="login"]');
    if (options.cancel) {
      await page.locator("a", { hasText: "Cancel" }).click();
    } else if (await login.count()) {
      await login.fill(options.login ?? "alice");
      await page.locator('input[name="password"]').fill("any-password");
      await submit.click();
    } else {
      await submit.click();
    }
    await Promise.race([
      back,
      page.waitForURL((next) => next.href !== url, { waitUntil: "commit" }),
    ]);
  }
  const callback = (await back).url();
  await page.waitForURL((url) => url.pathname.endsWith("/sign-in.html"));
  await page.waitForFunction(() => window.signInPage !== undefined);
  return callback;
}

/** Clicks "Sign in with OpenID", signs in at the provider, and waits for the callback. */
async function signInThrough(page: Page, login = "alice") {
  await atProvider(page, () => page.getByTestId("oidc-sign-in").click(), { login });
  return callbackOf(page);
}

const whoAmI = (page: Page) => page.evaluate(() => window.signInPage.whoAmI());
const tokenOf = (page: Page) => page.evaluate(() => window.signInPage.token());

function claimsOf(token: string): Record<string, unknown> {
  const payload = token.split(".")[1] as string;
  return JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as Record<string, unknown>;
}

test("signs in by redirect; calls succeed with DPoP-bound tokens whose cnf.jkt is the source's key", async ({
  context,
  request,
}) => {
  const page = await openPage(context);
  const requests: string[] = [];
  page.on("request", (r) => requests.push(r.url()));
  expect(await callbackOf(page)).toEqual({ ok: true, value: false });

  expect(await signInThrough(page, "carol")).toEqual({ ok: true, value: true });
  // The code is gone from the address bar; the verifier never was in a URL.
  expect(page.url()).not.toMatch(/[?&](code|state)=/);
  await expect(page.getByTestId("oidc-subject")).toHaveText("carol");

  const token = await tokenOf(page);
  if (!token.ok) throw new Error(token.error);
  const jkt = await page.evaluate(() => window.signInPage.thumbprint());
  expect((claimsOf(token.value).cnf as { jkt?: string }).jkt).toBe(jkt);
  const authorization = new URL(requests.find((url) => url.startsWith(`${IDP_URL}/auth?`)) ?? "");
  expect(authorization.searchParams.get("dpop_jkt")).toBe(jkt);
  expect(authorization.searchParams.get("code_challenge_method")).toBe("S256");
  expect(authorization.search).not.toMatch(/verifier/);

  const stats = await idpStats(request);
  expect(stats.provider).toMatchObject({
    tokenRequests: 1,
    grants: { authorization_code: 1 },
    invalidGrants: 0,
  });
  expect(stats.api).toMatchObject({ accepted: 1, dpopAccepted: 1, unauthenticated: 0 });
});

test("three pages share the session for 20 s of 4 s tokens: one sign-in, every refresh rotated, no invalid_grant, no failed call", async ({
  context,
  request,
}) => {
  test.setTimeout(90_000);
  const first = await openPage(context);
  await signInThrough(first);
  const others = [await openPage(context), await openPage(context)];
  const pages = [first, ...others];

  const failures: string[] = [];
  let calls = 0;
  const until = Date.now() + 20_000;
  await Promise.all(
    pages.map(async (page) => {
      while (Date.now() < until) {
        const result = await whoAmI(page);
        calls++;
        if (!result.ok) failures.push(result.error);
        await page.waitForTimeout(250);
      }
    }),
  );

  expect(failures).toEqual([]);
  const { provider, api } = await idpStats(request);
  const refreshes = provider.grants.refresh_token ?? 0;
  // 20 s of 4 s tokens, refreshed at half-life: several refreshes, each one for all three pages.
  expect(refreshes).toBeGreaterThanOrEqual(20 / IDP_ACCESS_TOKEN_TTL);
  expect(refreshes).toBeLessThanOrEqual(2 * (20 / (IDP_ACCESS_TOKEN_TTL / 2)) + 2);
  expect(provider).toMatchObject({
    grants: { authorization_code: 1 },
    refreshTokensConsumed: refreshes,
    invalidGrants: 0,
    refreshTokenReuse: 0,
    serverErrors: 0,
  });
  // Every call, and the one the first page made as it came back from the provider.
  expect(api).toMatchObject({ accepted: calls + 1, unauthenticated: 0 });
});

test("a reload needs no new sign-in while another page of the app is open", async ({
  context,
  request,
}) => {
  const first = await openPage(context);
  await signInThrough(first);
  const sibling = await openPage(context);
  expect((await whoAmI(sibling)).ok).toBe(true);

  // Time is the subject: the sibling's token is past its half-life, due for a refresh. The
  // sibling still hands over its session (token of any age and the refresh token).
  await sibling.waitForTimeout((IDP_ACCESS_TOKEN_TTL * 1000) / 2 + 500);
  await first.reload();
  await first.waitForFunction(() => window.signInPage !== undefined);
  expect(await whoAmI(first)).toEqual({ ok: true, value: "alice" });
  const { provider } = await idpStats(request);
  expect(provider.grants.authorization_code).toBe(1);
  expect(provider.grants.refresh_token ?? 0).toBeLessThanOrEqual(1);
  expect(provider).toMatchObject({ invalidGrants: 0, refreshTokenReuse: 0 });
});

test("clear() in one page revokes once at the provider and signs out every page", async ({
  context,
  request,
}) => {
  const first = await openPage(context);
  await signInThrough(first);
  const others = [await openPage(context), await openPage(context)];
  for (const page of others) expect((await whoAmI(page)).ok).toBe(true);

  await others[0]?.getByTestId("oidc-sign-out").click();

  await expect.poll(async () => (await idpStats(request)).provider.revocations).toBe(1);
  for (const page of [first, ...others]) {
    await expect(page.getByTestId("oidc-subject")).toHaveText("not signed in");
    const result = await tokenOf(page);
    expect(result).toMatchObject({ ok: false, code: 16 });
    expect(result.ok === false && result.error).toMatch(/sign-in-required/);
  }
  const { provider } = await idpStats(request);
  expect(provider).toMatchObject({ revocationRequests: 1, grantsRevoked: 1 });
});

test("error=access_denied comes back as a clear error, with no token request", async ({
  context,
  request,
}) => {
  const page = await openPage(context);
  await atProvider(page, () => page.getByTestId("oidc-sign-in").click(), { cancel: true });

  const result = await callbackOf(page);
  expect(result).toMatchObject({ ok: false, code: 16 });
  expect(result.ok === false && result.error).toMatch(/access_denied/);
  await expect(page.getByTestId("oidc-error")).toContainText("access_denied");
  expect(page.url()).not.toMatch(/error=/);
  expect((await idpStats(request)).provider.tokenRequests).toBe(0);
});

test("a wrong state, a replayed callback and a callback in a page that never signed in are refused, with no token request", async ({
  browser,
  context,
  request,
}) => {
  const answer = (state: string) =>
    `/sign-in.html?${new URLSearchParams({ code: "a-code", state, iss: IDP_URL })}`;

  // In a page that never started a sign-in (its own sessionStorage): refused.
  const stranger = await openPage(context, answer("any-state"));
  const foreign = await callbackOf(stranger);
  expect(foreign.ok === false && foreign.error).toMatch(/never started/);

  // With a state other than the one this page sent: refused. The page left for the provider
  // (in a fresh browser context, so the provider stops at its login form) and an answer with
  // another state comes back instead.
  const fresh = await browser.newContext({ baseURL: WEB_URL });
  const page = await openPage(fresh);
  await page.getByTestId("oidc-sign-in").click();
  await page.waitForURL((url) => url.pathname.includes("/interaction/"), { waitUntil: "commit" });
  await page.goto(answer("forged"));
  await page.waitForFunction(() => window.signInPage !== undefined);
  const wrongState = await callbackOf(page);
  expect(wrongState.ok === false && wrongState.error).toMatch(/state does not match/);
  await fresh.close();

  // A callback used once, then replayed in the same page: refused the second time.
  const user = await openPage(context);
  const landed = await atProvider(user, () => user.getByTestId("oidc-sign-in").click());
  expect(await callbackOf(user)).toEqual({ ok: true, value: true });
  await user.goto(new URL(landed).pathname + new URL(landed).search);
  await user.waitForFunction(() => window.signInPage !== undefined);
  const replayed = await callbackOf(user);
  expect(replayed.ok === false && replayed.error).toMatch(/no sign-in waiting/);

  // Only the honest sign-in reached the token endpoint.
  expect((await idpStats(request)).provider).toMatchObject({
    tokenRequests: 1,
    grants: { authorization_code: 1 },
    invalidGrants: 0,
  });
});

test("two pages signing in at once end with one session", async ({ context, request }) => {
  const [a, b] = [await openPage(context), await openPage(context)];
  // The provider takes one login at a time in one browser session (a second one at once ends in
  // "interaction session and authentication session mismatch"): b's authorization request waits
  // in the browser until a is back. b's sign-in itself starts while a is at the provider.
  let aIsBack = () => {};
  const aBack = new Promise<void>((resolve) => {
    aIsBack = resolve;
  });
  await b.route(
    (url) => url.href.startsWith(`${IDP_URL}/auth?`),
    async (route) => {
      await aBack;
      await route.continue();
    },
  );
  const first = atProvider(a, () => a.getByTestId("oidc-sign-in").click());
  await a.waitForURL((url) => url.href.startsWith(IDP_URL), { waitUntil: "commit" });
  // a's page is gone: no tab answers b's question for a key. b names the key a kept.
  const second = atProvider(b, () => b.getByTestId("oidc-sign-in").click());
  await first;
  aIsBack();
  await second;
  expect(await callbackOf(a)).toEqual({ ok: true, value: true });
  expect(await callbackOf(b)).toEqual({ ok: true, value: true });

  const [ta, tb] = await Promise.all([tokenOf(a), tokenOf(b)]);
  expect(ta.ok && tb.ok && ta.value === tb.value).toBe(true);
  // A refresh later: one refresh token for both pages, never a second session's.
  expect(await whoAmI(b)).toEqual({ ok: true, value: "alice" });
  const { provider } = await idpStats(request);
  expect(provider).toMatchObject({
    grants: { authorization_code: 1 },
    invalidGrants: 0,
    refreshTokenReuse: 0,
  });
});

test("the demo page's Sign in with OpenID link signs in by redirect", async ({
  context,
  request,
}) => {
  const page = await context.newPage();
  await page.goto("/index.html");
  await atProvider(page, () => page.getByTestId("sign-in-openid").click(), { login: "dora" });
  await expect(page.getByTestId("oidc-subject")).toHaveText("dora");
  expect((await idpStats(request)).provider.grants).toEqual({ authorization_code: 1 });
});
