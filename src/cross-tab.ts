import {
  TokenFetchCode,
  type TokenFetchError,
  type TokenFetchErrorCode,
} from "./token-fetch-error.js";

/** A token as tabs share it: the token and when it expires on this machine's clock. */
export interface SharedToken {
  token: string;
  /** ms since the epoch; undefined for a token with no known expiry. */
  expiresAt: number | undefined;
}

/**
 * A failed fetch as tabs share it: what a `TokenFetchError` says, without its cause or body
 * excerpt (neither leaves the tab that fetched).
 */
export interface SharedFailure {
  code: TokenFetchErrorCode;
  status: number | null;
  message: string;
}

/** What the token source hears from the other tabs. */
export interface TabListener {
  /** Another tab has a token (it fetched one, or answered a query). */
  onToken(shared: SharedToken): void;
  /** Another tab learned that `token` was rejected. */
  onRejected(token: string): void;
  /** Another tab signed out; `token` is the one it dropped, never to be adopted again. */
  onCleared(token: string | undefined): void;
  /** Another tab asks for the current token: answer with it if it is fresh. */
  onQuery(): SharedToken | undefined;
  /** Another tab's fetch, made while holding the lock, failed. */
  onFailed(failure: SharedFailure): void;
}

/** The cross-tab link of one token source. */
export interface TabLink {
  /**
   * Runs `task` holding the channel's Web Lock, so one tab at a time fetches.
   * The wait ends early (the task is not run) when `cancelWait` aborts; a wait
   * longer than `stealAfterMs` takes the lock from its holder: a frozen tab must
   * not stall the others (a closed tab's lock is released by the browser).
   */
  exclusive<T>(
    task: () => Promise<T>,
    cancelWait: AbortSignal,
    stealAfterMs: number,
  ): Promise<T | typeof NOT_RUN>;
  /** Asks the other tabs for a fresh token; resolves when one answers or after `waitMs`. */
  ask(waitMs: number): Promise<void>;
  announceToken(shared: SharedToken): void;
  announceRejected(token: string): void;
  announceCleared(token: string | undefined): void;
  /**
   * Tells the tabs waiting for the lock that this tab's fetch failed. A fetch abandoned here
   * (Canceled) is this tab's business and is not told.
   */
  announceFailed(error: TokenFetchError): void;
}

/** What `exclusive` returns when the wait was cancelled before the lock was granted. */
export const NOT_RUN: unique symbol = Symbol("not run");

/** The browser APIs a link needs; injectable so the logic can be tested outside a browser. */
export interface TabApis {
  locks: Pick<LockManager, "request">;
  BroadcastChannel: new (name: string) => BroadcastChannel;
}

type Message =
  | { v: 1; type: "token"; token: string; expiresAt: number | null }
  | { v: 1; type: "rejected"; token: string }
  | { v: 1; type: "cleared"; token: string | null }
  | { v: 1; type: "query" }
  | ({ v: 1; type: "failed" } & SharedFailure);

/** The browser's Web Locks and BroadcastChannel, or undefined where either is missing. */
export function browserTabApis(): TabApis | undefined {
  const locks = (globalThis.navigator as Navigator | undefined)?.locks;
  const Channel = globalThis.BroadcastChannel;
  if (locks === undefined || typeof locks.request !== "function" || Channel === undefined) {
    return undefined;
  }
  return { locks, BroadcastChannel: Channel };
}

/** Links a token source to the other tabs of this origin on `channel`. */
export function createTabLink(channel: string, apis: TabApis, listener: TabListener): TabLink {
  const name = `grpc-web-auth:${channel}`;
  const port = new apis.BroadcastChannel(name);
  // Node's channels keep the process alive; a token source must not.
  (port as { unref?: () => void }).unref?.();
  const answered = new Set<() => void>();
  const post = (message: Message) => port.postMessage(message);

  port.onmessage = (event: MessageEvent<unknown>) => {
    const message = parse(event.data);
    if (message === undefined) return;
    switch (message.type) {
      case "token":
        listener.onToken({ token: message.token, expiresAt: message.expiresAt ?? undefined });
        for (const wake of answered) wake();
        break;
      case "rejected":
        listener.onRejected(message.token);
        break;
      case "cleared":
        listener.onCleared(message.token ?? undefined);
        break;
      case "query": {
        const shared = listener.onQuery();
        if (shared !== undefined) post(tokenMessage(shared));
        break;
      }
      case "failed":
        listener.onFailed(message);
        break;
    }
  };

  return {
    async exclusive(task, cancelWait, stealAfterMs) {
      const waiting = new AbortController();
      const stopWaiting = () => waiting.abort();
      cancelWait.addEventListener("abort", stopWaiting, { once: true });
      const stealTimer = setTimeout(stopWaiting, stealAfterMs);
      try {
        return await apis.locks.request(name, { signal: waiting.signal }, () => {
          clearTimeout(stealTimer);
          return task();
        });
      } catch (error) {
        if (!waiting.signal.aborted) throw error;
        if (cancelWait.aborted) return NOT_RUN;
        // Waited too long: the holder is stuck. Take the lock and fetch ourselves.
        return await apis.locks.request(name, { steal: true }, () => task());
      } finally {
        clearTimeout(stealTimer);
        cancelWait.removeEventListener("abort", stopWaiting);
      }
    },
    ask(waitMs) {
      return new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          answered.delete(done);
          resolve();
        };
        const timer = setTimeout(done, waitMs);
        answered.add(done);
        post({ v: 1, type: "query" });
      });
    },
    announceToken: (shared) => post(tokenMessage(shared)),
    announceRejected: (token) => post({ v: 1, type: "rejected", token }),
    announceCleared: (token) => post({ v: 1, type: "cleared", token: token ?? null }),
    announceFailed({ code, status, message }) {
      if (code !== TokenFetchCode.Canceled) {
        post({ v: 1, type: "failed", code, status: status ?? null, message });
      }
    },
  };
}

function tokenMessage(shared: SharedToken): Message {
  return { v: 1, type: "token", token: shared.token, expiresAt: shared.expiresAt ?? null };
}

/** Accepts only well-formed messages of this version: anything else on the channel is ignored. */
function parse(data: unknown): Message | undefined {
  if (typeof data !== "object" || data === null) return undefined;
  const message = data as Record<string, unknown>;
  if (message.v !== 1) return undefined;
  switch (message.type) {
    case "token": {
      const { token, expiresAt } = message;
      if (typeof token !== "string" || token === "") return undefined;
      if (expiresAt !== null && (typeof expiresAt !== "number" || !Number.isFinite(expiresAt))) {
        return undefined;
      }
      return { v: 1, type: "token", token, expiresAt };
    }
    case "rejected":
      return typeof message.token === "string"
        ? { v: 1, type: "rejected", token: message.token }
        : undefined;
    case "cleared": {
      const { token } = message;
      if (token !== null && token !== undefined && typeof token !== "string") return undefined;
      return { v: 1, type: "cleared", token: token ?? null };
    }
    case "query":
      return { v: 1, type: "query" };
    case "failed": {
      // Canceled (1) is never sent; a cut message keeps a stray essay off the callers' errors.
      const { code, status, message: text } = message;
      return (code === 13 || code === 14 || code === 16) &&
        (status === null || Number.isInteger(status)) &&
        typeof text === "string"
        ? {
            v: 1,
            type: "failed",
            code,
            status: status as number | null,
            message: text.slice(0, 300),
          }
        : undefined;
    }
    default:
      return undefined;
  }
}
