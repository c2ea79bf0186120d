/**
 * Keeps a DPoP key pair beyond the page, for apps that want one key per browser rather than per
 * page load. The key stays non-extractable: a store holds the `CryptoKey` objects, never their
 * bytes. `indexedDbKeyStore()` is one.
 */
export interface DpopKeyStore {
  /** The key pair saved last, or `undefined`. */
  load(): Promise<CryptoKeyPair | undefined>;
  /** Saves the key pair the source just made. */
  save(pair: CryptoKeyPair): Promise<void>;
  /**
   * Forgets the saved key pair: called at sign-out (`clear()`), so the next user of the browser
   * gets a new key whose thumbprint does not link them to the last. Default when absent: the old
   * pair stays saved until the next key is saved over it (at the next proof), and a page loaded
   * in between takes it up again.
   */
  delete?(): Promise<void>;
}
