import type {
  SharedToken,
  SourceLink,
  TabLink,
  TabSharing,
  TabSharingLink,
} from "../core/tab-sharing.js";
import { TokenFetchError } from "../core/token-fetch-error.js";
import { failedMessage, type Message, parse, tokenMessage } from "./channel.js";

/** Options for {@link shareAcrossTabs}. */
export interface ShareAcrossTabsOptions {
  /**
   * Web Locks and BroadcastChannel to use instead of the browser's (for tests or polyfills).
   * Default: the browser's; where either is missing, the source works per tab.
   */
  apis?:
    | {
        locks: Pick<LockManager, "request">;
        BroadcastChannel: new (name: string) => BroadcastChannel;
      }
    | undefined;
}

/** The browser APIs tab sharing needs; injectable so the logic can be tested outside a browser. */
type TabApis = NonNullable<ShareAcrossTabsOptions["apis"]>;

/** How long a tab about to fetch waits for another tab to answer with its token. */
const ASK_TABS_MS = 40;
const NOT_RUN: unique symbol = Symbol("not run");
const ADOPTED: unique symbol = Symbol("adopted");

/** Channels in use per lock manager (one per page in a browser): a second source must not join. */
const inUse = new WeakMap<object, Set<string>>();

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
  const sharing: TabSharingLink = {
    channel,
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
  return sharing;
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
  /** Another tab's failure, heard before this fetch started its own request. */
  failure: TokenFetchError | undefined;
  /** Fetching itself: from here on another tab's failure is not this fetch's answer. */
  fetching: boolean;
  wake: () => void;
}

/** One source's end of the channel. */
interface Link {
  /** The lock and channel name. */
  name: string;
  apis: TabApis;
  source: SourceLink;
  timeoutMs: number;
  post(message: Message): void;
  /** Waiting for the other tabs to answer, by question: `token`, or `value:<name>`. */
  answered: Map<string, Set<() => void>>;
  waiter: Waiter | undefined;
  /** Shared values this tab has, by name, and the checks that admit them. */
  values: Map<string, unknown>;
  checks: Map<string, (value: unknown) => boolean>;
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
  const link: Link = {
    name,
    apis,
    source,
    timeoutMs,
    post: (message) => port.postMessage(message),
    answered: new Map(),
    waiter: undefined,
    values: new Map(),
    checks: new Map(),
  };
  port.onmessage = (event: MessageEvent<unknown>) => {
    const message = parse(event.data);
    if (message !== undefined) receive(link, message);
  };
  return {
    fetch: (own, publish, signal) => fetchForAll(link, own, publish, signal),
    shared: (key, make, check) => sharedValue(link, key, make, check),
    rejected: (token) => link.post({ v: 2, type: "rejected", token }),
    cleared: (token) => link.post({ v: 2, type: "cleared", token: token ?? null }),
    failed: (error, until) => link.post(failedMessage(error, until)),
  };
}

/** What another tab said. */
function receive(link: Link, message: Message): void {
  const { source, waiter, values, post } = link;
  switch (message.type) {
    case "token": {
      const { token, expiresAt, state, bound } = message;
      const shared = {
        token,
        expiresAt: expiresAt ?? undefined,
        state: state ?? undefined,
        bound: bound ?? undefined,
      };
      if (source.adopt(shared) && waiter !== undefined) {
        waiter.adopted = true;
        waiter.wake();
      }
      wakeAnswered(link, "token");
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
    case "value":
      if (!values.has(message.name) && link.checks.get(message.name)?.(message.value) === true) {
        values.set(message.name, message.value);
      }
      wakeAnswered(link, `value:${message.name}`);
      break;
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
}

/** Ends the waits for answers to one question: a token's answer does not end a value's wait. */
function wakeAnswered(link: Link, question: string): void {
  for (const wake of link.answered.get(question) ?? []) wake();
}

/**
 * Asks the other tabs for a token, or for a shared value (`name`); resolves when one answers that
 * question or after `waitMs`.
 */
function ask(link: Link, waitMs: number, name?: string): Promise<void> {
  const question = name === undefined ? "token" : `value:${name}`;
  const waiting = link.answered.get(question) ?? new Set<() => void>();
  link.answered.set(question, waiting);
  return new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      waiting.delete(done);
      resolve();
    };
    const timer = setTimeout(done, waitMs);
    waiting.add(done);
    link.post(name === undefined ? { v: 2, type: "query" } : { v: 2, type: "value-query", name });
  });
}

