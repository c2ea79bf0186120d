/**
 * The browser half of the Playwright suite (`test/browser/`): `window.harness` drives the library
 * in a real page, built by Vite like an app would be, and answers in plain JSON.
 */
import {
  type Credentials,
  createTokenSource,
  dpopProofs,
  indexedDbKeyStore,
  passwordGrant,
  type RefreshTokenStore,
  type SessionEndReason,
  shareAcrossTabs,
  type TokenInfo,
  type TokenSource,
} from "../../src/index.js";
import { DEFAULT_API_URL, revokeEndpoint, tokenEndpoint } from "./lib/backend.js";
import {
  type ClientKind,
  type ClientOptions,
  clientKinds,
  type DemoClient,
  isClientKind,
  type TicksParams,
  type WhoAmI,
} from "./lib/clients.js";
import { describeError, type ErrorInfo, formatError } from "./lib/describe-error.js";

/** What {@link Harness.setup} takes. */
export interface HarnessSetup {
  /** The client kind to call through, see `lib/clients.ts`. */
  client: ClientKind;
  /** Base URL of the backend. Default: `VITE_API_URL` from the build. */
  apiUrl?: string | undefined;
  /** Default `"alice"`. */
  username?: string | undefined;
  /** Default `"wonderland"`. */
  password?: string | undefined;
  /**
   * Shares the token with the other tabs on this channel (`shareAcrossTabs(crossTab)`). A page
   * can hold one source per channel, so set up a page with a channel once. Default: not shared.
   */
  crossTab?: string | undefined;
  /** Makes the source with `dpop: dpopProofs()`: DPoP-bound tokens and a proof per call. Default: Bearer. */
  dpop?: boolean | undefined;
  /**
   * Keeps the DPoP key pair in IndexedDB under this database name
   * (`dpopProofs({ store: indexedDbKeyStore(name) })`); implies `dpop`. Default: a key per source.
   */
  dpopKeyStore?: string | undefined;
  /** Gives `passwordGrant` the backend's `revokeEndpoint`, so `clear()` revokes. Default: not given. */
  revoke?: boolean | undefined;
  /**
   * Keeps the refresh token in `localStorage` under this key (`passwordGrant({ store })`), as an
   * app would; `createTokenSource` then requires `crossTab`. Default: in memory only.
   */
  store?: string | undefined;
}

/** What {@link Harness.storedKey} found in a DPoP key store: facts, never key material. */
export interface StoredKeyInfo {
  /** Whether the store holds a key pair. */
  found: boolean;
  /** `privateKey.extractable`. */
  privateKeyExtractable?: boolean | undefined;
  /** `privateKey.algorithm.name`, e.g. `"ECDSA"`. */
  algorithm?: string | undefined;
  /** The name of the error `crypto.subtle.exportKey("jwk", privateKey)` rejected with, if it did. */
  exportError?: string | undefined;
}

/** A call's outcome: its value, or its error described. */
export type CallResult<T> = { ok: true; value: T } | { ok: false; error: ErrorInfo };

/** The ticks a stream delivered, and the error it ended with, if any. */
export interface TicksResult {
  ticks: number[];
  error?: ErrorInfo | undefined;
}

/** What the page counted since the last {@link Harness.setup}. */
export interface HarnessStats {
  /** `{ type: "token", source: "fetch" }` events: tokens this page fetched. */
  tokensFetched: number;
  /** `{ type: "token", source: "shared" }` events: tokens another tab handed over. */
  tokensShared: number;
  /** `{ type: "error" }` events: token fetches that failed. */
  tokenErrors: number;
  /** The reasons of `{ type: "session-ended" }` events, in order. */
  sessionEnded: SessionEndReason[];
  /** `onReplay` calls: calls replayed with a refreshed token. */
  replays: number;
  /**
   * Tokens this page fetched while it already held one of the session (its own or another tab's):
   * refreshes, each of which rotated the refresh token at the demo backend. A sign-out ends the
   * session; a sign-in is not counted.
   */
  refreshes: number;
  /** Calls started (a stream counts once). */
  calls: number;
  /** Calls that ended with an error. */
  errors: number;
}

