import type { KyInstance } from "ky";
import { abortReason, raceSignal } from "./abort.js";
import {
  browserTabApis,
  createTabLink,
  NOT_RUN,
  type SharedFailure,
  type SharedToken,
  type TabApis,
  type TabLink,
} from "./cross-tab.js";
import { readJwtTimes } from "./jwt.js";
import { reportError } from "./report-error.js";
import { type Credentials, createEndpointFetcher, type FetchedToken } from "./token-endpoint.js";
import { TokenFetchCode, TokenFetchError } from "./token-fetch-error.js";

/** What a custom `fetchToken` may resolve to. */
export type FetchTokenResult =
  | string
  | {
      /** The token, sent as `Bearer <token>`. */
      token: string;
      /** When it expires, in milliseconds since the epoch on this machine's clock (`Date.now()`). */
      expiresAt?: number | undefined;
    };

/** Options for {@link createTokenSource}. Give `endpoint` + `credentials`, or `fetchToken`. */
export interface TokenSourceOptions {
  /**
   * The token endpoint: a POST of JSON `{"username","password"}` answered by
   * `{"token"}` or `{"access_token","expires_in"}`. Relative URLs resolve like
   * `fetch` (or against `http`'s `baseUrl`/`prefix`). Redirects are refused.
   */
  endpoint?: string | URL | undefined;
  /** The username and password for `endpoint`, or a function asked before every fetch. */
  credentials?: Credentials | (() => Credentials | Promise<Credentials>) | undefined;
  /**
   * Fetches a token by any other grant, instead of `endpoint`. It gets a signal
   * that aborts on timeout or `clear()`. A `TokenFetchError` it throws keeps its
   * code; anything else counts as Unavailable.
   */
  fetchToken?: ((context: { signal: AbortSignal }) => Promise<FetchTokenResult>) | undefined;
  /**
   * The ky instance for `endpoint`, to bring hooks, `baseUrl` or retry settings.
   * Default: one that retries a failed POST twice (408, 429, 5xx, network
   * errors) with jittered backoff. Redirects are refused on either.
   */
  http?: KyInstance | undefined;
  /** The most one fetch may take, retries included, in milliseconds. Default: 10 000. */
  timeoutMs?: number | undefined;
  /**
   * A token this close to expiry is refreshed before it is used, in
   * milliseconds; never more than half the token's lifetime. Default: 30 000.
   */
  refreshMarginMs?: number | undefined;
  /**
   * Shares one token among the tabs of this origin: one fetch for all of them
   * (a Web Lock), the token and rejections passed over a BroadcastChannel, and
   * `clear()` signing every tab out. `true` uses the channel `"default"`; a
   * string names the channel, so two apps on one origin stay apart. Where Web
   * Locks or BroadcastChannel are missing, the source works per tab. The token
   * stays in each tab's memory; nothing is written to storage. Default: off.
   */
  crossTab?: boolean | string | CrossTabOptions | undefined;
}

/** The object form of {@link TokenSourceOptions.crossTab}. */
export interface CrossTabOptions {
  /** The channel name. Default: `"default"`. */
  channel?: string | undefined;
  /** Web Locks and BroadcastChannel to use instead of the browser's (for tests or polyfills). */
  apis?: TabApis | undefined;
}

/** What {@link TokenSource.subscribe} listeners receive. Events never carry the token. */
export type TokenEvent =
  /**
   * A new token arrived: fetched by this source, or `shared` by another tab.
   * `expiresAt` is this machine's estimate, `undefined` for opaque tokens.
   */
  | { type: "token"; expiresAt: number | undefined; source: "fetch" | "shared" }
  /** A fetch failed. */
  | { type: "error"; error: TokenFetchError }
  /** The server rejected the current token (here or in another tab); it was dropped. */
  | { type: "rejected" }
  /** `clear()` was called (here or in another tab). */
  | { type: "cleared" };

/** What {@link TokenSource.peek} tells about the cached token, without the token. */
export interface TokenInfo {
  /** When the token expires (ms since the epoch, local clock), `undefined` if unknown. */
  expiresAt: number | undefined;
  /** Whether the next `getToken()` returns it without fetching. */
  fresh: boolean;
}

