/**
 * Keeps the DPoP key pair that `dpop_jkt` named across the navigation to the provider and back:
 * the `CryptoKey` objects (structured clone), never their bytes, so the private key stays
 * non-extractable. One entry per sign-in, taken (read and deleted) by its callback.
 */
export interface SignInKeyStore {
  save(id: string, pair: CryptoKeyPair): Promise<void>;
  /** The pair saved under `id`, deleted as it is read; `undefined` if there is none. */
  take(id: string): Promise<CryptoKeyPair | undefined>;
  /**
   * The pair of the newest sign-in still waiting for its callback (saved less than 30 minutes
   * ago), left as it is; `undefined` if there is none. A sign-in started in another tab while
   * that one is at the provider names the same key, so whichever code the provider honours, the
   * tabs that come back share one key.
   */
  latest(): Promise<CryptoKeyPair | undefined>;
}

const DATABASE = "grpc-web-auth-sign-in";
const STORE = "dpop-keys";
/** Entries of sign-ins that never came back are dropped after this long. */
const KEEP_MS = 30 * 60_000;

/** Opens the database, creating its one object store the first time. */
function open(): Promise<IDBDatabase> {
  return new Promise<IDBDatabase>((resolve, reject) => {
    const request = indexedDB.open(DATABASE, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/** Runs `act` in one read-write transaction; resolves with its result once that commits. */
async function run<T>(act: (store: IDBObjectStore) => T): Promise<T> {
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
}

/**
 * A {@link SignInKeyStore} in IndexedDB (the browser default): entries are deleted when their
 * callback takes them, and any older than 30 minutes whenever one is saved.
 */
export function indexedDbSignInKeys(): SignInKeyStore {
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
      return pairOf(found);
    },
    async latest() {
      let newest: { pair?: unknown; at: number } | undefined;
      await run((store) => {
        const cursor = store.openCursor();
        cursor.onsuccess = () => {
          const at = cursor.result;
          if (at === null) return;
          const entry = at.value as { pair?: unknown; at?: unknown };
          const when = entry?.at;
          if (typeof when === "number" && Date.now() - when <= KEEP_MS) {
            if (newest === undefined || when > newest.at) newest = { pair: entry.pair, at: when };
          }
          at.continue();
        };
      });
      return pairOf(newest);
    },
  };
}

/** An entry's pair, if it holds CryptoKeys (what the source then checks as it would any pair). */
function pairOf(entry: unknown): CryptoKeyPair | undefined {
  const pair = (entry as { pair?: CryptoKeyPair } | undefined)?.pair;
  return pair?.privateKey instanceof CryptoKey ? pair : undefined;
}
