import type { DpopKeyStore } from "./key-store.js";

const STORE = "keys";
const KEY = "dpop";

/**
 * A {@link DpopKeyStore} in IndexedDB: one key pair per browser profile and origin, kept across
 * page loads. IndexedDB stores the `CryptoKey` objects by structured clone, so the private key
 * stays non-extractable: a script of the origin can use it to sign while the page runs, but can
 * never read its bytes.
 *
 * @example
 * ```ts
 * const tokens = createTokenSource({
 *   fetchToken,
 *   dpop: dpopProofs({ store: indexedDbKeyStore("my-app") }),
 * });
 * ```
 */
export function indexedDbKeyStore(database = "grpc-web-auth-dpop"): DpopKeyStore {
  if (typeof database !== "string" || database === "") {
    throw new TypeError("indexedDbKeyStore: database must be a non-empty string");
  }
  const open = () =>
    new Promise<IDBDatabase>((resolve, reject) => {
      const request = indexedDB.open(database, 1);
      request.onupgradeneeded = () => request.result.createObjectStore(STORE);
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  const run = async <T>(
    mode: IDBTransactionMode,
    act: (store: IDBObjectStore) => IDBRequest<T>,
  ) => {
    const db = await open();
    try {
      return await new Promise<T>((resolve, reject) => {
        const request = act(db.transaction(STORE, mode).objectStore(STORE));
        request.onsuccess = () => resolve(request.result);
        request.onerror = () => reject(request.error);
      });
    } finally {
      db.close();
    }
  };
  return {
    async load() {
      const pair = (await run("readonly", (store) => store.get(KEY))) as CryptoKeyPair | undefined;
      return pair?.privateKey instanceof CryptoKey ? pair : undefined;
    },
    async save(pair) {
      await run("readwrite", (store) => store.put(pair, KEY));
    },
    async delete() {
      await run("readwrite", (store) => store.delete(KEY));
    },
  };
}
