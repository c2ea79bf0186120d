import { expect, ok, test } from "./fixtures.js";

test("cancelling a stream stops it: no more ticks and no late end", async ({
  harness,
  backend,
}) => {
  const result = await harness.cancelAfter({ count: 20, intervalMs: 50 }, 2, 1_000);

  expect(result.ticks).toEqual([1, 2]);
  expect(result.error?.code).toBe("Canceled");
  expect(await backend.stats()).toMatchObject({ tokenRequests: 1, unauthenticated: 0 });
});

test("one token serves this client and a Connect client on the same source", async ({
  harness,
  backend,
}) => {
  const results = (await harness.sharedWith("connect", 5)).map(ok);

  expect(new Set(results.map((r) => r.tokenId)).size).toBe(1);
  expect(await harness.stats()).toMatchObject({ tokensFetched: 1, errors: 0 });
  expect(await backend.stats()).toMatchObject({ tokenRequests: 1, calls: { WhoAmI: 10 } });

  // A revocation noticed by either client is one refresh for both.
  await backend.revoke();
  (await harness.sharedWith("connect", 3)).map(ok);
  expect(await backend.stats()).toMatchObject({ tokenRequests: 2 });
});
