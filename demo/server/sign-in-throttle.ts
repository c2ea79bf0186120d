/** Options for {@link createSignInThrottle}. */
export interface SignInThrottleOptions {
  /** Wrong passwords an account may have in a row before it must wait. Default 5. */
  freeFailures?: number;
  /** The first wait, in ms; each further wrong password doubles it. Default 1000. */
  baseDelayMs?: number;
  /** The longest wait, in ms. Default 60000. */
  maxDelayMs?: number;
  /** Accounts tracked at once; beyond it the least recently failed one is forgotten. Default 10000. */
  maxAccounts?: number;
  /** An account with no wrong password for this long is forgotten, in ms. Default 900000 (15 min). */
  forgetAfterMs?: number;
  /** The clock, in ms since the epoch. Default `Date.now`. */
  now?: () => number;
}

/**
 * Per-account backoff for password sign-ins: after `freeFailures` wrong passwords in a row, the
 * account's next password is not even checked until a wait has passed, `baseDelayMs` doubled per
 * further wrong password up to `maxDelayMs`. A right password ends the wait's growth (the count
 * starts over). Usernames that do not exist are tracked the same way, so the answers say nothing
 * about which exist. Memory is bounded: at most `maxAccounts` entries of a few dozen bytes each.
 */
export interface SignInThrottle {
  /** Milliseconds `username` must still wait before its password is checked; 0: check it now. */
  waitMs(username: string): number;
  /** Records the outcome of a password that was checked. */
  checked(username: string, right: boolean): void;
  /** Forgets every account (the test-mode reset). */
  clear(): void;
  /** How many accounts are tracked now. */
  size(): number;
}

interface Account {
  failures: number;
  /** When the account may try again, ms since the epoch. */
  until: number;
  lastFailure: number;
}

export function createSignInThrottle(options: SignInThrottleOptions = {}): SignInThrottle {
  const freeFailures = integer(options.freeFailures ?? 5, "freeFailures", 1);
  const baseDelayMs = integer(options.baseDelayMs ?? 1_000, "baseDelayMs", 1);
  const maxDelayMs = integer(options.maxDelayMs ?? 60_000, "maxDelayMs", baseDelayMs);
  const maxAccounts = integer(options.maxAccounts ?? 10_000, "maxAccounts", 1);
  const forgetAfterMs = integer(options.forgetAfterMs ?? 900_000, "forgetAfterMs", 1);
  const now = options.now ?? Date.now;
  // Insertion order is failure order: the first entry is the least recently failed.
  const accounts = new Map<string, Account>();

  const current = (username: string): Account | undefined => {
    const account = accounts.get(username);
    if (account !== undefined && now() - account.lastFailure > forgetAfterMs) {
      accounts.delete(username);
      return undefined;
    }
    return account;
  };

  return {
    waitMs(username) {
      const account = current(username);
      return account === undefined ? 0 : Math.max(0, account.until - now());
    },
    checked(username, right) {
      if (right) {
        accounts.delete(username);
        return;
      }
      const at = now();
      const account = current(username) ?? { failures: 0, until: 0, lastFailure: at };
      account.failures++;
      account.lastFailure = at;
      const over = account.failures - freeFailures;
      if (over >= 0)
        account.until = at + Math.min(maxDelayMs, baseDelayMs * 2 ** Math.min(over, 30));
      accounts.delete(username);
      if (accounts.size >= maxAccounts) accounts.delete(accounts.keys().next().value as string);
      accounts.set(username, account);
    },
    clear: () => accounts.clear(),
    size: () => accounts.size,
  };
}

function integer(value: number, name: string, min: number): number {
  if (!Number.isInteger(value) || value < min) {
    throw new TypeError(`${name} must be an integer of at least ${min}, got ${value}`);
  }
  return value;
}
