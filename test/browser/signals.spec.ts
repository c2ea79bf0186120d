import type { Page } from "@playwright/test";
import { expect, test } from "./fixtures.js";

/** Opens signals.html set up with the project's client kind (and `password`, if given). */
async function openSignals(page: Page, kind: string, password?: string): Promise<void> {
  await page.goto("/signals.html");
  await page.waitForFunction(() => window.signals !== undefined);
  await page.evaluate(([k, p]) => window.signals.setup(k as never, p ?? undefined), [
    kind,
    password ?? null,
  ] as const);
}

test("clear() ends a server stream opened with the session's token: Canceled, and no message after", async ({
  page,
  clientKind,
  backend,
}) => {
  await openSignals(page, clientKind);

  // 15 ticks, 100 ms apart; sign out after the third.
  const result = await page.evaluate(() =>
    window.signals.clearDuring({ count: 15, intervalMs: 100 }, 3),
  );

  expect(result).toMatchObject({ before: 3, after: 0, error: { code: "Canceled" } });
  expect(result.error?.message).toMatch(/signed out/);
  // One stream, one token request: sign-out asked for no new token.
  expect((await backend.stats()).tokenRequests).toBe(1);
});

test("the TanStack Query recipe ends a query in error with Unauthenticated after a wrong password, never pending", async ({
  page,
  clientKind,
  backend,
}) => {
  await openSignals(page, clientKind, "not-the-password-7f3a");

  await page.evaluate(() => window.signals.mountQuery());

  await expect(page.getByTestId("query")).toHaveText("error idle - Unauthenticated");
  expect(await page.evaluate(() => window.signals.signIns)).toEqual(["credentials-refused"]);
  expect((await backend.stats()).tokenRequests).toBe(1);
});

test("the TanStack Query recipe turns a query with data into error with Unauthenticated on session-ended, not stale success", async ({
  page,
  clientKind,
  backend,
}) => {
  await openSignals(page, clientKind);
  await page.evaluate(() => window.signals.mountQuery());
  await expect(page.getByTestId("query")).toHaveText("success idle alice -");

  // Every token from now on is refused: another call's replay ends the session.
  await backend.revoke({ future: true });
  const call = await page.evaluate(() => window.signals.whoAmI());
  expect(call).toMatchObject({ ok: false, error: { code: "Unauthenticated" } });

  await expect(page.getByTestId("query")).toHaveText("error idle alice Unauthenticated");
  expect(await page.evaluate(() => window.signals.signIns)).toEqual(["token-refused"]);
  // The sign-in, the replay's refresh; the query's refetch fails without a request.
  expect((await backend.stats()).tokenRequests).toBe(2);
});
