/**
 * The contract between a token source and its grant: how a token is obtained. A grant is a
 * function the app imports and passes as `fetchToken` (`passwordGrant(…)`, `refreshTokenGrant(…)`,
 * or its own), so an app bundles only the grants it names.
 */

/** What a grant resolves to: the token alone, or the token with what is known about it. */
export type FetchTokenResult = string | GrantedToken;

/** A token and what the grant knows about it. Only `token` is required. */
export interface GrantedToken {
  /** The access token, sent as `<scheme> <token>`. */
  token: string;
  /**
   * When it expires, in milliseconds since the epoch on this machine's clock (`Date.now()`).
   * Default: read from the JWT's own claims, or unknown (used until the server refuses it).
   */
  expiresAt?: number | undefined;
  /** Its lifetime in seconds as the endpoint announced it (OAuth `expires_in`), from arrival. */
  expiresIn?: number | undefined;
  /**
   * The endpoint's clock when it answered (its `Date` header), in ms since the epoch: read
   * against a JWT's `exp` when the JWT has no `iat`.
   */
  serverDate?: number | undefined;
  /**
   * State the grant keeps between fetches, such as a rotating refresh token. The source hands it
   * to the next fetch as {@link GrantContext.state}, passes it to the other tabs with the token
   * (`shareAcrossTabs`), and forgets it on `clear()`. Leave it out to keep none.
   */
  state?: string | undefined;
  /**
   * The token's type as the endpoint said (`token_type`, RFC 6749 §7.1; case-insensitive):
   * `"DPoP"` is sent with a proof of the source's key, `"Bearer"` without one (even on a DPoP
   * source, which then reports `bearer-token` once); any other type fails the fetch (Internal).
   * Default: `"DPoP"` on a source with `dpop`, `"Bearer"` otherwise.
   */
  tokenType?: string | undefined;
}

/** What a grant is called with, once per fetch. */
export interface GrantContext {
  /** Aborts when the fetch times out (`timeoutMs`) or the source is cleared (`clear()`). */
  signal: AbortSignal;
  /** The `state` of the last token (here or in another tab), or `undefined`. */
  state: string | undefined;
  /** With `dpop`: signs DPoP proofs with the source's key for the token endpoint. */
  dpop?: DpopSigner | undefined;
  /**
   * The token the server refused, when this fetch replaces it; `undefined` otherwise. A grant
   * over an SDK that caches tokens must then ask for a new one, not the cached one.
   */
  rejected?: string | undefined;
}

/** Signs DPoP proofs (RFC 9449) with a source's key; given to grants of a DPoP source. */
export interface DpopSigner {
  /** A proof for one request (`htm` method, `htu` URL), with the origin's nonce once it gave one. */
  proof(method: string, url: string, accessToken?: string): Promise<string>;
  /** Keeps a nonce the server at `url`'s origin handed out (its `DPoP-Nonce` header). */
  nonce(url: string, nonce: string): void;
  /**
   * Learns the clock of the server at `url`'s origin from an answer's `Date` header (`null` or
   * unparsable: ignored), refusals included: later proofs for that origin (and for origins not
   * heard from yet) are dated on it, so a page whose clock is off recovers after one refused
   * proof. Returns whether it changed the clock proofs are dated on: a request refused with
   * `invalid_dpop_proof` is then worth sending once more.
   */
  serverDate(url: string, date: string | null | undefined): boolean;
}

/**
 * A source's DPoP key as a grant sees it outside a fetch (through {@link TokenGrant.attach}): what
 * a sign-in by redirect needs to name the key before it leaves the page and to find it again when
 * the page comes back.
 */
export interface DpopKeyHandle extends DpopSigner {
  /** The RFC 7638 SHA-256 thumbprint of the public key, base64url: what `dpop_jkt` names. */
  thumbprint(): Promise<string>;
  /** The key pair the source signs with (its private key non-extractable), made now if needed. */
  keyPair(): Promise<CryptoKeyPair>;
  /**
   * Signs with `pair` from now on if the source has no key yet (with `shareAcrossTabs`, if no
   * other tab has one either). Given a function, asks it for the pair only then (`undefined`: a
   * new key). A pair that fails the rule `keyPair` must pass, or that was given up at sign-out,
   * is passed over. Resolves whether the source's key is now `pair`'s.
   */
  adopt(pair: CryptoKeyPair | (() => Promise<CryptoKeyPair | undefined>)): Promise<boolean>;
}

/** What `createTokenSource` hands its grant once, at creation (see {@link TokenGrant.attach}). */
export interface GrantAttachment {
  /** With `dpop`: the source's key; `undefined` for a source of bearer tokens. */
  dpop: DpopKeyHandle | undefined;
}

/** What a grant's `revoke` is called with. */
export interface RevokeContext {
  /** The state the session held (a refresh token). */
  state: string;
  /** Aborts after `timeoutMs`: a revocation that takes longer counts as failed. */
  signal: AbortSignal;
  /**
   * With `dpop`: signs proofs with the key the session's tokens were bound to (the source has
   * already moved to a new key), for a server that revokes bound tokens only with their proof.
   */
  dpop?: DpopSigner | undefined;
}

/**
 * Obtains a token. A `TokenFetchError` it throws keeps its code (and its `reason`, which ends the
 * session); anything else counts as Unavailable.
 */
export interface TokenGrant {
  (context: GrantContext): Promise<FetchTokenResult>;
  /**
   * Called by `clear()` in the tab that signed out, with the state the session held: revokes it
   * at the server (a refresh token). Bounded by `timeoutMs`, once for all tabs. Reject when the
   * revocation failed (with a `TokenFetchError` to say how): listeners get `revoke-failed`.
   */
  revoke?: ((context: RevokeContext) => Promise<void>) | undefined;
  /** Called by `clear()` in every tab: forget what the grant remembered of the session. */
  reset?: (() => void) | undefined;
  /**
   * The grant keeps its state beyond the page, where every tab of the origin reads it (a refresh
   * token `store`): tabs that each refreshed it on their own would present a spent refresh token
   * (reuse, which revokes the whole family). `createTokenSource` then requires `crossTab`, so
   * one tab at a time refreshes and hands the new state to the others. Default: `false`.
   */
  persistent?: boolean | undefined;
  /**
   * Called once by `createTokenSource`, before any fetch, with what the source is made of: for a
   * grant that works outside a fetch too (`authorizationCodeGrant` names the DPoP key in its
   * authorization request). A grant belongs to one source.
   */
  attach?: ((source: GrantAttachment) => void) | undefined;
}
