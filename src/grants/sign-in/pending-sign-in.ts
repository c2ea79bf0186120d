/**
 * Where a sign-in by redirect keeps what it must find again when the page comes back: the PKCE
 * verifier, `state` and `nonce` in the tab's `sessionStorage`, never in the URL.
 */
export interface SignInStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** What one sign-in left in `sessionStorage` for its callback. */
export interface PendingSignIn {
  state: string;
  verifier: string;
  nonce?: string | undefined;
  /** The DPoP key's thumbprint the code is bound to (`dpop_jkt`). */
  jkt?: string | undefined;
  /** When the sign-in started (ms since the epoch): a stale one is refused. */
  at: number;
}

/** The pending sign-in under `key`, removed as it is read: a callback is answered once. */
export function takePending(storage: SignInStorage, key: string): PendingSignIn | undefined {
  let text: string | null;
  try {
    text = storage.getItem(key);
    storage.removeItem(key);
  } catch {
    return undefined;
  }
  if (text === null) return undefined;
  try {
    const value = JSON.parse(text) as Partial<PendingSignIn>;
    const { state, verifier, nonce, jkt, at } = value;
    if (typeof state !== "string" || typeof verifier !== "string" || typeof at !== "number") {
      return undefined;
    }
    return {
      state,
      verifier,
      at,
      nonce: typeof nonce === "string" ? nonce : undefined,
      jkt: typeof jkt === "string" ? jkt : undefined,
    };
  } catch {
    return undefined;
  }
}
