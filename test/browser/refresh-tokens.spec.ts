import type { BrowserContext } from "@playwright/test";
import type { ClientKind } from "../../demo/web/lib/clients.js";
import { sleep } from "../helpers/wait.js";
import { expect, type HarnessDriver, ok, openHarness, test } from "./fixtures.js";

// Rotating refresh tokens shared by four pages of one origin (shareAcrossTabs): counted at the
// server, which detects a spent refresh token presented again. Sharing does not depend on the
// client kind, so these run in one project only.
test.skip(({ clientKind }) => clientKind !== "grpc-web", "cross-tab runs in the grpc-web project");

async function openTabs(
  context: BrowserContext,
  clientKind: ClientKind,
  options: { revoke?: boolean } = {},
  n = 4,
): Promise<HarnessDriver[]> {
  return Promise.all(
    Array.from({ length: n }, () =>
      openHarness(context, clientKind, { crossTab: "app", ...options }),
    ),
  );
}

/** Access-token lifetime for the soak, in seconds (the server's token TTL). */
const SOAK_TTL_S = 3;
/** What the server announces in `expires_in`: the whole seconds left after rounding `exp` down. */
const ANNOUNCED_MS = (SOAK_TTL_S - 1) * 1000;
/** How long every page keeps calling. */
const SOAK_MS = 20_000;

test("four pages calling for 20 s on 3 s tokens refresh once per half-lifetime at most, with no refresh token reused", async ({
  context,
  clientKind,
  backend,
}) => {
  test.setTimeout(60_000);
  await backend.tokenTtl(SOAK_TTL_S);
  const tabs = await openTabs(context, clientKind);

  const started = Date.now();
  const results = await Promise.all(
    tabs.map(async (tab) => {
      const mine = [];
      while (Date.now() - started < SOAK_MS) {
        mine.push(await tab.whoAmI());
        // Out of step with each other and with the token's lifetime.
        await sleep(50 + Math.random() * 200);
      }
      return mine;
    }),
  );
  const elapsed = Date.now() - started;

  const all = results.flat();
  for (const result of all) ok(result);
  expect(all.length).toBeGreaterThan(4 * 20);
  const stats = await backend.stats();
  expect(stats).toMatchObject({
    passwordSignIns: 1,
    invalidGrants: 0,
    reuseDetections: 0,
    unauthenticated: 0,
  });
  // A token is not refreshed before half its announced lifetime (the refresh margin is capped at
  // half), and one refresh serves every page: at most one per half-lifetime, plus one at the edge.
  const bound = Math.floor(elapsed / (ANNOUNCED_MS / 2)) + 1;
  expect(stats.refreshRequests).toBeLessThanOrEqual(bound);
  // Every call succeeded well past the first token's expiry: refreshes did happen, in time.
  expect(stats.refreshRequests).toBeGreaterThanOrEqual(Math.floor(elapsed / ANNOUNCED_MS));
  expect(stats.rotations).toBe(stats.refreshRequests);
  expect(stats.tokenRequests).toBe(1 + stats.refreshRequests);
  // Each token was fetched by one page and handed to the others.
  const pages = await Promise.all(tabs.map((tab) => tab.stats()));
  const sum = (key: "tokensFetched" | "refreshes") => pages.reduce((n, s) => n + s[key], 0);
  expect(sum("tokensFetched")).toBe(1 + stats.refreshRequests);
  expect(sum("refreshes")).toBe(stats.refreshRequests);
  expect(pages.every((s) => s.sessionEnded.length === 0 && s.tokenErrors === 0)).toBe(true);
});

/** How long the token endpoint holds the refresh of the page that closes. */
const HELD_MS = 5_000;

test("a page closed in the middle of a refresh lets another page refresh with the same refresh token, and none is reused", async ({
  context,
  clientKind,
  backend,
}) => {
  // 2 s tokens are refreshed after 1 s.
  await backend.tokenTtl(2);
  const [holder, waiter, ...rest] = await openTabs(context, clientKind);
  if (holder === undefined || waiter === undefined) throw new Error("no tabs");
  (await Promise.all([holder, waiter, ...rest].map((tab) => tab.whoAmI()))).map(ok);
  // Time is the subject: the pages' 2 s tokens (real server, real browser clock) enter their
  // refresh window.
  await sleep(1_200);
  // The holder's refresh reaches the endpoint, which holds it; the holder waits on it with the lock.
  await backend.tokenFault({ delayMs: HELD_MS, times: 1 });
  void holder.whoAmI().catch(() => {});
  await expect.poll(async () => (await backend.stats()).tokenRequests).toBe(2);
  const waiting = waiter.whoAmI();
  // The waiter queues for the lock inside its page, where nothing shows it: give it a moment.
  await sleep(300);

  await holder.page.close();
  const closedAt = Date.now();

  expect(ok(await waiting).subject).toBe("alice");
  expect(Date.now() - closedAt).toBeLessThan(HELD_MS);
  expect(await waiter.stats()).toMatchObject({ refreshes: 1 });
  (await Promise.all(rest.map((tab) => tab.whoAmI()))).map(ok);
  // Outlive the held request: the server dropped it with the closed page, so it never spends the
  // refresh token the waiter used.
  await sleep(HELD_MS - (Date.now() - closedAt) + 500);
  expect(await backend.stats()).toMatchObject({
    passwordSignIns: 1,
    refreshRequests: 1,
    rotations: 1,
    reuseDetections: 0,
    invalidGrants: 0,
    unauthenticated: 0,
  });
  (await Promise.all([waiter, ...rest].map((tab) => tab.whoAmI()))).map(ok);
});

test("signing out in one page revokes the refresh token once and signs out every page; a later call signs in instead of refreshing", async ({
  context,
  clientKind,
  backend,
}) => {
  const tabs = await openTabs(context, clientKind, { revoke: true });
  const [first, , third] = tabs;
  if (first === undefined || third === undefined) throw new Error("no tabs");
  const before = (await Promise.all(tabs.map((tab) => tab.whoAmI()))).map(ok);

  await first.clear();

  await expect
    .poll(async () => (await Promise.all(tabs.map((tab) => tab.peek()))).every((i) => i === null))
    .toBe(true);
  await expect.poll(async () => (await backend.stats()).revokeRequests).toBe(1);
  // The other pages heard of the sign-out: they revoke nothing themselves (an absence: wait a while).
  await sleep(500);
  expect(await backend.stats()).toMatchObject({ revokeRequests: 1, revocations: 1 });

  const after = ok(await third.whoAmI());

  expect(after.tokenId).not.toBe(before[0]?.tokenId);
  // The revoked refresh token was never presented: a new sign-in instead.
  expect(await backend.stats()).toMatchObject({
    passwordSignIns: 2,
    refreshRequests: 0,
    invalidGrants: 0,
    revokeRequests: 1,
  });
});
