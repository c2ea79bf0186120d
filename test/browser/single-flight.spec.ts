import { expect, ok, test } from "./fixtures.js";

test("the first call fetches one token and the next call reuses it", async ({
  harness,
  backend,
}) => {
  const first = ok(await harness.whoAmI());
  expect(first.subject).toBe("alice");
  expect((await harness.stats()).tokensFetched).toBe(1);
  expect((await backend.stats()).tokenRequests).toBe(1);

  const second = ok(await harness.whoAmI());
  expect(second.tokenId).toBe(first.tokenId);
  expect((await harness.stats()).tokensFetched).toBe(1);
  expect(await backend.stats()).toMatchObject({ tokenRequests: 1, calls: { WhoAmI: 2 } });
});

test("20 concurrent calls share one token fetch", async ({ harness, backend }) => {
  const values = (await harness.many(20)).map(ok);

  expect(values).toHaveLength(20);
  expect(new Set(values.map((v) => v.tokenId)).size).toBe(1);
  expect(await harness.stats()).toMatchObject({ tokensFetched: 1, replays: 0, errors: 0 });
  expect(await backend.stats()).toMatchObject({
    tokenRequests: 1,
    tokensIssued: 1,
    unauthenticated: 0,
    calls: { WhoAmI: 20 },
  });
});
