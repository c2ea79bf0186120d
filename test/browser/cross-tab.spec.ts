import type { BrowserContext, Page } from "@playwright/test";
import type { CallResult, HarnessStats } from "../../demo/web/harness.js";
import type { WhoAmI } from "../../demo/web/lib/clients.js";
import { expect, ok, test } from "./fixtures.js";

// Four pages of one origin, each with its own token source in crossTab mode: one token
// request for all of them. Cross-tab sharing does not depend on the client kind, so these
// run in one project only.
test.skip(({ clientKind }) => clientKind !== "grpc-web", "cross-tab runs in the grpc-web project");

/** A harness page with a crossTab token source on `channel`. */
async function openTab(context: BrowserContext, channel: string): Promise<Page> {
  const page = await context.newPage();
  await page.goto("/harness.html");
  await page.waitForFunction(() => window.harness !== undefined);
  await page.evaluate((c) => window.harness.setup({ client: "grpc-web", crossTab: c }), channel);
  return page;
}

const whoAmI = (page: Page): Promise<CallResult<WhoAmI>> =>
  page.evaluate(() => window.harness.whoAmI());
const stats = (page: Page): Promise<HarnessStats> => page.evaluate(() => window.harness.stats());
const peek = (page: Page) => page.evaluate(() => window.harness.peek());

async function openTabs(context: BrowserContext, channel = "app", n = 4): Promise<Page[]> {
  return Promise.all(Array.from({ length: n }, () => openTab(context, channel)));
}

async function fetchedAcross(pages: Page[]): Promise<number> {
  const all = await Promise.all(pages.map(stats));
  return all.reduce((sum, s) => sum + s.tokensFetched, 0);
}

test("a cold start in four tabs at once makes one token request", async ({ context, backend }) => {
  const tabs = await openTabs(context);

  const results = (await Promise.all(tabs.map(whoAmI))).map(ok);

  expect(new Set(results.map((r) => r.tokenId)).size).toBe(1);
  expect(await backend.stats()).toMatchObject({ tokenRequests: 1, unauthenticated: 0 });
  expect(await fetchedAcross(tabs)).toBe(1);
});

test("an expiring token is refreshed once across the tabs", async ({ context, backend }) => {
  // 3 s tokens are announced as 2 s; the library refreshes them after half of that.
  await backend.tokenTtl(3);
  const tabs = await openTabs(context);
  (await Promise.all(tabs.map(whoAmI))).map(ok);
  await new Promise((resolve) => setTimeout(resolve, 1_300));

  (await Promise.all(tabs.map(whoAmI))).map(ok);

  expect(await backend.stats()).toMatchObject({ tokenRequests: 2, unauthenticated: 0 });
});

test("a token revoked and refreshed in one tab is used by the others without fetching", async ({
  context,
  backend,
}) => {
  const [first, ...others] = await openTabs(context);
  if (first === undefined) throw new Error("no tabs");
  (await Promise.all([first, ...others].map(whoAmI))).map(ok);
  const fetchedBefore = await Promise.all(
    others.map(async (tab) => (await stats(tab)).tokensFetched),
  );
  await backend.revoke();

  const refreshed = ok(await whoAmI(first));
  await new Promise((resolve) => setTimeout(resolve, 100));
  const rest = (await Promise.all(others.map(whoAmI))).map(ok);

  expect(rest.every((r) => r.tokenId === refreshed.tokenId)).toBe(true);
  // Only the first tab's first attempt was refused; the others never sent the revoked token.
  expect(await backend.stats()).toMatchObject({ tokenRequests: 2, unauthenticated: 1 });
  const fetchedAfter = await Promise.all(
    others.map(async (tab) => (await stats(tab)).tokensFetched),
  );
  expect(fetchedAfter).toEqual(fetchedBefore);
});

test("closing the tab that holds the lock mid-fetch lets another tab fetch; none hangs", async ({
  context,
  backend,
}) => {
  const [holder, waiter] = await openTabs(context, "app", 2);
  if (holder === undefined || waiter === undefined) throw new Error("no tabs");
  // The first token request hangs for 20 s: the holder takes the lock and waits on it.
  await backend.tokenFault({ delayMs: 20_000, times: 1 });
  void whoAmI(holder).catch(() => {});
  // The holder has the lock once its token request reached the backend.
  await expect.poll(async () => (await backend.stats()).tokenRequests).toBe(1);
  const started = Date.now();
  const waiting = whoAmI(waiter);
  await new Promise((resolve) => setTimeout(resolve, 300));

  await holder.close();

  expect(ok(await waiting).subject).toBe("alice");
  expect(Date.now() - started).toBeLessThan(10_000);
  expect(await backend.stats()).toMatchObject({ tokenRequests: 2 });
});

test("logging out in one tab leaves no tab with a token", async ({ context }) => {
  const tabs = await openTabs(context);
  (await Promise.all(tabs.map(whoAmI))).map(ok);
  for (const tab of tabs) expect(await peek(tab)).not.toBeNull();

  await tabs[0]?.evaluate(() => window.harness.clear());

  await expect
    .poll(async () => (await Promise.all(tabs.map(peek))).every((info) => info === null))
    .toBe(true);
});

test("two channels on one origin do not share", async ({ context, backend }) => {
  const one = await openTabs(context, "one", 2);
  const two = await openTabs(context, "two", 2);

  (await Promise.all([...one, ...two].map(whoAmI))).map(ok);

  expect(await backend.stats()).toMatchObject({ tokenRequests: 2 });
  expect(await fetchedAcross(one)).toBe(1);
  expect(await fetchedAcross(two)).toBe(1);
});

test("a token endpoint that is down is tried once for all the tabs, which all fail with Unavailable", async ({
  context,
  backend,
}) => {
  const tabs = await openTabs(context);
  await backend.tokenFault({ status: 503 });

  const results = await Promise.all(tabs.map(whoAmI));

  for (const result of results) {
    expect(result).toMatchObject({
      ok: false,
      error: { code: "Unavailable", tokenFetch: { status: 503 } },
    });
  }
  // One fetch (the first try and ky's two retries) for four tabs, not one per tab in turn.
  expect(await backend.stats()).toMatchObject({ tokenRequests: 3, tokensIssued: 0 });

  await backend.reset();
  // Every tab took the failing tab's backoff (0.5–1 s): wait it out, then one fetch serves all.
  await new Promise((resolve) => setTimeout(resolve, 1_100));
  (await Promise.all(tabs.map(whoAmI))).map(ok);
  expect(await backend.stats()).toMatchObject({ tokenRequests: 1 });
});
