import { expect, test } from "./fixtures.js";

// The README's React recipe in StrictMode, which runs the effect that creates the token source
// twice: the first source is disposed by the cleanup and the second takes its channel.
test.skip(({ clientKind }) => clientKind !== "grpc-web", "the recipe runs in the grpc-web project");

test("the React recipe works in StrictMode: the effect's second run gets the channel, one token request", async ({
  page,
  backend,
}) => {
  await page.goto("/react.html");

  await expect(page.getByTestId("react-status")).toHaveText("signed in as alice");
  expect(await backend.stats()).toMatchObject({ tokenRequests: 1, unauthenticated: 0 });
});
