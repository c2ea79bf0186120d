import type { SharedToken, SourceLink, TabLink, TabSharing } from "./tab-sharing.js";
import {
  type SessionEndReason,
  TokenFetchCode,
  TokenFetchError,
  type TokenFetchErrorCode,
} from "./token-fetch-error.js";

/** Options for {@link shareAcrossTabs}. */
export interface ShareAcrossTabsOptions {
  /**
   * Web Locks and BroadcastChannel to use instead of the browser's (for tests or polyfills).
   * Default: the browser's; where either is missing, the source works per tab.
   */
  apis?: TabApis | undefined;
}

/** The browser APIs tab sharing needs; injectable so the logic can be tested outside a browser. */
export interface TabApis {
  locks: Pick<LockManager, "request">;
  BroadcastChannel: new (name: string) => BroadcastChannel;
}

/** How long a tab about to fetch waits for another tab to answer with its token. */
const ASK_TABS_MS = 40;
const NOT_RUN: unique symbol = Symbol("not run");
const ADOPTED: unique symbol = Symbol("adopted");
const REASONS: readonly SessionEndReason[] = [
  "credentials-refused",
  "token-refused",
  "refresh-token-refused",
];

/** Channels in use per lock manager (one per page in a browser): a second source must not join. */
const inUse = new WeakMap<object, Set<string>>();

type Message =
  | { v: 2; type: "token"; token: string; expiresAt: number | null; state: string | null }
  | { v: 2; type: "rejected"; token: string }
  | { v: 2; type: "cleared"; token: string | null }
  | { v: 2; type: "query" }
  | { v: 2; type: "value-query"; name: string }
  | { v: 2; type: "value"; name: string; value: unknown }
  | {
      v: 2;
      type: "failed";
      code: TokenFetchErrorCode;
      status: number | null;
      message: string;
      reason: SessionEndReason | null;
      until: number | null;
    };

/**
 * Shares one token source's token among the tabs of this origin, as the `crossTab` option of
 * `createTokenSource`: one fetch for all of them (a Web Lock named after `channel`), the token,
 * the grant's state, refusals, failures and sign-out passed over a BroadcastChannel.
 *
 * `channel` names what is shared: give every source of the app its own (two sources on one
 * channel would take each other's tokens). A second live source on a channel in the same page
 * throws a `TypeError`.
 *
 * @example
 * ```ts
 * const tokens = createTokenSource({ fetchToken, crossTab: shareAcrossTabs("my-app") });
 * ```
 */
export function shareAcrossTabs(channel: string, options: ShareAcrossTabsOptions = {}): TabSharing {
  if (typeof channel !== "string" || channel === "") {
    throw new TypeError(
      "shareAcrossTabs: channel must be a non-empty string naming what is shared",
    );
  }
  if (typeof options !== "object" || options === null) {
    throw new TypeError("shareAcrossTabs: options must be an object");
  }
  const { apis: given } = options;
  if (
    given !== undefined &&
    (typeof given?.locks?.request !== "function" || typeof given.BroadcastChannel !== "function")
  ) {
    throw new TypeError("shareAcrossTabs: apis must be { locks, BroadcastChannel }");
  }
  return {
    link(source, timeoutMs) {
      const apis = given ?? browserTabApis();
      if (apis === undefined) return undefined;
      const channels = inUse.get(apis.locks) ?? new Set<string>();
      inUse.set(apis.locks, channels);
      if (channels.has(channel)) {
        throw new TypeError(
          `createTokenSource: another token source in this page already shares the channel "${channel}": give each source its own channel name`,
        );
      }
      channels.add(channel);
      return createTabLink(channel, apis, source, timeoutMs);
    },
  };
}

/** The browser's Web Locks and BroadcastChannel, or undefined where either is missing. */
function browserTabApis(): TabApis | undefined {
  const locks = (globalThis.navigator as Navigator | undefined)?.locks;
  const Channel = globalThis.BroadcastChannel;
  if (typeof locks?.request !== "function" || Channel === undefined) return undefined;
  return { locks, BroadcastChannel: Channel };
}

/** A fetch under way: what it heard from the other tabs meanwhile. */
interface Waiter {
  /** A token another tab published (or handed over when asked) was taken. */
  adopted: boolean;
  /** Another tab's failure, heard while this fetch waited for the lock. */
  failure: TokenFetchError | undefined;
  /** Fetching itself: from here on another tab's failure is not this fetch's answer. */
  fetching: boolean;
  wake: () => void;
}

