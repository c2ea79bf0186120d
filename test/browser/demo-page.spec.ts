import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { expect, PASSWORD, test } from "./fixtures.js";

test("the demo page signs in, calls, streams, survives a revocation and signs out", async ({
  page,
  backend,
  clientKind,
}, testInfo) => {
  const entries = page.getByTestId("log-entry");
  /** The newest log entry, once there are `count`. */
  const entry = async (count: number) => {
    await expect(entries).toHaveCount(count);
    return entries.first();
  };

  await page.goto("/");
  // The backend runs in test mode, and the page noticed.
  await expect(page.getByTestId("revoke")).toBeEnabled();
  const protocol = page.getByTestId(`protocol-${clientKind}`);
  await protocol.check();
  const protocolLabel = (await page.locator("label", { has: protocol }).textContent())?.trim();

  // A wrong password: the clear error from the core's table.
  await page.getByLabel("Username").fill("alice");
  await page.getByLabel("Password").fill("not-the-password");
  await page.getByRole("button", { name: "Sign in" }).click();
  let latest = await entry(1);
  await expect(latest).toHaveAttribute("data-outcome", "Unauthenticated");
  await expect(latest.getByTestId("log-detail")).toHaveText(
    /^the token endpoint answered 401 .*: "invalid username or password"$/,
  );
  await expect(page.getByTestId("subject")).toHaveText(/^not signed in/);

  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  latest = await entry(2);
  await expect(latest).toHaveAttribute("data-outcome", "OK");
  await expect(latest.getByTestId("log-protocol")).toHaveText(protocolLabel ?? "");
  await expect(page.getByTestId("subject")).toHaveText("alice");
  await expect(page.getByTestId("tokens-fetched")).toHaveText("1");
  await expect(page.getByTestId("rotations")).toHaveText("0");
  await expect(page.getByTestId("token-binding")).toHaveText("Bearer");
  await expect(page.getByTestId("token-lifetime")).toHaveText(/^\d+:\d\d left$/);

  await page.getByRole("button", { name: "Stream 5 ticks" }).click();
  latest = await entry(3);
  await expect(latest).toHaveAttribute("data-method", "Ticks");
  await expect(latest).toHaveAttribute("data-outcome", "OK");
  await expect(latest.getByTestId("log-detail")).toHaveText("5 ticks: 1 2 3 4 5");

  await page.getByRole("button", { name: "Revoke all tokens" }).click();
  latest = await entry(4);
  await expect(latest).toHaveAttribute("data-outcome", "info");
  await page.getByRole("button", { name: "Call WhoAmI" }).click();
  latest = await entry(5);
  await expect(latest).toHaveAttribute("data-outcome", "OK");
  await expect(latest).toHaveAttribute("data-replayed", "true");
  await expect(latest.getByTestId("log-detail")).toContainText("replayed once with a new token");
  await expect(page.getByTestId("replays")).toHaveText("1");
  await expect(page.getByTestId("tokens-fetched")).toHaveText("2");
  // The new token came from the refresh token, which the server rotated.
  await expect(page.getByTestId("rotations")).toHaveText("1");
  await expect(page.getByTestId("subject")).toHaveText("alice");

  const screenshot = await page.screenshot({ fullPage: true });
  await testInfo.attach("demo page", { body: screenshot, contentType: "image/png" });
  await writeFile(join(testInfo.project.outputDir, `demo-page-${clientKind}.png`), screenshot);
  // Neither the token nor the typed password is ever on the page.
  const html = await page.content();
  expect(html).not.toMatch(/eyJ[\w-]+\.eyJ/);
  expect(html).not.toContain("not-the-password");

  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page.getByTestId("subject")).toHaveText("not signed in");
  await expect(page.getByTestId("token-lifetime")).toHaveText("none");
  await expect(page.getByLabel("Password")).toHaveValue("");
  await expect(page.getByRole("button", { name: "Call WhoAmI" })).toBeDisabled();
  // Signing out revoked the refresh token at the server, once.
  await expect.poll(async () => (await backend.stats()).revocations).toBe(1);

  // Token requests: the 401, the sign-in, the refresh after the revocation. WhoAmI: the sign-in,
  // the revoked call and its replay.
  expect(await backend.stats()).toMatchObject({
    tokenRequests: 3,
    tokensIssued: 2,
    rotations: 1,
    revokeRequests: 1,
    revocations: 1,
    unauthenticated: 1,
    calls: { WhoAmI: 3, Ticks: 1 },
  });
});

