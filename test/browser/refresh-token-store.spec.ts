import type { HarnessSetup } from "../../demo/web/harness.js";
import { sleep } from "../helpers/wait.js";
import { expect, ok, openHarness, test } from "./fixtures.js";

// A refresh token kept in a store every tab reads (localStorage) is safe only while the tabs take
// turns: `store` requires `shareAcrossTabs`, which serialises refreshes under a Web Lock. Counted
// at the server, which detects a spent refresh token presented again. Tab sharing does not depend
// on the client kind, so these run in one project only.
test.skip(({ clientKind }) => clientKind !== "grpc-web", "cross-tab runs in the grpc-web project");

/** The localStorage key the pages keep the refresh token under. */
const KEY = "demo-refresh-token";
const SHARED: Omit<HarnessSetup, "client"> = { crossTab: "app", store: KEY };
/** How long every page keeps calling, on 3 s tokens. */
const SOAK_MS = 30_000;

test("a store without crossTab makes createTokenSource throw a TypeError that says to add shareAcrossTabs", async ({
  page,
  clientKind,
}) => {
  await page.goto("/harness.html");
  await page.waitForFunction(() => window.harness !== undefined);

  const thrown = await page.evaluate((client) => {
    try {
      window.harness.setup({ client, store: "demo-refresh-token" });
      return undefined;
    } catch (error) {
      return error instanceof Error ? { name: error.name, message: error.message } : String(error);
    }
  }, clientKind);

  expect(thrown).toEqual({
    name: "TypeError",
    message: expect.stringContaining('crossTab: shareAcrossTabs("my-app")'),
  });
});

test("three pages keeping the refresh token in a localStorage store call for 30 s on 3 s tokens, one reloaded midway, with one sign-in and no refresh token reused", async ({
  context,
  clientKind,
  backend,
}) => {
  test.setTimeout(90_000);
  await backend.tokenTtl(3);
  const tabs = await Promise.all([1, 2, 3].map(() => openHarness(context, clientKind, SHARED)));
  const [reloaded] = tabs;
  if (reloaded === undefined) throw new Error("no tabs");
  let reloads = 0;

  const started = Date.now();
  const results = await Promise.all(
    tabs.map(async (tab) => {
      const mine = [];
      while (Date.now() - started < SOAK_MS) {
        if (tab === reloaded && reloads === 0 && Date.now() - started > SOAK_MS / 2) {
          reloads++;
          await tab.page.reload();
          await tab.page.waitForFunction(() => window.harness !== undefined);
          // A wrong password: a sign-in from this page would fail its call. It takes the session
          // from the store or the other tabs instead.
          await tab.setup({ ...SHARED, password: "not-the-password" });
        }
        mine.push(await tab.whoAmI());
        // Out of step with each other and with the token's lifetime.
        await sleep(50 + Math.random() * 200);
      }
      return mine;
    }),
  );

  expect(reloads).toBe(1);
  const all = results.flat();
  for (const result of all) ok(result);
  expect(all.length).toBeGreaterThan(3 * 30);
  expect(await reloaded.stats()).toMatchObject({ errors: 0, tokenErrors: 0, sessionEnded: [] });
  const stats = await backend.stats();
  expect(stats).toMatchObject({
    passwordSignIns: 1,
    // The reloaded page's wrong password never reached the server.
    passwordChecks: 1,
    reuseDetections: 0,
    invalidGrants: 0,
    unauthenticated: 0,
  });
  // Refreshes did happen (3 s tokens over 30 s), every one a rotation.
  expect(stats.rotations).toBeGreaterThanOrEqual(SOAK_MS / 3_000);
  expect(stats.rotations).toBe(stats.refreshRequests);
  // The pages kept the session's refresh token in the store, as a page opened later would find it.
  const stored = await reloaded.page.evaluate((key) => localStorage.getItem(key), KEY);
  expect(stored).toEqual(expect.any(String));
});
