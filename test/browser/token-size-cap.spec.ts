import { expect, test } from "./fixtures.js";
import { API_URL } from "./servers.js";

const MB = 1024 * 1024;

test("a 10 MB token answer fails the call with Internal after one request, in Chromium as in Node, and is not retried as transient", async ({
  harness: _ready,
  page,
}) => {
  // The page's own token endpoint answers 200 with 10 MB of JSON: a token has no business being
  // that big. Chromium reads it through its network stack as from any server.
  let requests = 0;
  await page.route(`${API_URL}/auth/token`, (route) => {
    requests++;
    const body = `{"token":"${"a".repeat(10 * MB)}"}`;
    return route.fulfill({
      status: 200,
      contentType: "application/json",
      headers: { "access-control-allow-origin": "*" },
      body,
    });
  });

  // The second call right after the first, well within the backoff (0.5–1 s).
  const [first, second] = await page.evaluate(async () => {
    const result = await window.harness.whoAmI();
    return [result, await window.harness.whoAmI()] as const;
  });

  expect(first).toMatchObject({
    ok: false,
    error: {
      code: "Internal",
      message: expect.stringMatching(/^the token response is larger than 65536 bytes/),
      tokenFetch: { status: 200 },
    },
  });
  // The second call repeats the failure from the backoff, without a request.
  expect(second).toMatchObject({
    ok: false,
    error: { code: "Internal", tokenFetch: { status: 200, repeated: true } },
  });
  expect(requests).toBe(1);
});