function createTabLink(
  channel: string,
  apis: TabApis,
  source: SourceLink,
  timeoutMs: number,
): TabLink {
  const name = `grpc-web-auth:${channel}`;
  const port = new apis.BroadcastChannel(name);
  // Node's channels keep the process alive; a token source must not.
  (port as { unref?: () => void }).unref?.();
  const answered = new Set<() => void>();
  let waiter: Waiter | undefined;
  /** Shared values this tab has, by name, and the checks that admit them. */
  const values = new Map<string, unknown>();
  const checks = new Map<string, (value: unknown) => boolean>();
  const post = (message: Message) => port.postMessage(message);
  const tokenMessage = (shared: SharedToken): Message => ({
    v: 2,
    type: "token",
    token: shared.token,
    expiresAt: shared.expiresAt ?? null,
    state: shared.state ?? null,
  });

  port.onmessage = (event: MessageEvent<unknown>) => {
    const message = parse(event.data);
    switch (message?.type) {
      case "token": {
        const { token, expiresAt, state } = message;
        if (
          source.adopt({ token, expiresAt: expiresAt ?? undefined, state: state ?? undefined }) &&
          waiter
        ) {
          waiter.adopted = true;
          waiter.wake();
        }
        for (const wake of answered) wake();
        break;
      }
      case "rejected":
        source.rejected(message.token);
        break;
      case "cleared":
        source.cleared(message.token ?? undefined);
        break;
      case "query": {
        const shared = source.current();
        if (shared !== undefined) post(tokenMessage(shared));
        break;
      }
      case "value-query":
        if (values.has(message.name)) {
          post({ v: 2, type: "value", name: message.name, value: values.get(message.name) });
        }
        break;
      case "value": {
        const { name: key, value } = message;
        if (!values.has(key) && checks.get(key)?.(value) === true) values.set(key, value);
        for (const wake of answered) wake();
        break;
      }
      case "failed": {
        const { code, status, reason, until } = message;
        const error = new TokenFetchError(`${message.message} (fetched by another tab)`, {
          code,
          status: status ?? undefined,
          reason: reason ?? undefined,
        });
        source.failed(error, until ?? undefined);
        if (waiter !== undefined && !waiter.fetching) {
          waiter.failure ??= error;
          waiter.wake();
        }
        break;
      }
    }
  };

  /** Asks the other tabs (for a token, or a value); resolves when one answers or after `waitMs`. */
  const ask = (waitMs: number, question: Message = { v: 2, type: "query" }) =>
    new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        answered.delete(done);
        resolve();
      };
      const timer = setTimeout(done, waitMs);
      answered.add(done);
      post(question);
    });

  /**
   * Runs `task` holding the channel's Web Lock. The wait ends early (the task is not run) when
   * `cancelWait` aborts; a wait longer than timeoutMs takes the lock from its holder: a frozen tab
   * must not stall the others (a closed tab's lock is released by the browser).
   */
  async function exclusive<T>(task: () => Promise<T>, cancelWait: AbortSignal, lock = name) {
    const waiting = new AbortController();
    const stopWaiting = () => waiting.abort();
    cancelWait.addEventListener("abort", stopWaiting, { once: true });
    const stealTimer = setTimeout(stopWaiting, timeoutMs);
    try {
      return await apis.locks.request(lock, { signal: waiting.signal }, () => {
        clearTimeout(stealTimer);
        return task();
      });
    } catch (error) {
      if (!waiting.signal.aborted) throw error;
      if (cancelWait.aborted) return NOT_RUN;
      // Waited too long: the holder is stuck. Take the lock and fetch ourselves.
      return await apis.locks.request(lock, { steal: true }, () => task());
    } finally {
      clearTimeout(stealTimer);
      cancelWait.removeEventListener("abort", stopWaiting);
    }
  }

  return {
    /**
     * One tab at a time fetches: inside the lock, a token another tab published meanwhile (or
     * hands over when asked) is taken instead of fetching again, and another tab's failure heard
     * while waiting is this fetch's answer too.
     */
    async fetch(own, publish, signal) {
      const wait = new AbortController();
      const self: Waiter = {
        adopted: false,
        failure: undefined,
        fetching: false,
        wake: () => wait.abort(),
      };
      const settled = () => {
        if (self.adopted) return true;
        if (self.failure !== undefined) throw self.failure;
        return false;
      };
      signal.addEventListener("abort", self.wake, { once: true });
      waiter = self;
      try {
        const result = await exclusive(async () => {
          // A token or failure heard now (the last holder's, an answer to the query) settles it.
          if (settled()) return ADOPTED;
          await ask(ASK_TABS_MS);
          if (settled()) return ADOPTED;
          self.fetching = true;
          const fetched = await own();
          // Published before the lock is released, so the next tab in line finds it.
          post(tokenMessage(publish(fetched)));
          return fetched;
        }, wait.signal);
        if (signal.aborted) throw signal.reason;
        if (result === ADOPTED) return undefined;
        if (result !== NOT_RUN) return result;
        // Another tab's token or failure ended the wait.
        return settled() ? undefined : await own();
      } finally {
        if (waiter === self) waiter = undefined;
        signal.removeEventListener("abort", self.wake);
      }
    },
    async shared(key, make, check) {
      checks.set(key, check);
      const held = () => values.get(key) as Parameters<typeof check>[0];
      const result = await exclusive(
        async () => {
          if (!values.has(key)) await ask(ASK_TABS_MS, { v: 2, type: "value-query", name: key });
          if (!values.has(key)) {
            values.set(key, await make());
            post({ v: 2, type: "value", name: key, value: values.get(key) });
          }
          return held();
        },
        new AbortController().signal,
        `${name}:${key}`,
      );
      if (result === NOT_RUN || !check(result)) throw new Error(`no shared ${key}`);
      return result;
    },
    rejected: (token) => post({ v: 2, type: "rejected", token }),
    cleared: (token) => post({ v: 2, type: "cleared", token: token ?? null }),
    failed({ code, status, message, reason }, until) {
      post({
        v: 2,
        type: "failed",
        code,
        status: status ?? null,
        message,
        reason: reason ?? null,
        until: until ?? null,
      });
    },
  };
}

