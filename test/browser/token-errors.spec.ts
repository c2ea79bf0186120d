import { expect, ok, test } from "./fixtures.js";

/** Past the token source's first backoff after a failed fetch (0.5–1 s). */
const BACKOFF_MS = 1_100;

test("a token endpoint that is down fails the call with Unavailable, fails fast during the backoff, and succeeds after recovery", async ({
  harness,
  backend,
  page,
}) => {
  await backend.tokenFault({ status: 503 });

  // A second call right after the failure, well within the backoff (0.5–1 s).
  const [result, again] = await page.evaluate(async () => {
    const first = await window.harness.whoAmI();
    return [first, await window.harness.whoAmI()] as const;
  });

  expect(result).toMatchObject({
    ok: false,
    error: { code: "Unavailable", tokenFetch: { status: 503 } },
  });
  if (result.ok) return;
  expect(result.error.message).toMatch(/^the token endpoint answered 503\b/);
  await expect(harness.log.first()).toHaveText(
    /^WhoAmI → Unavailable: the token endpoint answered 503 .*: "injected fault"$/,
  );
  // The second call failed fast with the same failure, without a request of its own.
  expect(again).toMatchObject({
    ok: false,
    error: { code: "Unavailable", tokenFetch: { status: 503, repeated: true } },
  });
  // The first try and ky's two retries; the service never saw either call.
  expect(await backend.stats()).toMatchObject({ tokenRequests: 3, tokensIssued: 0, calls: {} });

  await backend.reset();
  await page.waitForTimeout(BACKOFF_MS);
  expect(ok(await harness.whoAmI()).subject).toBe("alice");
  expect(await harness.stats()).toMatchObject({ tokensFetched: 1 });
  expect((await backend.stats()).tokenRequests).toBe(1);
});

test("a token endpoint that answers garbage fails the call with Internal, and a call after recovery and the backoff succeeds", async ({
  harness,
  backend,
  page,
}) => {
  await backend.tokenFault({ status: 200, body: "<html>", contentType: "text/html" });

  const result = await harness.whoAmI();

  expect(result).toMatchObject({
    ok: false,
    error: {
      code: "Internal",
      message: "the token response is not JSON",
      tokenFetch: { status: 200 },
    },
  });
  await expect(harness.log.last()).toHaveText(
    "WhoAmI → Internal: the token response is not JSON (HTTP 200)",
  );
  // Not retried: a 2xx with a bad body is a configuration mistake, not a passing fault.
  expect((await backend.stats()).tokenRequests).toBe(1);

  await backend.reset();
  await page.waitForTimeout(BACKOFF_MS);
  expect(ok(await harness.whoAmI()).subject).toBe("alice");
});

test("a wrong password fails the call with Unauthenticated, and the next call with the right one succeeds", async ({
  harness,
  backend,
}) => {
  const wrong = "not-the-password-7f3a";
  await harness.setCredentials("alice", wrong);

  const result = await harness.whoAmI();

  expect(result).toMatchObject({
    ok: false,
    error: {
      code: "Unauthenticated",
      tokenFetch: { status: 401, bodyExcerpt: "invalid username or password" },
    },
  });
  if (result.ok) return;
  expect(result.error.message).toMatch(/^the token endpoint answered 401\b/);
  expect(JSON.stringify(result)).not.toContain(wrong);
  await expect(harness.log.last()).toHaveText(
    /^WhoAmI → Unauthenticated: the token endpoint answered 401 .*: "invalid username or password"$/,
  );
  await expect(harness.log.last()).not.toContainText(wrong);
  expect(await backend.stats()).toMatchObject({ tokenRequests: 1, tokensIssued: 0 });

  await harness.setCredentials("alice", "wonderland");
  expect(ok(await harness.whoAmI()).subject).toBe("alice");
});
