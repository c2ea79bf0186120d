import { expect, ok, test } from "./fixtures.js";

test("a server that keeps refusing gets one replay per call, then Unauthenticated reaches the page", async ({
  harness,
  backend,
}) => {
  ok(await harness.whoAmI());
  await backend.revoke({ future: true });

  const unary = await harness.whoAmI();
  const stream = await harness.ticks({ count: 3 });

  expect(unary).toMatchObject({ ok: false, error: { code: "Unauthenticated" } });
  expect(stream).toMatchObject({ ticks: [], error: { code: "Unauthenticated" } });
  // Each call: the cached token refused, one refresh, the fresh token refused; no loop.
  expect(await harness.stats()).toMatchObject({ replays: 2, errors: 2 });
  expect(await backend.stats()).toMatchObject({ unauthenticated: 4, tokenRequests: 4 });
});
