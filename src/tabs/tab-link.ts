import type { SessionAnswer, SharedToken, SourceLink, TabLink } from "../core/tab-sharing.js";
import type { TokenFetchError } from "../core/token-fetch-error.js";
import { failedMessage, type Message, parse, relayedFailure } from "./channel.js";
import { exclusive, NOT_RUN } from "./exclusive.js";
import { openPagePort } from "./page-port.js";

/** The browser APIs tab sharing needs; injectable so the logic can be tested outside a browser. */
export interface TabApis {
  locks: Pick<LockManager, "request">;
  BroadcastChannel: new (name: string) => BroadcastChannel;
}

/** How long a tab that holds part of a session waits for the others to answer its query. */
const ASK_TABS_MS = 40;
/** How long a tab that holds nothing yet (or was restored) waits: busy tabs answer late. */
const ASK_NEWCOMER_MS = 150;
/**
 * How long a tab waits for the refresh token another tab holds (it heard of one, and holds none):
 * busy tabs answer late, and fetching without it would mean signing in again.
 */
const ASK_HOLDER_MS = 1_000;
const ADOPTED: unique symbol = Symbol("adopted");

/** A fetch under way: what it heard from the other tabs meanwhile. */
interface Waiter {
  /** A token another tab published, or handed over when asked, was taken. */
  adopted: boolean;
  /** The failure of the fetch this tab waited for, heard before this tab's own request. */
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
  /** How long a healthy tab may hold the lock: its question to the tabs and a fetch, twice over. */
  stealAfterMs: number;
  post(message: Message): void;
  /** This tab's questions awaiting an answer: a query's id, or `value:<name>`. */
  asking: Map<string, Set<() => void>>;
  waiter: Waiter | undefined;
  /** Shared values this tab has, by name, and the checks that admit them. */
  values: Map<string, unknown>;
  checks: Map<string, (value: unknown) => boolean>;
  /** Aborts on close: every wait ends. */
  closing: AbortController;
}

/**
 * Links `source` to the other tabs on `channel`; `release` frees the channel once closed, with
 * what the source held, for the next source of this page.
 */
export function createTabLink(
  channel: string,
  apis: TabApis,
  source: SourceLink,
  timeoutMs: number,
  release: (held: SessionAnswer | undefined) => void,
): TabLink {
  const name = `grpc-web-auth:${channel}`;
  const closing = new AbortController();
  const port = openPagePort(
    name,
    apis.BroadcastChannel,
    (data) => {
      const message = parse(data);
      if (message !== undefined) receive(link, message);
    },
    () => handOver(link),
  );
  const link: Link = {
    name,
    apis,
    source,
    stealAfterMs: 2 * timeoutMs + ASK_HOLDER_MS,
    post: (message) => {
      if (!closing.signal.aborted) port.post(message);
    },
    asking: new Map(),
    waiter: undefined,
    values: new Map(),
    checks: new Map(),
    closing,
  };
  return {
    fetch: (own, publish, signal) => fetchForAll(link, own, publish, signal),
    shared: (key, make, check) => sharedValue(link, key, make, check),
    rejected: (token) => link.post({ v: 3, type: "rejected", token }),
    cleared: (token, { revoked }) =>
      link.post({ v: 3, type: "cleared", token: token ?? null, revoked }),
    failed: (error, until) => link.post(failedMessage(error, until)),
    sync() {
      port.reopen();
      return ask(link, ASK_NEWCOMER_MS);
    },
    close() {
      if (closing.signal.aborted) return;
      const held = source.answer(undefined);
      closing.abort();
      port.close();
      link.waiter?.wake();
      release(held);
    },
  };
}

/** What another tab said. */
function receive(link: Link, message: Message): void {
  const { source, waiter, values, post } = link;
  switch (message.type) {
    case "token": {
      const { token, expiresAt, bound, epoch } = message;
      const shared = { token, expiresAt: expiresAt ?? undefined, bound: bound ?? undefined, epoch };
      if (source.announced(shared) && waiter !== undefined) {
        waiter.adopted = true;
        waiter.wake();
      }
      break;
    }
    case "answer":
      answered(link, message);
      break;
    case "query": {
      const answer = source.answer(message.token ?? undefined);
      if (answer !== undefined) post(answerMessage(message.id, answer));
      break;
    }
    case "handover":
      source.handedOver(toAnswer({ ...message, type: "answer", to: "", retired: false }));
      break;
    case "rejected":
      source.rejected(message.token);
      break;
    case "cleared":
      source.cleared(message.token ?? undefined, { revoked: message.revoked });
      break;
    case "value-query":
      if (values.has(message.name)) {
        post({ v: 3, type: "value", name: message.name, value: values.get(message.name) });
      }
      break;
    case "value":
      if (!values.has(message.name) && link.checks.get(message.name)?.(message.value) === true) {
        values.set(message.name, message.value);
      }
      for (const wake of link.asking.get(`value:${message.name}`) ?? []) wake();
      break;
    case "failed":
      // Counts only for a tab waiting for the lock, whose holder's fetch it is: at any other
      // time it is no answer to anything this tab asked.
      if (waiter !== undefined && !waiter.fetching) {
        const error = relayedFailure(message);
        source.failed(error, message.until ?? undefined);
        waiter.failure ??= error;
        waiter.wake();
      }
      break;
  }
}

