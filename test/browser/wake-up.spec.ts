import { CHROMIUM_ARGS, requireChromium } from "../../scripts/find-browser.mjs";
import { expect, ok, openHarness, test } from "./fixtures.js";

// A page that comes back — restored from the back/forward cache, visible again — catches up with
// the other tabs before its next call. Tab sharing does not depend on the client kind.
test.skip(({ clientKind }) => clientKind !== "grpc-web", "cross-tab runs in the grpc-web project");

// Playwright launches Chromium with --disable-back-forward-cache (its reason:
// BackForwardCacheDisabledByCommandLine), so that page.goBack() always ends in a "load"; this spec
// needs the cache the way users have it, and waits for the restore's `pageshow` instead.
test.use({
  launchOptions: {
    executablePath: requireChromium().path,
    args: CHROMIUM_ARGS,
    ignoreDefaultArgs: ["--disable-back-forward-cache"],
  },
});

test("a tab opened after the others' token went stale joins the session: one refresh, no second sign-in", async ({
  context,
  clientKind,
  backend,
}) => {
  // 4 s tokens are announced as 3 s and refreshed after 1.5 s.
  await backend.tokenTtl(4);
  const first = await openHarness(context, clientKind, { crossTab: "join" });
  ok(await first.whoAmI());
  await expect.poll(async () => (await first.peek())?.fresh, { timeout: 5_000 }).toBe(false);

  const late = await openHarness(context, clientKind, { crossTab: "join" });
  ok(await late.whoAmI());

  expect(await backend.stats()).toMatchObject({
    passwordSignIns: 1,
    refreshRequests: 1,
    reuseDetections: 0,
    unauthenticated: 0,
  });
});

test("a page restored from the back/forward cache applies a sign-out it missed before its next call", async ({
  context,
  clientKind,
  backend,
}) => {
  // With revocation, a call with the signed-out token would be refused: `unauthenticated` counts it.
  const stay = await openHarness(context, clientKind, { crossTab: "bfcache", revoke: true });
  const away = await openHarness(context, clientKind, { crossTab: "bfcache", revoke: true });
  const [, before] = (await Promise.all([stay.whoAmI(), away.whoAmI()])).map(ok);
  // Why Chromium did not restore the page, if it does not: the failure says.
  const cdp = await context.newCDPSession(away.page);
  const notRestored: unknown[] = [];
  cdp.on("Page.backForwardCacheNotUsed", (event) =>
    notRestored.push(...event.notRestoredExplanations),
  );
  await cdp.send("Page.enable");
  await away.page.evaluate(() => {
    (window as { wentAway?: boolean }).wentAway = true;
    window.addEventListener("pageshow", (event) => {
      const page = window as { restored?: boolean; callsWhenSignedOut?: number };
      page.restored = event.persisted;
      // The harness counts calls: how many had started when the sign-out applied in this page.
      const tokens = () => window.harness.peek();
      const watch = () => {
        if (tokens() === null) page.callsWhenSignedOut = window.harness.stats().calls;
        else setTimeout(watch, 5);
      };
      watch();
    });
  });
  await away.page.goto("/index.html");

  // The other tab signs out (and revokes) while this page sits in the cache: a message on the
  // channel would have evicted it, so the page hears of it only when it is back.
  await stay.clear();
  await expect.poll(async () => (await backend.stats()).revocations).toBe(1);
  // A restored page fires no "load": wait for the navigation to commit, then for its pageshow
  // (or, had it not been restored, for the fresh page to load).
  await away.page.goBack({ waitUntil: "commit" });
  await away.page.waitForFunction(() => {
    const page = window as { restored?: boolean; wentAway?: boolean; harness?: unknown };
    return page.wentAway ? page.restored !== undefined : page.harness !== undefined;
  });

  const restored = await away.page.evaluate(() => (window as { restored?: boolean }).restored);
  expect(restored, `not restored: ${JSON.stringify(notRestored)}`).toBe(true);
  // Signed out before any call: the page's one call is the one from before it went away.
  await expect
    .poll(() =>
      away.page.evaluate(() => (window as { callsWhenSignedOut?: number }).callsWhenSignedOut),
    )
    .toBe(1);
  const after = ok(await away.whoAmI());
  expect(after.subject).toBe("alice");
  expect(after.tokenId).not.toBe(before?.tokenId);
  // The sign-out applied first: a new sign-in, not a call with the signed-out token.
  expect(await backend.stats()).toMatchObject({ passwordSignIns: 2, unauthenticated: 0 });
});