/** Per-call options of {@link TokenSource} methods. */
export interface TokenRequestOptions {
  /** Aborts this caller's wait only; a shared fetch goes on for the others. */
  signal?: AbortSignal | undefined;
}

/** A cached, single-flight source of bearer tokens. Create one with {@link createTokenSource}. */
export interface TokenSource {
  /** A token that is good to use now: the cached one, or a fresh one fetched once for all callers. */
  getToken(options?: TokenRequestOptions): Promise<string>;
  /**
   * A token newer than `rejected`: fetches only if `rejected` is still the cached
   * token, else returns the newer one at once. `rejected` is never handed out again.
   */
  refresh(rejected: string, options?: TokenRequestOptions): Promise<string>;
  /** Marks `rejected` as refused by the server without fetching: it is never handed out again. */
  invalidate(rejected: string): void;
  /** Forgets the token and abandons a fetch under way (logout). Waiting callers get Canceled. */
  clear(): void;
  /** Listens to token events; returns the function that stops listening. */
  subscribe(listener: (event: TokenEvent) => void): () => void;
  /** Describes the cached token, or `undefined` when there is none. */
  peek(): TokenInfo | undefined;
}

interface Entry {
  token: string;
  receivedAt: number;
  receivedAtMono: number;
  /** undefined: an opaque token, used until the server rejects it. */
  lifetimeMs: number | undefined;
  refreshAfterMs: number | undefined;
}

interface Flight {
  /** Aborted by clear(): the fetch belongs to a session that ended. */
  controller: AbortController;
  promise: Promise<Entry>;
  /** Set while waiting for another tab's lock: a token shared meanwhile ends the wait. */
  stopWaiting?: (() => void) | undefined;
  /**
   * Another tab's fetch failed while this flight waited for the lock: the flight fails too. Only
   * read before this tab's own fetch starts; a failure heard after that is not this flight's.
   */
  sharedFailure?: TokenFetchError | undefined;
}

/**
 * The cached token, synchronously, when it is fresh: the interceptors' fast path, so a call with
 * a good token costs no promise. Sources made by other code are not in here and use getToken.
 */
const freshTokens = new WeakMap<TokenSource, () => string | undefined>();

/** The fast-path accessor of a source made by {@link createTokenSource}, if it is one. */
export function freshTokenOf(source: TokenSource): (() => string | undefined) | undefined {
  return freshTokens.get(source);
}

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_REFRESH_MARGIN_MS = 30_000;
const MAX_TIMER_MS = 2_147_483_647;
const REMEMBERED_TOKENS = 16;
/** How long a tab about to fetch waits for another tab to answer with its token. */
const ASK_TABS_MS = 40;
// Visible ASCII only: anything else cannot travel in an HTTP header.
const HEADER_SAFE = /^[\x21-\x7e]+$/;

/**
 * Creates a token source: fetches a JWT, caches it, refreshes it shortly before
 * it expires, and makes one request however many callers need a token at once.
 *
 * @example
 * ```ts
 * const tokens = createTokenSource({
 *   endpoint: "https://api.example.com/auth/token",
 *   credentials: () => ({ username: form.user, password: form.password }),
 * });
 * const token = await tokens.getToken();
 * ```
 */
