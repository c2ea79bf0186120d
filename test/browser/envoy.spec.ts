import { startDemoServer } from "../../demo/server/server.js";
import { at, type Json, loadEnvoyConfig, virtualHostOf } from "../envoy/envoy-yaml.js";
import { findOnPath, freePort, startEnvoy } from "../envoy/start-envoy.js";
import { expect, ok, test } from "./fixtures.js";
import { WEB_URL } from "./servers.js";

// The library in Chromium through envoy/envoy.yaml to the demo backend in its behind-Envoy mode
// (h2c gRPC only): Envoy translates gRPC-Web and Connect, verifies the JWT at the edge, and does
// CORS. Runs only where an envoy binary is on PATH; the config's structure is checked in
// test/envoy/ everywhere.
const envoyPath = findOnPath("envoy");
const SKIPPED =
  "envoy not on PATH: skipping the browser test through Envoy (install envoy to run it)";
if (envoyPath === undefined) console.log(SKIPPED);
test.skip(envoyPath === undefined, SKIPPED);

test("calls from the page go through Envoy, and a revoked token is refreshed and replayed", async ({
  page,
  clientKind,
}) => {
  const demo = await startDemoServer({
    behindEnvoy: true,
    testMode: true,
    grpcPort: 0,
    tokenPort: 0,
  });
  const config = loadEnvoyConfig();
  // The shipped allow-list names the dev server; the test pages come from another origin.
  const cors = at(
    virtualHostOf(config),
    "typed_per_filter_config",
    "envoy.filters.http.cors",
    "allow_origin_string_match",
  ) as Json[];
  cors.push({ exact: WEB_URL });
  const envoy = await startEnvoy(envoyPath ?? "envoy", config, {
    listener: await freePort(),
    admin: await freePort(),
    grpc: Number(new URL(demo.grpcUrl ?? "").port),
    token: demo.port,
  });
  try {
    await page.goto("/harness.html");
    await page.waitForFunction(() => window.harness !== undefined);
    await page.evaluate(([client, apiUrl]) => window.harness.setup({ client, apiUrl }), [
      clientKind,
      envoy.url,
    ] as const);

    ok(await page.evaluate(() => window.harness.whoAmI()));
    expect(await page.evaluate(() => window.harness.ticks({ count: 3 }))).toEqual({
      ticks: [1, 2, 3],
    });
    demo.revokeAll();
    ok(await page.evaluate(() => window.harness.whoAmI()));
    expect(await page.evaluate(() => window.harness.stats())).toMatchObject({
      tokensFetched: 2,
      replays: 1,
      errors: 0,
    });
  } finally {
    await envoy.close();
    await demo.close();
  }
});
