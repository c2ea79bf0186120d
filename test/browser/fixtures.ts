import {
  type BrowserContext,
  test as base,
  expect,
  type Locator,
  type Page,
} from "@playwright/test";
import type { DemoStats } from "../../demo/server/stats.js";
import type { TokenFault } from "../../demo/server/token-faults.js";
import type {
  CallResult,
  HarnessSetup,
  HarnessStats,
  StoredKeyInfo,
  TicksResult,
} from "../../demo/web/harness.js";
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
  /** Starts or stops requiring DPoP nonces. */
  dpopNonces(on: boolean): Promise<void>;
  /** Clears faults and stats and restores the token lifetime; revocations stay. */
  reset(): Promise<void>;
  stats(): Promise<DemoStats>;
}

/** `window.harness` of harness.html, driven from the test through `page.evaluate`. */
export interface HarnessDriver {
  /** The page the harness runs in. */
  page: Page;
  /** Sets the page up again, with the project's client kind and these options. */
  setup(options: Omit<HarnessSetup, "client">): Promise<void>;
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
  /** What `indexedDbKeyStore(database)` holds in the page. */
  storedKey(database: string): Promise<StoredKeyInfo>;
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

  // Fails the test on an uncaught error, or a token or password in the console, in any of its pages.
  context: async ({ context }, use) => {
    const problems: string[] = [];
    context.on("page", (page) => {
      page.on("pageerror", (error) => problems.push(`uncaught: ${error.message}`));
      page.on("console", (message) => {
        const text = message.text();
        if (/eyJ[\w-]+\.eyJ/.test(text)) problems.push(`a JWT in the console: ${message.type()}`);
        if (text.includes(PASSWORD))
          problems.push(`the password in the console: ${message.type()}`);
      });
    });
    await use(context);
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
      dpopNonces: (on) => post("/test/dpop-nonces", { on }),
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
    await use(drive(page, clientKind));
  },
});

export { expect };

/** Drives harness.html in `page`, set up (or to be set up) with `clientKind`. */
export function drive(page: Page, clientKind: ClientKind): HarnessDriver {
  return {
    page,
    setup: (options) =>
      page.evaluate((o) => window.harness.setup(o), { ...options, client: clientKind }),
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
    storedKey: (database) => page.evaluate((d) => window.harness.storedKey(d), database),
    log: page.getByTestId("harness-log").locator("li"),
  };
}

/** A new harness page in `context`, set up with `clientKind` and `options`. */
export async function openHarness(
  context: BrowserContext,
  clientKind: ClientKind,
  options: Omit<HarnessSetup, "client"> = {},
): Promise<HarnessDriver> {
  const page = await context.newPage();
  await page.goto("/harness.html");
  await page.waitForFunction(() => window.harness !== undefined);
  const harness = drive(page, clientKind);
  await harness.setup(options);
  return harness;
}

/** The value of a call that must have succeeded; otherwise fails with the call's error. */
export function ok<T>(result: CallResult<T>): T {
  if (!result.ok) {
    throw new Error(`the call failed: ${result.error.code}: ${result.error.message}`);
  }
  return result.value;
}