export function createTokenSource(options: TokenSourceOptions): TokenSource {
  const { fetchToken, timeoutMs, refreshMarginMs, crossTab } = resolveOptions(options);

  let entry: Entry | undefined;
  let flight: Flight | undefined;
  const rejected = new Set<string>();
  // Tokens of a session that was signed out: another tab's late message must not revive them.
  const retired = new Set<string>();
  const listeners = new Set<(event: TokenEvent) => void>();

  function emit(event: TokenEvent): void {
    for (const listener of listeners) {
      try {
        listener(event);
      } catch (error) {
        // A broken listener must not break token handling.
        reportError(error);
      }
    }
  }

  function markRejected(token: string, tell: boolean): void {
    if (tell && !rejected.has(token)) tabs?.announceRejected(token);
    remember(rejected, token);
    if (entry?.token === token) {
      entry = undefined;
      emit({ type: "rejected" });
    }
  }

  function forget(tell: boolean, signedOut: string | undefined): void {
    const dropped = entry?.token;
    if (dropped !== undefined) remember(retired, dropped);
    if (signedOut !== undefined) remember(retired, signedOut);
    entry = undefined;
    if (flight !== undefined) {
      const { controller } = flight;
      flight = undefined;
      controller.abort(
        new TokenFetchError("the token source was cleared", { code: TokenFetchCode.Canceled }),
      );
    }
    if (tell) tabs?.announceCleared(dropped);
    emit({ type: "cleared" });
  }

  /** Takes a token another tab fetched, unless it is known bad or already expired. */
  function adopt(shared: SharedToken): void {
    if (rejected.has(shared.token) || retired.has(shared.token)) return;
    if (!HEADER_SAFE.test(shared.token)) return;
    if (entry?.token === shared.token) return;
    const lifetimeMs = shared.expiresAt === undefined ? undefined : shared.expiresAt - Date.now();
    if (lifetimeMs !== undefined && !(lifetimeMs > 0)) return;
    entry = newEntry(shared.token, lifetimeMs, refreshMarginMs);
    emit({ type: "token", expiresAt: expiresAt(entry), source: "shared" });
    flight?.stopWaiting?.();
  }

  const tabs: TabLink | undefined =
    crossTab === undefined
      ? undefined
      : createTabLink(crossTab.channel, crossTab.apis, {
          onToken: adopt,
          onRejected: (token) => markRejected(token, false),
          onCleared: (token) => forget(false, token),
          onQuery: () =>
            entry !== undefined && isFresh(entry)
              ? { token: entry.token, expiresAt: expiresAt(entry) }
              : undefined,
          onFailed: failedElsewhere,
        });

  /**
   * Another tab fetched while this one waited for the lock, and failed: this tab's waiting
   * callers get that answer instead of trying the same endpoint again one tab after another.
   */
  function failedElsewhere({ code, status, message }: SharedFailure): void {
    if (flight === undefined) return;
    flight.sharedFailure ??= new TokenFetchError(`${message} (fetched by another tab)`, {
      code,
      status: status ?? undefined,
    });
    flight.stopWaiting?.();
  }

  /** Fetches a token with this source's own grant, bounded by timeoutMs. */
  async function fetchOwn(signal: AbortSignal): Promise<Entry> {
    const bounded = new AbortController();
    const stop = () => bounded.abort(abortReason(signal));
    signal.addEventListener("abort", stop, { once: true });
    const timer = setTimeout(() => {
      bounded.abort(
        new TokenFetchError(`the token endpoint did not answer within ${timeoutMs} ms`, {
          code: TokenFetchCode.Unavailable,
        }),
      );
    }, timeoutMs);
    try {
      // Raced so that a custom fetchToken that ignores its signal still settles.
      const fetched = await raceSignal(fetchToken(bounded.signal), bounded.signal);
      const next = toEntry(fetched, refreshMarginMs);
      if (rejected.has(next.token)) {
        throw new TokenFetchError(
          "the token endpoint returned a token the server already rejected",
          { code: TokenFetchCode.Unauthenticated },
        );
      }
      return next;
    } catch (error) {
      throw toTokenFetchError(error, bounded.signal);
    } finally {
      clearTimeout(timer);
      signal.removeEventListener("abort", stop);
    }
  }

  /**
   * One tab at a time fetches: inside the lock, a token another tab published
   * meanwhile (or hands over when asked) is taken instead of fetching again.
   * Resolves to `undefined` when another tab's token was adopted into `entry`.
   */
  async function fetchAcrossTabs(link: TabLink, self: Flight): Promise<Entry | undefined> {
    const before = entry;
    const sharedMeanwhile = () => entry !== undefined && entry !== before && isFresh(entry);
    const waiting = new AbortController();
    const stopWaiting = () => waiting.abort();
    self.stopWaiting = stopWaiting;
    const { signal } = self.controller;
    signal.addEventListener("abort", stopWaiting, { once: true });
    try {
      const result = await link.exclusive(
        async () => {
          self.stopWaiting = undefined;
          if (sharedMeanwhile()) return undefined;
          if (self.sharedFailure !== undefined) throw self.sharedFailure;
          await link.ask(ASK_TABS_MS);
          if (sharedMeanwhile()) return undefined;
          if (self.sharedFailure !== undefined) throw self.sharedFailure;
          let next: Entry;
          try {
            next = await fetchOwn(signal);
          } catch (error) {
            // Told before the lock is released, so the tabs in line fail with it, not fetch again.
            link.announceFailed(toTokenFetchError(error, signal));
            throw error;
          }
          // Published before the lock is released, so the next tab in line finds it.
          link.announceToken({ token: next.token, expiresAt: expiresAt(next) });
          return next;
        },
        waiting.signal,
        timeoutMs,
      );
      if (signal.aborted) throw signal.reason;
      if (result !== NOT_RUN && result !== undefined) return result;
      // Another tab's token ended the wait; should it be gone already, fetch after all.
      if (sharedMeanwhile()) return undefined;
      if (self.sharedFailure !== undefined) throw self.sharedFailure;
      return await fetchOwn(signal);
    } finally {
      self.stopWaiting = undefined;
      signal.removeEventListener("abort", stopWaiting);
    }
  }

  function startFetch(): Promise<Entry> {
    if (flight !== undefined) return flight.promise;
    const self: Flight = { controller: new AbortController(), promise: undefined as never };
    const { signal } = self.controller;
    flight = self;
    self.promise = (async (): Promise<Entry> => {
      try {
        const fetched =
          tabs === undefined ? await fetchOwn(signal) : await fetchAcrossTabs(tabs, self);
        // clear() came first: this token belongs to a session that ended.
        if (flight !== self) throw signal.reason;
        flight = undefined;
        if (fetched === undefined) return entry as Entry;
        entry = fetched;
        emit({ type: "token", expiresAt: expiresAt(fetched), source: "fetch" });
        return fetched;
      } catch (error) {
        const failure = toTokenFetchError(error, signal);
        if (flight === self) {
          flight = undefined;
          emit({ type: "error", error: failure });
        }
        throw failure;
      }
    })();
    // Every caller may have stopped waiting; the outcome is still handled.
    self.promise.catch(() => {});
    return self.promise;
  }

  function obtain(signal: AbortSignal | undefined): Promise<string> {
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    const stale = entry;
    const token = startFetch().then(
      (next) => next.token,
      (error: unknown) => {
        // A refresh ahead of expiry failed: the current token is still good for a while.
        if (stale !== undefined && entry === stale && isUsable(stale)) return stale.token;
        throw error;
      },
    );
    return raceSignal(token, signal);
  }

  const source: TokenSource = {
    getToken(requestOptions) {
      const signal = requestOptions?.signal;
      const current = entry;
      if (current !== undefined && isFresh(current) && !signal?.aborted) {
        return Promise.resolve(current.token);
      }
      return obtain(signal);
    },
    refresh(rejectedToken, requestOptions) {
      assertToken(rejectedToken, "refresh");
      markRejected(rejectedToken, true);
      return source.getToken(requestOptions);
    },
    invalidate(rejectedToken) {
      assertToken(rejectedToken, "invalidate");
      markRejected(rejectedToken, true);
    },
    clear() {
      forget(true, undefined);
    },
    subscribe(listener) {
      if (typeof listener !== "function") {
        throw new TypeError("subscribe: listener must be a function");
      }
      // A wrapper per subscription, so subscribing one function twice needs two unsubscribes.
      const wrapped = (event: TokenEvent) => listener(event);
      listeners.add(wrapped);
      return () => {
        listeners.delete(wrapped);
      };
    },
    peek() {
      if (entry === undefined) return undefined;
      return { expiresAt: expiresAt(entry), fresh: isFresh(entry) };
    },
  };
  freshTokens.set(source, () => (entry !== undefined && isFresh(entry) ? entry.token : undefined));
  return source;

  function resolveOptions(opts: TokenSourceOptions) {
    if (typeof opts !== "object" || opts === null) invalid("options", "an object");
    const timeout = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (typeof timeout !== "number" || !(timeout > 0) || timeout > MAX_TIMER_MS) {
      invalid("timeoutMs", `a positive number of milliseconds up to ${MAX_TIMER_MS}`);
    }
    const margin = opts.refreshMarginMs ?? DEFAULT_REFRESH_MARGIN_MS;
    if (typeof margin !== "number" || !Number.isFinite(margin) || margin < 0) {
      invalid("refreshMarginMs", "a finite number of milliseconds, 0 or more");
    }
    const common = {
      timeoutMs: timeout,
      refreshMarginMs: margin,
      crossTab: resolveCrossTab(opts.crossTab),
    };
    const { endpoint, credentials, fetchToken: custom, http } = opts;
    if ((endpoint === undefined) === (custom === undefined)) {
      invalid("endpoint (with credentials) or fetchToken", "given, not both");
    }
    if (custom !== undefined) {
      if (typeof custom !== "function") invalid("fetchToken", "a function");
      if (credentials !== undefined || http !== undefined) {
        invalid("credentials and http", "left out with fetchToken: they go with endpoint");
      }
      return {
        ...common,
        fetchToken: async (signal: AbortSignal) => fromCustomResult(await custom({ signal })),
      };
    }
    if (!(typeof endpoint === "string" && endpoint !== "") && !(endpoint instanceof URL)) {
      invalid("endpoint", "a non-empty string or a URL");
    }
    if (typeof credentials !== "function" && !isCredentials(credentials)) {
      invalid("credentials", "{ username: string, password: string } or a function returning them");
    }
    if (http !== undefined && typeof http !== "function") invalid("http", "a ky instance");
    return {
      ...common,
      fetchToken: createEndpointFetcher({ endpoint, credentials, http, timeoutMs: timeout }),
    };
  }
}

