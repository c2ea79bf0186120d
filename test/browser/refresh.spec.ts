import { expect, ok, test } from "./fixtures.js";

test("short-lived tokens are refreshed before they expire, so the server never rejects one", async ({
  harness,
  backend,
  page,
}) => {
  // The server announces whole seconds left (expires_in 2), so a 3 s token lives ~2 s here and is
  // refreshed after half of that: 7 s of calls span more than two lifetimes.
  await backend.tokenTtl(3);
  const started = Date.now();
  let calls = 0;
  while (Date.now() - started < 7_000) {
    ok(await harness.whoAmI());
    calls++;
    await page.waitForTimeout(200);
  }

  const server = await backend.stats();
  const stats = await harness.stats();
  expect(server.unauthenticated).toBe(0);
  expect(stats.replays).toBe(0);
  expect(stats.tokensFetched).toBe(server.tokenRequests);
  // Refreshed several times, yet far from once per call.
  expect(stats.tokensFetched).toBeGreaterThanOrEqual(4);
  expect(stats.tokensFetched).toBeLessThan(calls / 2);
});