test("the demo page with DPoP checked calls with DPoP-bound tokens", async ({
  page,
  backend,
  clientKind,
}) => {
  const entries = page.getByTestId("log-entry");
  await page.goto("/");
  await page.getByTestId(`protocol-${clientKind}`).check();
  await page.getByLabel("DPoP").check();
  await page.getByLabel("Username").fill("alice");
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(entries.first()).toHaveAttribute("data-outcome", "OK");
  await expect(page.getByTestId("token-binding")).toHaveText(/^DPoP/);

  await page.getByRole("button", { name: "Stream 5 ticks" }).click();
  await expect(entries).toHaveCount(2);
  await expect(entries.first()).toHaveAttribute("data-outcome", "OK");

  expect(await backend.stats()).toMatchObject({
    dpopTokensIssued: 1,
    dpopCalls: 2,
    dpopKeys: 1,
    unauthenticated: 0,
  });
});

test("the demo page says signed out when the server refuses every token, and signs in again", async ({
  page,
  backend,
  clientKind,
}) => {
  const entries = page.getByTestId("log-entry");
  await page.goto("/");
  await expect(page.getByTestId("revoke")).toBeEnabled();
  await page.getByTestId(`protocol-${clientKind}`).check();
  const signIn = async () => {
    await page.getByLabel("Username").fill("alice");
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Sign in" }).click();
  };

  await signIn();
  await expect(entries.first()).toHaveAttribute("data-outcome", "OK");
  await expect(page.getByTestId("subject")).toHaveText("alice");
  // Signed in: the page keeps no password; the grant refreshes with the server's refresh token.
  await expect(page.getByLabel("Password")).toHaveValue("");

  // Every token, issued now or later, is refused: the cached one, and the one fetched to replace it.
  await backend.revoke({ future: true });
  await page.getByRole("button", { name: "Call WhoAmI" }).click();
  await expect(entries).toHaveCount(2);
  await expect(entries.first()).toHaveAttribute("data-outcome", "Unauthenticated");
  await expect(page.getByTestId("subject")).toHaveText("signed out — sign in again");
  await expect(page.getByRole("button", { name: "Call WhoAmI" })).toBeDisabled();
  // The sign-in, then one refresh: no loop.
  expect(await backend.stats()).toMatchObject({
    tokenRequests: 2,
    unauthenticated: 2,
    calls: { WhoAmI: 3 },
  });

  // Once the server issues good tokens again, signing in again works.
  await backend.reset();
  await signIn();
  await expect(entries).toHaveCount(3);
  await expect(entries.first()).toHaveAttribute("data-outcome", "OK");
  await expect(page.getByTestId("subject")).toHaveText("alice");
});

test("the demo page says signed out when the refresh token is refused, as it keeps no password", async ({
  page,
  backend,
  clientKind,
}) => {
  const entries = page.getByTestId("log-entry");
  await page.goto("/");
  await page.getByTestId(`protocol-${clientKind}`).check();
  await page.getByLabel("Username").fill("alice");
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByTestId("subject")).toHaveText("alice");

  // The access token and the refresh token are both refused: without a password, the session ends.
  await backend.revokeRefresh();
  await backend.revoke();
  await page.getByRole("button", { name: "Call WhoAmI" }).click();
  await expect(entries).toHaveCount(2);
  await expect(entries.first()).toHaveAttribute("data-outcome", "Unauthenticated");
  await expect(page.getByTestId("subject")).toHaveText("signed out — sign in again");
  // One sign-in with the password, one refused refresh; the password was not sent again.
  expect(await backend.stats()).toMatchObject({
    tokenRequests: 2,
    passwordSignIns: 1,
    refreshRequests: 1,
  });
});