/** `window.harness`. Every method answers in plain JSON, so it crosses `page.evaluate`. */
export interface Harness {
  /** The client kinds this build offers. */
  clientKinds: ClientKind[];
  /** A new token source and client; the previous ones are cleared and the counters reset. */
  setup(options: HarnessSetup): void;
  /** Credentials for the next token fetch. */
  setCredentials(username: string, password: string): void;
  whoAmI(): Promise<CallResult<WhoAmI>>;
  /** `n` concurrent `WhoAmI` calls. */
  many(n: number): Promise<CallResult<WhoAmI>[]>;
  ticks(params: TicksParams): Promise<TicksResult>;
  /** Starts a stream and cancels it after `after` ticks; reports what arrived until `settleMs` after the cancel. */
  cancelAfter(params: TicksParams, after: number, settleMs: number): Promise<TicksResult>;
  /** `n` concurrent `WhoAmI` calls on this client and `n` on a client of `kind` on the same token source. */
  sharedWith(kind: ClientKind, n: number): Promise<CallResult<WhoAmI>[]>;
  stats(): HarnessStats;
  /** `tokens.peek()`, `null` when no token is cached. */
  peek(): TokenInfo | null;
  /** `tokens.clear()`. */
  clear(): void;
  /** What `indexedDbKeyStore(database)` holds, read in this page. */
  storedKey(database: string): Promise<StoredKeyInfo>;
}

declare global {
  interface Window {
    harness: Harness;
  }
}

interface Session {
  tokens: TokenSource;
  client: DemoClient;
  clientOptions: ClientOptions;
  credentials: Credentials;
  unsubscribe: () => void;
}

let session: Session | undefined;
let stats = zeroStats();
/** Whether the page held a token since the last setup, sign-out or session end. */
let inSession = false;

const clientOutput = element("harness-client");
const log = element("harness-log");

function current(): Session {
  if (session === undefined) throw new Error("call harness.setup({ client }) first");
  return session;
}

