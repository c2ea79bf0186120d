import { test as base, expect, type Locator, type Page } from "@playwright/test";
import type { DemoStats } from "../../demo/server/stats.js";
import type { TokenFault } from "../../demo/server/token-faults.js";
import type { CallResult, HarnessStats, TicksResult } from "../../demo/web/harness.js";
import type { ClientKind, TicksParams, WhoAmI } from "../../demo/web/lib/clients.js";
import type { TokenInfo } from "../../src/index.js";
import { API_URL } from "./servers.js";

/** The demo backend's test routes (demo/server/README.md). */
export interface Backend {
  /** Revokes every token issued so far; with `future`, every later one too (until reset). */
  revoke(options?: { future: boolean }): Promise<void>;
  /** Revokes every refresh token issued so far; access tokens stay good until they expire. */
  revokeRefresh(): Promise<void>;
  tokenFault(fault: TokenFault): Promise<void>;
  tokenTtl(seconds: number): Promise<void>;
  /** Clears faults and stats and restores the token lifetime; revocations stay. */
  reset(): Promise<void>;
  stats(): Promise<DemoStats>;
}

/** `window.harness` of harness.html, driven from the test through `page.evaluate`. */
export interface HarnessDriver {
  whoAmI(): Promise<CallResult<WhoAmI>>;
  many(n: number): Promise<CallResult<WhoAmI>[]>;
  ticks(params: TicksParams): Promise<TicksResult>;
  cancelAfter(params: TicksParams, after: number, settleMs: number): Promise<TicksResult>;
  sharedWith(kind: ClientKind, n: number): Promise<CallResult<WhoAmI>[]>;
  setCredentials(username: string, password: string): Promise<void>;
  stats(): Promise<HarnessStats>;
  /** `tokens.peek()`, `null` when no token is cached. */
  peek(): Promise<TokenInfo | null>;
  /** `tokens.clear()`: signs out. */
  clear(): Promise<void>;
  /** The lines the harness page shows, one per call. */
  log: Locator;
}

/** Set per Playwright project: which client kind the tests call through. */
export interface ClientKindOption {
  clientKind: ClientKind;
}

/** The password of the demo user the harness signs in as; no page or console may show it. */
export const PASSWORD = "wonderland";

export const test = base.extend<ClientKindOption & { backend: Backend; harness: HarnessDriver }>({
  clientKind: ["grpc-web", { option: true }],

  // Fails the test on an uncaught page error, or on a token or password in the console.
  page: async ({ page }, use) => {
    const problems: string[] = [];
    page.on("pageerror", (error) => problems.push(`uncaught: ${error.message}`));
    page.on("console", (message) => {
      const text = message.text();
      if (/eyJ[\w-]+\.eyJ/.test(text)) problems.push(`a JWT in the console: ${message.type()}`);
      if (text.includes(PASSWORD)) problems.push(`the password in the console: ${message.type()}`);
    });
    await use(page);
    expect(problems, "page errors and console leaks").toEqual([]);
  },

  // The tests share one backend: each starts with no faults, zeroed stats and 300 s tokens.
  backend: async ({ request }, use) => {
    const post = async (path: string, body?: unknown) => {
      const res = await request.post(API_URL + path, body === undefined ? {} : { data: body });
      expect(res.status(), `POST ${path}`).toBe(204);
    };
    const backend: Backend = {
      revoke: (options) => post("/test/revoke", options),
      revokeRefresh: () => post("/test/revoke-refresh"),
      tokenFault: (fault) => post("/test/token-fault", fault),
      tokenTtl: (seconds) => post("/test/token-ttl", { seconds }),
      reset: () => post("/test/reset"),
      stats: async () => {
        const res = await request.get(`${API_URL}/test/stats`);
        expect(res.ok(), "GET /test/stats").toBe(true);
        return (await res.json()) as DemoStats;
      },
    };
    await backend.reset();
    await use(backend);
  },

  // harness.html with a fresh token source and a client of the project's kind, as alice.
  harness: async ({ page, clientKind, backend: _ready }, use) => {
    await page.goto("/harness.html");
    await page.waitForFunction(() => window.harness !== undefined);
    await page.evaluate((client) => window.harness.setup({ client }), clientKind);
    await use(drive(page));
  },
});

export { expect };

function drive(page: Page): HarnessDriver {
  return {
    whoAmI: () => page.evaluate(() => window.harness.whoAmI()),
    many: (n) => page.evaluate((count) => window.harness.many(count), n),
    ticks: (params) => page.evaluate((p) => window.harness.ticks(p), params),
    cancelAfter: (params, after, settleMs) =>
      page.evaluate(([p, a, ms]) => window.harness.cancelAfter(p, a, ms), [
        params,
        after,
        settleMs,
      ] as const),
    sharedWith: (kind, n) =>
      page.evaluate(([k, count]) => window.harness.sharedWith(k, count), [kind, n] as const),
    setCredentials: (username, password) =>
      page.evaluate(([u, p]) => window.harness.setCredentials(u, p), [username, password] as const),
    stats: () => page.evaluate(() => window.harness.stats()),
    peek: () => page.evaluate(() => window.harness.peek()),
    clear: () => page.evaluate(() => window.harness.clear()),
    log: page.getByTestId("harness-log").locator("li"),
  };
}

/** The value of a call that must have succeeded; otherwise fails with the call's error. */
export function ok<T>(result: CallResult<T>): T {
  if (!result.ok) {
    throw new Error(`the call failed: ${result.error.code}: ${result.error.message}`);
  }
  return result.value;
}