/** Throws the TypeError for a bad option, naming it. */
function invalid(option: string, must: string): never {
  throw new TypeError(`createTokenSource: ${option} must be ${must}`);
}

/** The channel and APIs for cross-tab sharing, or undefined when it is off or unsupported here. */
function resolveCrossTab(
  value: TokenSourceOptions["crossTab"],
): { channel: string; apis: TabApis } | undefined {
  if (value === undefined || value === false) return undefined;
  const options: CrossTabOptions =
    value === true ? {} : typeof value === "string" ? { channel: value } : value;
  if (typeof options !== "object" || options === null) {
    invalid("crossTab", "true, a channel name, or an object");
  }
  const channel = options.channel ?? "default";
  if (typeof channel !== "string" || channel === "") {
    invalid("crossTab's channel", "a non-empty string");
  }
  const apis = options.apis ?? browserTabApis();
  return apis === undefined ? undefined : { channel, apis };
}

/** Adds to a set that remembers only the most recent tokens. */
function remember(set: Set<string>, token: string): void {
  set.delete(token);
  set.add(token);
  if (set.size > REMEMBERED_TOKENS) set.delete(set.values().next().value as string);
}

function isCredentials(value: unknown): value is Credentials {
  if (typeof value !== "object" || value === null) return false;
  const { username, password } = value as Partial<Credentials>;
  return typeof username === "string" && typeof password === "string";
}

