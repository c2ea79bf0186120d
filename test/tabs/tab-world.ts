import { randomUUID } from "node:crypto";
import { afterEach } from "vitest";
import { now } from "../../src/core/clock.js";
import {
  createTokenSource,
  shareAcrossTabs,
  type TokenEvent,
  TokenFetchCode,
  TokenFetchError,
  type TokenSourceOptions,
} from "../../src/index.js";
import { createFakeLockWorld, type FakeLockWorld } from "../helpers/fake-locks.js";

// Tabs in one process, each its own token source, over a fake Web Locks world and Node's real
// BroadcastChannel; the token endpoint is a small rotating-refresh-token server that counts reuse.

const opened: BroadcastChannel[] = [];
afterEach(() => {
  for (const channel of opened.splice(0)) channel.close();
});

/** A channel that can be "frozen" (a page in the back/forward cache hears nothing). */
export class TabChannel extends BroadcastChannel {
  frozen = false;
  constructor(name: string) {
    super(name);
    opened.push(this);
  }
  override set onmessage(listener: ((event: MessageEvent) => void) | null) {
    super.onmessage =
      listener === null
        ? null
        : (event: MessageEvent) => {
            if (!this.frozen) listener(event);
          };
  }
  override get onmessage(): ((event: MessageEvent) => void) | null {
    return super.onmessage;
  }
}

/** The refresh-token server: rotates on every refresh, and revokes the family on reuse. */
export interface RotatingServer {
  /** Sign-ins (a fetch without a refresh token). */
  signIns: number;
  refreshes: number;
  /** Spent refresh tokens presented again. */
  reuse: number;
  /** Refresh tokens each fetch was given, in order (`undefined`: a sign-in). */
  presented: (string | undefined)[];
}

export interface TabWorld {
  world: FakeLockWorld;
  channel: string;
  server: RotatingServer;
  /** Opens a tab with its own token source; `signIn: false` makes a sign-in without a refresh token fail. */
  open(id: string, extra?: Partial<TokenSourceOptions>): ReturnType<typeof createTokenSource>;
  /** Each tab's channel, to freeze it. */
  ports: Map<string, TabChannel>;
  events: Map<string, TokenEvent[]>;
}

export function makeTabWorld(options: { lifetimeMs?: number; signIns?: boolean } = {}): TabWorld {
  const world = createFakeLockWorld();
  const channel = randomUUID();
  const server: RotatingServer = { signIns: 0, refreshes: 0, reuse: 0, presented: [] };
  const live = new Set<string>();
  const spent = new Set<string>();
  let issued = 0;
  const fetchToken = async ({ state }: { state: string | undefined }) => {
    server.presented.push(state);
    await new Promise((resolve) => setTimeout(resolve, 10));
    if (state === undefined) {
      if (options.signIns === false && server.signIns > 0) {
        throw new TokenFetchError("there are no credentials to sign in with", {
          code: TokenFetchCode.Unauthenticated,
        });
      }
      server.signIns++;
    } else {
      if (spent.has(state)) server.reuse++;
      if (!live.has(state)) {
        throw new TokenFetchError("the refresh token was refused", {
          code: TokenFetchCode.Unauthenticated,
          status: 400,
          reason: "refresh-token-refused",
        });
      }
      live.delete(state);
      spent.add(state);
      server.refreshes++;
    }
    issued++;
    const refreshToken = `refresh-${issued}`;
    live.add(refreshToken);
    return {
      token: `token-${issued}`,
      expiresAt: now() + (options.lifetimeMs ?? 60_000),
      state: refreshToken,
    };
  };
  const ports = new Map<string, TabChannel>();
  const events = new Map<string, TokenEvent[]>();
  return {
    world,
    channel,
    server,
    ports,
    events,
    open(id, extra = {}) {
      class Port extends TabChannel {
        constructor(name: string) {
          super(name);
          ports.set(id, this);
        }
      }
      const source = createTokenSource({
        fetchToken,
        crossTab: shareAcrossTabs(channel, {
          apis: { locks: world.tab(id), BroadcastChannel: Port },
        }),
        ...extra,
      });
      const log: TokenEvent[] = [];
      events.set(id, log);
      source.subscribe((event) => log.push(event));
      return source;
    },
  };
}