const isNumber = (value: unknown): value is number =>
  typeof value === "number" && Number.isFinite(value);
const orNull = <T>(value: unknown, check: (value: unknown) => value is T): T | null | undefined =>
  value === null || value === undefined ? null : check(value) ? value : undefined;
const isString = (value: unknown): value is string => typeof value === "string";

/** Accepts only well-formed messages of this version: anything else on the channel is ignored. */
function parse(data: unknown): Message | undefined {
  if (typeof data !== "object" || data === null) return undefined;
  const message = data as Record<string, unknown>;
  if (message.v !== 2) return undefined;
  const { type, token } = message;
  switch (type) {
    case "token": {
      const expiresAt = orNull(message.expiresAt, isNumber);
      const state = orNull(message.state, isString);
      if (!isString(token) || token === "" || expiresAt === undefined || state === undefined) {
        return undefined;
      }
      return { v: 2, type, token, expiresAt, state };
    }
    case "rejected":
      return isString(token) ? { v: 2, type, token } : undefined;
    case "cleared": {
      const dropped = orNull(token, isString);
      return dropped === undefined ? undefined : { v: 2, type, token: dropped };
    }
    case "query":
      return { v: 2, type };
    case "value-query":
    case "value": {
      const { name } = message;
      if (!isString(name)) return undefined;
      return type === "value-query"
        ? { v: 2, type, name }
        : { v: 2, type, name, value: message.value };
    }
    case "failed":
      return parseFailure(message);
    default:
      return undefined;
  }
}

function parseFailure(message: Record<string, unknown>): Message | undefined {
  // Canceled is never sent; a cut message keeps a stray essay off the callers' errors.
  const { code, message: text } = message;
  const status = orNull(message.status, Number.isInteger as (value: unknown) => value is number);
  const until = orNull(message.until, isNumber);
  const reason = orNull(message.reason, (value): value is SessionEndReason =>
    REASONS.includes(value as SessionEndReason),
  );
  if (
    (code !== TokenFetchCode.Internal &&
      code !== TokenFetchCode.Unavailable &&
      code !== TokenFetchCode.Unauthenticated) ||
    !isString(text) ||
    status === undefined ||
    until === undefined ||
    reason === undefined
  ) {
    return undefined;
  }
  return { v: 2, type: "failed", code, status, message: text.slice(0, 300), reason, until };
}
