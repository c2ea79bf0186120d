/**
 * Where a sign-in by redirect keeps what it must find again when the page comes back: the PKCE
 * verifier, `state` and `nonce` in the tab's `sessionStorage`, never in the URL.
 */
export interface SignInStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/**
 * Keeps the DPoP key pair that `dpop_jkt` named across the navigation to the provider and back:
 * the `CryptoKey` objects (structured clone), never their bytes, so the private key stays
 * non-extractable. One entry per sign-in, taken (read and deleted) by its callback.
 */
export interface SignInKeyStore {
  save(id: string, pair: CryptoKeyPair): Promise<void>;
  /** The pair saved under `id`, deleted as it is read; `undefined` if there is none. */
  take(id: string): Promise<CryptoKeyPair | undefined>;
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

const DATABASE = "grpc-web-auth-sign-in";
const STORE = "dpop-keys";
/** Entries of sign-ins that never came back are dropped after this long. */
const KEEP_MS = 30 * 60_000;

/**
 * A {@link SignInKeyStore} in IndexedDB (the browser default): entries are deleted when their
 * callback takes them, and any older than 30 minutes whenever one is saved.
 */
export function indexedDbSignInKeys(): SignInKeyStore {
  const open = () =>
    new Promise<IDBDatabase>((resolve, reject) => {
      const request = indexedDB.open(DATABASE, 1);
      request.onupgradeneeded = () => request.result.createObjectStore(STORE);
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  const run = async <T>(act: (store: IDBObjectStore) => T): Promise<T> => {
    const db = await open();
    try {
      return await new Promise<T>((resolve, reject) => {
        const transaction = db.transaction(STORE, "readwrite");
        const result = act(transaction.objectStore(STORE));
        transaction.oncomplete = () => resolve(result);
        transaction.onerror = () => reject(transaction.error);
        transaction.onabort = () => reject(transaction.error);
      });
    } finally {
      db.close();
    }
  };
  return {
    async save(id, pair) {
      await run((store) => {
        const cursor = store.openCursor();
        cursor.onsuccess = () => {
          const at = cursor.result;
          if (at === null) return;
          const entry = at.value as { at?: unknown };
          if (typeof entry?.at !== "number" || Date.now() - entry.at > KEEP_MS) at.delete();
          at.continue();
        };
        store.put({ pair, at: Date.now() }, id);
      });
    },
    async take(id) {
      let found: unknown;
      await run((store) => {
        const request = store.get(id);
        request.onsuccess = () => {
          found = request.result;
        };
        store.delete(id);
      });
      const pair = (found as { pair?: CryptoKeyPair } | undefined)?.pair;
      return pair?.privateKey instanceof CryptoKey ? pair : undefined;
    },
  };
}
