import { expect, ok, test } from "./fixtures.js";

test("after a revocation each concurrent call is replayed once and succeeds on one new token", async ({
  harness,
  backend,
}) => {
  const before = ok(await harness.whoAmI());
  await backend.revoke();

  const values = (await harness.many(5)).map(ok);

  const tokenIds = new Set(values.map((v) => v.tokenId));
  expect(tokenIds.size).toBe(1);
  expect(tokenIds.has(before.tokenId)).toBe(false);
  expect(await harness.stats()).toMatchObject({ tokensFetched: 2, replays: 5, errors: 0 });
  expect(await backend.stats()).toMatchObject({
    tokenRequests: 2,
    unauthenticated: 5,
    calls: { WhoAmI: 11 },
  });
});

test("a stream rejected before its first message is replayed and delivers every message", async ({
  harness,
  backend,
}) => {
  ok(await harness.whoAmI());
  await backend.revoke();

  const result = await harness.ticks({ count: 5, intervalMs: 20 });

  expect(result).toEqual({ ticks: [1, 2, 3, 4, 5] });
  expect(await harness.stats()).toMatchObject({ tokensFetched: 2, replays: 1, errors: 0 });
  expect(await backend.stats()).toMatchObject({ unauthenticated: 1, calls: { Ticks: 2 } });
});

test("a stream rejected after a message is not replayed and its error reaches the page", async ({
  harness,
  backend,
}) => {
  const result = await harness.ticks({ count: 5, failAfter: 2 });

  expect(result.ticks).toEqual([1, 2]);
  expect(result.error).toMatchObject({
    code: "Unauthenticated",
    message: "token rejected mid-stream (fail_after)",
  });
  await expect(harness.log.last()).toHaveText(
    "Ticks → Unauthenticated: token rejected mid-stream (fail_after)",
  );
  expect(await harness.stats()).toMatchObject({ replays: 0, errors: 1 });
  expect((await backend.stats()).calls).toEqual({ Ticks: 1 });

  // The source was told: the rejected token is not sent again, a new one is fetched.
  ok(await harness.whoAmI());
  expect(await harness.stats()).toMatchObject({ tokensFetched: 2, replays: 0 });
  expect((await backend.stats()).unauthenticated).toBe(1);
});