function assertToken(token: unknown, method: string): void {
  if (typeof token !== "string") {
    throw new TypeError(`${method}: the rejected token must be a string`);
  }
}

function fromCustomResult(result: FetchTokenResult): FetchedToken {
  if (typeof result === "string") return { token: result };
  if (typeof result !== "object" || result === null || typeof result.token !== "string") {
    throw new TokenFetchError("fetchToken must resolve to a token string or { token, expiresAt }", {
      code: TokenFetchCode.Internal,
    });
  }
  const { token, expiresAt } = result;
  if (expiresAt === undefined) return { token };
  if (typeof expiresAt !== "number" || !Number.isFinite(expiresAt)) {
    throw new TokenFetchError("fetchToken resolved to an expiresAt that is not a number", {
      code: TokenFetchCode.Internal,
    });
  }
  return { token, expiresInMs: expiresAt - Date.now() };
}

/** Works out when a token expires, measured from the local time it arrived. */
function toEntry(fetched: FetchedToken, refreshMarginMs: number): Entry {
  const { token } = fetched;
  if (token === "") {
    throw new TokenFetchError("the token is empty", { code: TokenFetchCode.Internal });
  }
  if (!HEADER_SAFE.test(token)) {
    throw new TokenFetchError("the token has characters that cannot be sent in an HTTP header", {
      code: TokenFetchCode.Internal,
    });
  }
  const lifetimeMs = lifetimeOf(fetched, Date.now());
  if (lifetimeMs !== undefined && !(lifetimeMs > 0)) {
    throw new TokenFetchError("the token endpoint returned a token that has already expired", {
      code: TokenFetchCode.Internal,
    });
  }
  return newEntry(token, lifetimeMs, refreshMarginMs);
}

