import { expect, ok, test } from "./fixtures.js";

/** How long the token endpoint holds the refresh the calls wait for. */
const REFRESH_DELAY_MS = 3_000;
/** When the server fails the stream started before the sign-out. */
const STREAM_FAILS_AFTER_MS = 3_000;

test("signing out while calls wait for a refresh or a rejection makes no token request after it and leaves no token", async ({
  harness,
  backend,
  page,
}) => {
  ok(await harness.whoAmI());
  // A stream that the server fails (Unauthenticated) after its first tick, 3 s from now: after
  // the sign-out.
  const stream = harness.ticks({ count: 5, intervalMs: STREAM_FAILS_AFTER_MS, failAfter: 1 });
  await expect.poll(async () => (await backend.stats()).calls.Ticks).toBe(1);
  // Calls rejected at once, then waiting for a refresh the endpoint holds for 3 s.
  await backend.revoke();
  await backend.tokenFault({ delayMs: REFRESH_DELAY_MS, times: 1 });
  const calls = harness.many(5);
  await expect.poll(async () => (await backend.stats()).tokenRequests).toBe(2);
  expect(await harness.stats()).toMatchObject({ replays: 0 });

  await harness.clear();
  const atSignOut = await backend.stats();

  // The waiting calls end when the sign-out abandons their refresh; none is sent again.
  for (const result of await calls) {
    expect(result).toMatchObject({ ok: false, error: { code: "Canceled" } });
  }
  // The stream opened with the session's token ends with it, before the server would fail it
  // (its first tick may or may not have reached the page by then: the sign-out does not wait).
  const streamed = await stream;
  expect(streamed).toMatchObject({ error: { code: "Canceled" } });
  expect([[], [1]]).toContainEqual(streamed.ticks);
  // Outlive the held refresh's answer: it must not bring a token back.
  await page.waitForTimeout(REFRESH_DELAY_MS);

  expect(await harness.peek()).toBeNull();
  expect(await harness.stats()).toMatchObject({ tokensFetched: 1, replays: 0 });
  const after = await backend.stats();
  expect(after.tokenRequests).toBe(atSignOut.tokenRequests);
  // The revoked calls were answered once each; nothing was replayed after the sign-out.
  expect(after.calls).toEqual({ WhoAmI: 6, Ticks: 1 });
});
