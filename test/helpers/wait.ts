import type { TokenEvent } from "../../src/index.js";

// Captured at load, so waits keep real time while a test fakes the timers.
const realSetTimeout = globalThis.setTimeout;
const realClearTimeout = globalThis.clearTimeout;
const realSetImmediate = globalThis.setImmediate;
const realNow = performance.now.bind(performance);

/** How long a wait for a fact lasts before it fails the test. */
const DEFAULT_TIMEOUT_MS = 5_000;

/**
 * Waits `ms` of real time. For tests whose subject is time itself (a backoff that must pass, a
 * deadline that must not fire early); anything else waits for the fact with {@link waitFor}.
 */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => realSetTimeout(resolve, ms));
}

export interface WaitOptions {
  /** How long to wait before failing. Default: 5 000 ms. */
  timeoutMs?: number;
  /** What is awaited, for the failure message ("the other tab's token"). */
  what?: string;
}

/**
 * Resolves with the first truthy value `condition` returns, polling every few milliseconds (and
 * after every macrotask, so a message or timer that made it true is seen at once); fails the test
 * with `what` when `timeoutMs` passes first.
 */
export async function waitFor<T>(
  condition: () => T | Promise<T>,
  options: WaitOptions = {},
): Promise<NonNullable<T>> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const deadline = realNow() + timeoutMs;
  for (let polls = 0; ; polls++) {
    const value = await condition();
    if (value) return value as NonNullable<T>;
    if (realNow() >= deadline) {
      throw new Error(`waited ${timeoutMs} ms for ${options.what ?? "a condition"}; it never held`);
    }
    // Yield to I/O first (a message, a socket), then back off to a short interval.
    await new Promise((resolve) =>
      polls < 20 ? realSetImmediate(resolve) : realSetTimeout(resolve, 2),
    );
  }
}

/** Anything with the token source's `subscribe`. */
export interface Subscribable {
  subscribe(listener: (event: TokenEvent) => void): () => void;
}

/**
 * The next event of `type` the source emits (one that `matches`, when given); fails the test when
 * none arrives within `timeoutMs`. Subscribe before the action that causes the event.
 */
export function nextEvent<K extends TokenEvent["type"]>(
  source: Subscribable,
  type: K,
  options: WaitOptions & { matches?: (event: Extract<TokenEvent, { type: K }>) => boolean } = {},
): Promise<Extract<TokenEvent, { type: K }>> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const timer = realSetTimeout(() => {
      unsubscribe();
      reject(new Error(`waited ${timeoutMs} ms for ${options.what ?? `a "${type}" event`}`));
    }, timeoutMs);
    const unsubscribe = source.subscribe((event) => {
      if (event.type !== type) return;
      const typed = event as Extract<TokenEvent, { type: K }>;
      if (options.matches !== undefined && !options.matches(typed)) return;
      realClearTimeout(timer);
      unsubscribe();
      resolve(typed);
    });
  });
}

/**
 * The next message posted on the BroadcastChannel `name` (one that `matches`, when given), as a
 * listener in this process sees it; fails the test when none arrives within `timeoutMs`. Open it
 * before the action that posts.
 */
export function channelMessage<T = unknown>(
  name: string,
  options: WaitOptions & { matches?: (data: T) => boolean } = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const channel = new BroadcastChannel(name);
  return new Promise<T>((resolve, reject) => {
    const timer = realSetTimeout(() => {
      reject(new Error(`waited ${timeoutMs} ms for ${options.what ?? `a message on "${name}"`}`));
    }, timeoutMs);
    channel.onmessage = (event: MessageEvent) => {
      const data = event.data as T;
      if (options.matches !== undefined && !options.matches(data)) return;
      realClearTimeout(timer);
      resolve(data);
    };
  }).finally(() => channel.close());
}

/**
 * Resolves once the BroadcastChannel `name` has carried no message for `quietMs` (default 20):
 * the tabs have stopped talking (answers to a question already asked are still on their way until
 * then). Fails the test when the channel is still busy after `timeoutMs`.
 */
export function channelQuiet(
  name: string,
  options: WaitOptions & { quietMs?: number } = {},
): Promise<void> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const quietMs = options.quietMs ?? 20;
  const channel = new BroadcastChannel(name);
  return new Promise<void>((resolve, reject) => {
    const deadline = realSetTimeout(() => {
      realClearTimeout(quiet);
      reject(new Error(`waited ${timeoutMs} ms for ${options.what ?? `"${name}" to go quiet`}`));
    }, timeoutMs);
    let quiet = realSetTimeout(done, quietMs);
    function done() {
      realClearTimeout(deadline);
      resolve();
    }
    channel.onmessage = () => {
      realClearTimeout(quiet);
      quiet = realSetTimeout(done, quietMs);
    };
  }).finally(() => channel.close());
}