const harness: Harness = {
  clientKinds: Object.keys(clientKinds).filter(isClientKind),
  setup(options) {
    if (!isClientKind(options.client)) {
      throw new TypeError(
        `harness.setup: client must be one of ${Object.keys(clientKinds).join(", ")}; got ${String(options.client)}`,
      );
    }
    if (session !== undefined) {
      session.unsubscribe();
      session.tokens.clear();
    }
    stats = zeroStats();
    inSession = false;
    log.replaceChildren();
    const apiUrl = options.apiUrl ?? DEFAULT_API_URL;
    const credentials = {
      username: options.username ?? "alice",
      password: options.password ?? "wonderland",
    };
    const { dpopKeyStore } = options;
    const tokens = createTokenSource({
      fetchToken: passwordGrant({
        endpoint: tokenEndpoint(apiUrl),
        // Asked before every sign-in, so setCredentials takes effect at the next one.
        credentials: () => ({ ...credentials }),
        revokeEndpoint: options.revoke ? revokeEndpoint(apiUrl) : undefined,
        store: options.store === undefined ? undefined : localStorageStore(options.store),
      }),
      crossTab: options.crossTab === undefined ? undefined : shareAcrossTabs(options.crossTab),
      dpop:
        dpopKeyStore !== undefined
          ? dpopProofs({ store: indexedDbKeyStore(dpopKeyStore) })
          : options.dpop
            ? dpopProofs()
            : undefined,
    });
    const unsubscribe = tokens.subscribe((event) => {
      if (event.type === "token" && event.source === "fetch") {
        if (inSession) stats.refreshes++;
        stats.tokensFetched++;
      }
      if (event.type === "token") inSession = true;
      if (event.type === "cleared" || event.type === "session-ended") inSession = false;
      if (event.type === "token" && event.source === "shared") stats.tokensShared++;
      if (event.type === "error") stats.tokenErrors++;
      if (event.type === "session-ended") stats.sessionEnded.push(event.reason);
    });
    const clientOptions = {
      apiUrl,
      tokens,
      onReplay: () => {
        stats.replays++;
      },
    };
    const client = clientKinds[options.client].create(clientOptions);
    session = { tokens, client, clientOptions, credentials, unsubscribe };
    clientOutput.textContent = `${clientKinds[options.client].label} → ${apiUrl}`;
  },
  setCredentials(username, password) {
    Object.assign(current().credentials, { username, password });
  },
  whoAmI() {
    const { client } = current();
    return settle("WhoAmI", () => client.whoAmI());
  },
  many(n) {
    const { client } = current();
    return Promise.all(Array.from({ length: n }, () => settle("WhoAmI", () => client.whoAmI())));
  },
  async ticks(params) {
    const { client } = current();
    const ticks: number[] = [];
    const result = await settle("Ticks", () => client.ticks(params, (tick) => ticks.push(tick.n)));
    return result.ok ? { ticks } : { ticks, error: result.error };
  },
  async cancelAfter(params, after, settleMs) {
    const { client } = current();
    const ticks: number[] = [];
    const controller = new AbortController();
    let settled: ErrorInfo | "end" | undefined;
    const done = client
      .ticks(
        params,
        (tick) => {
          ticks.push(tick.n);
          if (ticks.length === after) controller.abort();
        },
        controller.signal,
      )
      .then(
        () => {
          settled = "end";
        },
        (e: unknown) => {
          settled = describeError(e);
        },
      );
    // Wait for the cancel (or the stream's end), however slow the machine; then watch for stragglers.
    const cancelled = new Promise((resolve) =>
      controller.signal.addEventListener("abort", resolve),
    );
    await Promise.race([cancelled, done]);
    await new Promise((resolve) => setTimeout(resolve, settleMs));
    return settled === "end" || settled === undefined ? { ticks } : { ticks, error: settled };
  },
  sharedWith(kind, n) {
    const { client, clientOptions } = current();
    const other = clientKinds[kind].create(clientOptions);
    const calls = [client, other].flatMap((c) =>
      Array.from({ length: n }, () => settle("WhoAmI", () => c.whoAmI())),
    );
    return Promise.all(calls);
  },
  stats: () => ({ ...stats, sessionEnded: [...stats.sessionEnded] }),
  peek: () => current().tokens.peek() ?? null,
  clear: () => current().tokens.clear(),
  async storedKey(database) {
    const pair = await indexedDbKeyStore(database).load();
    if (pair === undefined) return { found: false };
    const { privateKey } = pair;
    const exportError = await crypto.subtle.exportKey("jwk", privateKey).then(
      () => undefined,
      (e: unknown) => (e instanceof Error ? e.name : String(e)),
    );
    return {
      found: true,
      privateKeyExtractable: privateKey.extractable,
      algorithm: privateKey.algorithm.name,
      exportError,
    };
  },
};

/** A refresh-token store in `localStorage`, the way an app would write one. */
function localStorageStore(key: string): RefreshTokenStore {
  return {
    load: () => localStorage.getItem(key) ?? undefined,
    save(refreshToken) {
      if (refreshToken === undefined) localStorage.removeItem(key);
      else localStorage.setItem(key, refreshToken);
    },
  };
}

/** Runs a call, counts it, logs it on the page, and never rejects. */
async function settle<T>(method: string, call: () => Promise<T>): Promise<CallResult<T>> {
  stats.calls++;
  try {
    const value = await call();
    logLine(`${method} → OK`);
    return { ok: true, value };
  } catch (e) {
    stats.errors++;
    const error = describeError(e);
    logLine(`${method} → ${error.code}: ${formatError(error)}`);
    return { ok: false, error };
  }
}

function logLine(text: string): void {
  const item = document.createElement("li");
  item.textContent = text;
  log.append(item);
}

function zeroStats(): HarnessStats {
  return {
    tokensFetched: 0,
    tokensShared: 0,
    tokenErrors: 0,
    sessionEnded: [],
    replays: 0,
    refreshes: 0,
    calls: 0,
    errors: 0,
  };
}

function element(testId: string): HTMLElement {
  const found = document.querySelector<HTMLElement>(`[data-testid="${testId}"]`);
  if (found === null) throw new Error(`harness.html has no [data-testid="${testId}"]`);
  return found;
}

window.harness = harness;
