import { expect, ok, openHarness, test } from "./fixtures.js";

// DPoP (RFC 9449) in Chromium against the demo backend, which verifies every proof and counts.

test("DPoP-bound tokens are accepted on unary and streaming calls, and a refresh keeps the key", async ({
  harness,
  backend,
}) => {
  await harness.setup({ dpop: true });

  ok(await harness.whoAmI());
  expect(await harness.ticks({ count: 3 })).toEqual({ ticks: [1, 2, 3] });

  expect(await backend.stats()).toMatchObject({
    dpopTokensIssued: 1,
    dpopCalls: 2,
    dpopKeys: 1,
    unauthenticated: 0,
    invalidDpopProofs: 0,
  });
  // Refused once, refreshed with the refresh token (bound to the same key), replayed.
  await backend.revoke();
  ok(await harness.whoAmI());
  expect(await harness.stats()).toMatchObject({ replays: 1, refreshes: 1 });
  expect(await backend.stats()).toMatchObject({
    rotations: 1,
    invalidGrants: 0,
    dpopTokensIssued: 2,
    dpopCalls: 3,
    dpopKeys: 1,
    unauthenticated: 1,
    invalidDpopProofs: 0,
  });
});

for (const method of ["WhoAmI", "Ticks"] as const) {
  test(`a nonce challenge on ${method} is answered with one replay, which succeeds`, async ({
    harness,
    backend,
  }) => {
    await harness.setup({ dpop: true });
    ok(await harness.whoAmI());
    await backend.dpopNonces(true);

    if (method === "WhoAmI") ok(await harness.whoAmI());
    else expect(await harness.ticks({ count: 3 })).toEqual({ ticks: [1, 2, 3] });

    const stats = await backend.stats();
    expect(stats).toMatchObject({
      dpopNonceChallenges: 1,
      dpopCalls: 2,
      tokenRequests: 1,
      invalidDpopProofs: 0,
    });
    // The first call, then the challenged attempt and its replay.
    expect(stats.calls).toEqual(method === "WhoAmI" ? { WhoAmI: 3 } : { WhoAmI: 1, Ticks: 2 });
    // A nonce replay is not a refresh.
    expect(await harness.stats()).toMatchObject({ replays: 0, tokensFetched: 1 });
  });
}

test("four pages sharing a DPoP source use one key, also for a refresh made by another page", async ({
  context,
  clientKind,
  backend,
}) => {
  test.skip(clientKind !== "grpc-web", "cross-tab runs in the grpc-web project");
  // 2 s tokens are refreshed after 1 s.
  await backend.tokenTtl(2);
  const tabs = await Promise.all(
    Array.from({ length: 4 }, () =>
      openHarness(context, clientKind, { crossTab: "app", dpop: true }),
    ),
  );
  (await Promise.all(tabs.map((tab) => tab.whoAmI()))).map(ok);
  await new Promise((resolve) => setTimeout(resolve, 1_200));

  ok(await tabs[2]?.whoAmI());
  (await Promise.all(tabs.map((tab) => tab.whoAmI()))).map(ok);

  expect(await tabs[2]?.stats()).toMatchObject({ refreshes: 1 });
  expect(await backend.stats()).toMatchObject({
    passwordSignIns: 1,
    rotations: 1,
    invalidGrants: 0,
    dpopTokensIssued: 2,
    dpopCalls: 9,
    dpopKeys: 1,
    invalidDpopProofs: 0,
  });
});

test("a key kept in IndexedDB is non-extractable and survives a reload", async ({
  harness,
  backend,
  clientKind,
  page,
}) => {
  test.skip(clientKind !== "grpc-web", "the key store does not depend on the client kind");
  const database = "t";
  await harness.setup({ dpopKeyStore: database });
  ok(await harness.whoAmI());

  const stored = await harness.storedKey(database);

  expect(stored).toEqual({
    found: true,
    privateKeyExtractable: false,
    algorithm: "ECDSA",
    exportError: "InvalidAccessError",
  });
  const [thumbprint] = (await backend.stats()).dpopThumbprints;

  await page.reload();
  await page.waitForFunction(() => window.harness !== undefined);
  await harness.setup({ dpopKeyStore: database });
  ok(await harness.whoAmI());

  // The refresh token lived in memory: a new sign-in, by the same key.
  expect(await backend.stats()).toMatchObject({
    passwordSignIns: 2,
    dpopTokensIssued: 2,
    dpopKeys: 1,
    dpopThumbprints: [thumbprint],
  });
});