/**
 * Runs `task` holding a Web Lock. The wait ends early (the task is not run) when `cancelWait`
 * aborts; a wait longer than a holder could legitimately take (its question to the tabs and a
 * fetch of timeoutMs, twice over) takes the lock from it: a frozen tab must not stall the others
 * (a closed tab's lock is released by the browser).
 */
async function exclusive<T>(
  { apis, timeoutMs }: Link,
  lock: string,
  task: () => Promise<T>,
  cancelWait: AbortSignal,
): Promise<T | typeof NOT_RUN> {
  const waiting = new AbortController();
  const stopWaiting = () => waiting.abort();
  cancelWait.addEventListener("abort", stopWaiting, { once: true });
  // A healthy holder asks the tabs, then fetches within timeoutMs: only longer than that is stuck.
  const stealTimer = setTimeout(stopWaiting, 2 * timeoutMs + ASK_TABS_MS);
  let running: Promise<T> | undefined;
  try {
    return await apis.locks.request(lock, { signal: waiting.signal }, () => {
      clearTimeout(stealTimer);
      running = task();
      return running;
    });
  } catch (error) {
    // The lock was stolen from this tab while its task ran: the task's own outcome still counts.
    if (running !== undefined) return await running;
    if (!waiting.signal.aborted) throw error;
    if (cancelWait.aborted) return NOT_RUN;
    // Waited too long: the holder is stuck. Take the lock and fetch ourselves.
    return await apis.locks.request(lock, { steal: true }, () => task());
  } finally {
    clearTimeout(stealTimer);
    cancelWait.removeEventListener("abort", stopWaiting);
  }
}

/**
 * One tab at a time fetches: inside the lock, a token another tab published meanwhile (or hands
 * over when asked) is taken instead of fetching again, and another tab's failure heard before
 * this tab's own request is this fetch's answer too. Resolves undefined when a token was taken.
 */
async function fetchForAll<T>(
  link: Link,
  own: () => Promise<T>,
  publish: (fetched: T) => SharedToken,
  signal: AbortSignal,
): Promise<T | undefined> {
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
  link.waiter = self;
  try {
    const result = await exclusive(
      link,
      link.name,
      async () => {
        // A token or failure heard now (the last holder's, an answer to the query) settles it.
        if (settled()) return ADOPTED;
        await ask(link, ASK_TABS_MS);
        if (settled()) return ADOPTED;
        self.fetching = true;
        const fetched = await own();
        // Published before the lock is released, so the next tab in line finds it.
        link.post(tokenMessage(publish(fetched)));
        return fetched;
      },
      wait.signal,
    );
    if (signal.aborted) throw signal.reason;
    if (result === ADOPTED) return undefined;
    if (result !== NOT_RUN) return result;
    // Another tab's token or failure ended the wait.
    return settled() ? undefined : await own();
  } finally {
    if (link.waiter === self) link.waiter = undefined;
    signal.removeEventListener("abort", self.wake);
  }
}

/** A value all tabs share: another tab's, asked for under its own lock, or made here. */
async function sharedValue<T>(
  link: Link,
  key: string,
  make: () => Promise<T>,
  check: (value: unknown) => value is T,
): Promise<T> {
  const { values } = link;
  link.checks.set(key, check);
  const result = await exclusive(
    link,
    `${link.name}:${key}`,
    async () => {
      if (!values.has(key)) await ask(link, ASK_TABS_MS, key);
      if (!values.has(key)) {
        values.set(key, await make());
        link.post({ v: 2, type: "value", name: key, value: values.get(key) });
      }
      return values.get(key);
    },
    new AbortController().signal,
  );
  if (!check(result)) throw new Error(`no shared ${key}`);
  return result;
}
