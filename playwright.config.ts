import { defineConfig } from "@playwright/test";
import { CHROMIUM_ARGS, requireChromium } from "./scripts/find-browser.mjs";
import { CLIENT_KINDS } from "./test/browser/clients.js";
import type { ClientKindOption } from "./test/browser/fixtures.js";
import {
  API_PORT,
  API_URL,
  IDP_ACCESS_TOKEN_TTL,
  IDP_API_PORT,
  IDP_API_URL,
  IDP_PORT,
  IDP_STATS_PORT,
  IDP_STATS_URL,
  IDP_URL,
  WEB_PORT,
  WEB_URL,
} from "./test/browser/servers.js";

// CHROMIUM_PATH, Playwright's download, or a system Chrome/Chromium; `npm run test:browser`
// installs Debian's when there is none (scripts/ensure-browser.mjs).
const chromium = requireChromium();

/**
 * The browser suite: the library bundled by Vite into demo/web's pages, in real Chromium, against
 * the demo backend in test mode. Every test runs once per client kind (one project each).
 */
export default defineConfig<ClientKindOption>({
  testDir: "test/browser",
  testMatch: "*.spec.ts",
  outputDir: "test-results",
  // The tests share the backend's revocations, faults and counters: one at a time.
  workers: 1,
  fullyParallel: false,
  // No retries: a flaky auth test hides a real race.
  retries: 0,
  forbidOnly: Boolean(process.env.CI),
  timeout: 60_000,
  expect: { timeout: 10_000 },
  reporter: [["list"], ["html", { open: "never" }]],
  use: {
    baseURL: WEB_URL,
    browserName: "chromium",
    headless: true,
    launchOptions: { executablePath: chromium.path, args: CHROMIUM_ARGS },
    screenshot: "only-on-failure",
    trace: "retain-on-failure",
  },
  projects: CLIENT_KINDS.map((clientKind) => ({ name: clientKind, use: { clientKind } })),
  webServer: [
    {
      name: "backend",
      command: `node --import tsx demo/server/main.ts --test-mode --port ${API_PORT} --origin ${WEB_URL}`,
      // Answers only in test mode, so a backend without the test routes is never reused.
      url: `${API_URL}/test/stats`,
      reuseExistingServer: !process.env.CI,
      timeout: 60_000,
      gracefulShutdown: { signal: "SIGTERM", timeout: 5_000 },
    },
    {
      name: "idp",
      command:
        `node --import tsx demo/idp/main.ts --port ${IDP_PORT} --api-port ${IDP_API_PORT}` +
        ` --stats-port ${IDP_STATS_PORT} --origin ${WEB_URL} --access-token-ttl ${IDP_ACCESS_TOKEN_TTL}`,
      url: `${IDP_STATS_URL}/stats`,
      reuseExistingServer: !process.env.CI,
      timeout: 60_000,
      gracefulShutdown: { signal: "SIGTERM", timeout: 5_000 },
    },
    {
      name: "web",
      // The built bundle, not the dev server: what the tests exercise is what users would get.
      command:
        "node node_modules/vite/bin/vite.js build --logLevel warn" +
        ` && node node_modules/vite/bin/vite.js preview --port ${WEB_PORT}`,
      env: { VITE_API_URL: API_URL, VITE_IDP_URL: IDP_URL, VITE_IDP_API_URL: IDP_API_URL },
      url: `${WEB_URL}/harness.html`,
      reuseExistingServer: !process.env.CI,
      timeout: 120_000,
      gracefulShutdown: { signal: "SIGTERM", timeout: 5_000 },
    },
  ],
});