function newEntry(token: string, lifetimeMs: number | undefined, refreshMarginMs: number): Entry {
  return {
    token,
    receivedAt: Date.now(),
    receivedAtMono: monotonicNow(),
    lifetimeMs,
    refreshAfterMs:
      lifetimeMs === undefined ? undefined : lifetimeMs - Math.min(refreshMarginMs, lifetimeMs / 2),
  };
}

function lifetimeOf(fetched: FetchedToken, localNow: number): number | undefined {
  if (fetched.expiresInMs !== undefined) return fetched.expiresInMs;
  const times = readJwtTimes(fetched.token);
  if (times === undefined) return undefined;
  const { exp, iat } = times;
  const { serverNowMs } = fetched;
  // Issuer-side clocks only (iat, the answer's Date header), so a skewed local clock does not matter;
  // the Date header also catches a token that was issued long ago and has already expired.
  const sinceIssued = iat === undefined ? undefined : lessRounding((exp - iat) * 1000, exp, iat);
  const sinceAnswered =
    serverNowMs === undefined ? undefined : lessRounding(exp * 1000 - serverNowMs, exp);
  if (sinceIssued !== undefined && sinceAnswered !== undefined) {
    return Math.min(sinceIssued, sinceAnswered);
  }
  return sinceIssued ?? sinceAnswered ?? exp * 1000 - localNow;
}

/**
 * Whole-second claims (and Date headers) were rounded down when issued, so the
 * token may really have up to a second less: count it, within half the lifetime.
 */
function lessRounding(lifetimeMs: number, ...seconds: number[]): number {
  if (!(lifetimeMs > 0) || !seconds.every(Number.isInteger)) return lifetimeMs;
  return lifetimeMs - Math.min(1000, lifetimeMs / 2);
}

/**
 * Time since the token arrived: the larger of wall-clock and monotonic time, so
 * neither a clock set back nor a sleeping machine keeps a token alive too long.
 */
function age(entry: Entry): number {
  return Math.max(Date.now() - entry.receivedAt, monotonicNow() - entry.receivedAtMono);
}

function isFresh(entry: Entry): boolean {
  return entry.refreshAfterMs === undefined || age(entry) < entry.refreshAfterMs;
}

function isUsable(entry: Entry): boolean {
  return entry.lifetimeMs === undefined || age(entry) < entry.lifetimeMs;
}

function expiresAt(entry: Entry): number | undefined {
  return entry.lifetimeMs === undefined ? undefined : entry.receivedAt + entry.lifetimeMs;
}

function monotonicNow(): number {
  return performance.now();
}

function toTokenFetchError(error: unknown, signal: AbortSignal): TokenFetchError {
  if (signal.aborted && signal.reason instanceof TokenFetchError) return signal.reason;
  if (error instanceof TokenFetchError) return error;
  return new TokenFetchError("fetching the token failed", {
    code: TokenFetchCode.Unavailable,
    cause: error,
  });
}