/** Another tab answered a question: this tab's, or nobody's business here. */
function answered(link: Link, message: Extract<Message, { type: "answer" }>): void {
  const wakes = link.asking.get(message.to);
  if (wakes === undefined) return;
  const answer = toAnswer(message);
  const fresh = link.source.answered(answer);
  if (fresh && link.waiter !== undefined) link.waiter.adopted = true;
  // An answer without a fresh token or the state is no answer to wait for: others may have it.
  if (fresh || answer.retired) {
    for (const wake of wakes) wake();
  } else if (answer.state !== undefined) {
    // The state is about to be used for a refresh: a tab that had not yet heard the newest
    // rotation may answer first, so the others' answers (the newest epoch wins) get a moment.
    setTimeout(() => {
      for (const wake of wakes) wake();
    }, STATE_ANSWER_GRACE_MS);
  }
}

function toAnswer(message: Extract<Message, { type: "answer" }>): SessionAnswer {
  const { token, expiresAt, bound, state, epoch, retired } = message;
  return {
    token:
      token === null
        ? undefined
        : { token, expiresAt: expiresAt ?? undefined, bound: bound ?? undefined, epoch },
    state: state ?? undefined,
    epoch,
    retired,
  };
}

function answerMessage(to: string, answer: SessionAnswer): Message {
  const { token } = answer;
  return {
    v: 3,
    type: "answer",
    to,
    token: token?.token ?? null,
    expiresAt: token?.expiresAt ?? null,
    bound: token?.bound ?? null,
    state: answer.state ?? null,
    epoch: answer.epoch,
    retired: answer.retired,
  };
}

/**
 * The page is going away (closed, reloaded, navigated, or into the back/forward cache): a tab
 * holding the session's state hands it to the tabs that stay, the one time it is sent unasked.
 */
function handOver(link: Link): void {
  const held = link.source.answer(undefined);
  if (held?.state === undefined) return;
  const { token } = held;
  link.post({
    v: 3,
    type: "handover",
    token: token?.token ?? null,
    expiresAt: token?.expiresAt ?? null,
    bound: token?.bound ?? null,
    state: held.state,
    epoch: held.epoch,
  });
}

export function tokenMessage(shared: SharedToken): Message {
  const { token, expiresAt, bound, epoch } = shared;
  return { v: 3, type: "token", token, expiresAt: expiresAt ?? null, bound: bound ?? null, epoch };
}

/**
 * How long to wait for the others' answer: briefly for a tab that holds the state; longer for a
 * newcomer, which may be among busy tabs; longest for a tab that knows another holds the state.
 */
function askFor(source: SourceLink): number {
  const held = source.answer(undefined);
  if (held?.state !== undefined) return ASK_TABS_MS;
  return held === undefined && source.epoch() === 0 ? ASK_NEWCOMER_MS : ASK_HOLDER_MS;
}

/** How long a tab given the state waits for other tabs' answers, which may hold a newer one. */
const STATE_ANSWER_GRACE_MS = 25;

let asked = 0;

/**
 * Asks the other tabs what they hold of the session, or for a shared value (`name`); resolves
 * when one answers, after `waitMs`, or when the link closes.
 */
function ask(link: Link, waitMs: number, name?: string): Promise<void> {
  const question =
    name === undefined ? `${++asked}.${Math.random().toString(36).slice(2)}` : `value:${name}`;
  const waiting = link.asking.get(question) ?? new Set<() => void>();
  link.asking.set(question, waiting);
  return new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      waiting.delete(done);
      if (waiting.size === 0) link.asking.delete(question);
      link.closing.signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, waitMs);
    waiting.add(done);
    link.closing.signal.addEventListener("abort", done, { once: true });
    link.post(
      name === undefined
        ? { v: 3, type: "query", id: question, token: link.source.held() ?? null }
        : { v: 3, type: "value-query", name },
    );
  });
}

/**
 * One tab at a time fetches: inside the lock, it asks the others what they hold and takes a fresh
 * token, or the newest refresh token to fetch with, instead of fetching again; a failure of the
 * fetch it waited for is this fetch's answer too. Resolves undefined when a token was taken.
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
      { locks: link.apis.locks, stealAfterMs: link.stealAfterMs },
      link.name,
      async () => {
        // A token or failure heard now (the last holder's) settles it.
        if (settled()) return ADOPTED;
        await ask(link, askFor(link.source));
        if (settled()) return ADOPTED;
        if (signal.aborted) throw signal.reason;
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
    { locks: link.apis.locks, stealAfterMs: link.stealAfterMs },
    `${link.name}:${key}`,
    async () => {
      if (!values.has(key)) await ask(link, ASK_TABS_MS, key);
      if (!values.has(key)) {
        values.set(key, await make());
        link.post({ v: 3, type: "value", name: key, value: values.get(key) });
      }
      return values.get(key);
    },
    link.closing.signal,
  );
  if (!check(result)) throw new Error(`no shared ${key}`);
  return result;
}
