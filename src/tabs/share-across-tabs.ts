import type { SessionAnswer, TabSharing, TabSharingLink } from "../core/tab-sharing.js";
import { createTabLink, type TabApis } from "./tab-link.js";

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

/** Channels in use per lock manager (one per page in a browser): a second source must not join. */
const inUse = new WeakMap<object, Set<string>>();
/** What a source disposed in this page held, per lock manager and channel, for its successor. */
const leftBehind = new WeakMap<object, Map<string, SessionAnswer>>();

/**
 * Shares one token source's session among the tabs of this origin, as the `crossTab` option of
 * `createTokenSource`: one fetch for all of them (a Web Lock named after `channel`), the token,
 * refusals, failures and sign-out passed over a BroadcastChannel; the grant's state (a refresh
 * token) is handed only to a tab that asks for it, waiting for the lock.
 *
 * `channel` names what is shared: give every source of the app its own (two sources on one
 * channel would take each other's tokens). A second live source on a channel in the same page
 * throws a `TypeError`; `dispose()` the first one to make room for its successor.
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
          `createTokenSource: another token source in this page already shares the channel "${channel}": dispose() it first, or give each source its own channel name`,
        );
      }
      channels.add(channel);
      const left = leftBehind.get(apis.locks) ?? new Map<string, SessionAnswer>();
      leftBehind.set(apis.locks, left);
      const inherited = left.get(channel);
      left.delete(channel);
      // A hot update or a React effect's second run: the successor takes over the session in memory.
      if (inherited !== undefined) source.answered(inherited);
      return createTabLink(channel, apis, source, timeoutMs, (held) => {
        channels.delete(channel);
        if (held !== undefined) left.set(channel, held);
      });
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
