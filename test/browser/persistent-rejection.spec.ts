import { expect, ok, test } from "./fixtures.js";

test("a server that keeps refusing gets one replay, the session ends, and the next call fails fast", async ({
  harness,
  backend,
}) => {
  ok(await harness.whoAmI());
  await backend.revoke({ future: true });

  const unary = await harness.whoAmI();
  const stream = await harness.ticks({ count: 3 });

  expect(unary).toMatchObject({ ok: false, error: { code: "Unauthenticated" } });
  // The token that replaced the refused one was refused too: a new token will not help, so the
  // stream is not sent, and no token is fetched for it while the source backs off.
  expect(stream).toMatchObject({
    ticks: [],
    error: { code: "Unauthenticated", tokenFetch: { reason: "token-refused", repeated: true } },
  });
  expect(await harness.stats()).toMatchObject({
    replays: 1,
    errors: 2,
    sessionEnded: ["token-refused"],
  });
  // The cached token refused, one refresh, the fresh token refused; no loop.
  expect(await backend.stats()).toMatchObject({
    unauthenticated: 2,
    tokenRequests: 2,
    calls: { WhoAmI: 3 },
  });
});
