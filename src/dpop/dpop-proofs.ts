import type { TabLink } from "../core/tab-sharing.js";
import { createDpopKey, type DpopKey } from "./dpop-key.js";
import type { DpopKeyRejectedError } from "./dpop-key-error.js";
import { checkKeyPair, publicJwkOf, thumbprintOf } from "./key-pair.js";
import type { DpopKeyStore } from "./key-store.js";

export type { DpopKey } from "./dpop-key.js";
export type { DpopKeyStore } from "./key-store.js";

/** Options for {@link dpopProofs}. */
export interface DpopProofsOptions {
  /**
   * The key pair to prove possession of: the one a sign-in bound its tokens to (`dpop_jkt`, RFC
   * 9449 §10), so the refresh token it issued can be used. ECDSA P-256, with a non-extractable
   * private key that can `sign`; anything else is a TypeError. With `store`, it is saved there,
   * so a later page (or another tab) that gives only `store` uses the same key. Default: the
   * store's key, another tab's, or a new one per token source.
   */
  keyPair?: CryptoKeyPair | undefined;
  /**
   * Where the key pair outlives the page. Default: none, a new key per token source. Other code of
   * the origin can write it too, so a pair it holds (like one another tab hands over) is used only
   * if it passes the rule `keyPair` must pass and its public key verifies what its private key
   * signs; any other is reported as a {@link DpopKeyRejectedError} and a new pair made in its place.
   */
  store?: DpopKeyStore | undefined;
}

/** What a DPoP token source signs with: the value `dpopProofs()` returns, passed as `dpop`. */
export interface DpopProofs {
  /**
   * The RFC 7638 SHA-256 thumbprint (base64url) of the `keyPair` given: the `dpop_jkt` to send
   * with the authorization request (RFC 9449 §10). Rejects with a TypeError without `keyPair`
   * (the key a source makes is not known before it exists).
   */
  readonly thumbprint: () => Promise<string>;
}

/** Internal: {@link DpopProofs} as `dpopProofs()` made them, which bind to one source. */
export interface BindableDpopProofs extends DpopProofs {
  /** Binds to one source (and its tabs). */
  readonly bind: (tabs: TabLink | undefined) => DpopKey;
}

/**
 * DPoP (RFC 9449) for a token source: `createTokenSource({ fetchToken, dpop: dpopProofs() })`.
 * The source makes one ECDSA P-256 key pair with `extractable: false` and uses it until sign-out
 * (`clear()` makes a new one; with `shareAcrossTabs`, every tab uses the same one). The grants
 * send a proof to the token endpoint and get tokens bound to the key; the interceptors send
 * `authorization: DPoP <token>` and a fresh `dpop` proof on every attempt, and answer a server's
 * nonce challenge with one replay. Proofs are dated (`iat`) on the server's clock once an answer
 * from its origin (its `Date` header) has told it, so a page whose clock is off recovers after
 * one refused proof: the refused call is replayed once with a proof on the server's clock.
 *
 * @example
 * ```ts
 * const tokens = createTokenSource({ fetchToken: passwordGrant(options), dpop: dpopProofs() });
 * ```
 */
export function dpopProofs(options: DpopProofsOptions = {}): DpopProofs {
  return bindableDpopProofs(options);
}

/** {@link dpopProofs}, as the token source sees them. */
function bindableDpopProofs(options: DpopProofsOptions): BindableDpopProofs {
  if (typeof options !== "object" || options === null) {
    throw new TypeError("dpopProofs: options must be an object");
  }
  const { store, keyPair } = options;
  if (
    store !== undefined &&
    (typeof store?.load !== "function" || typeof store.save !== "function")
  ) {
    throw new TypeError("dpopProofs: store must be { load(), save(pair), delete?() }");
  }
  if (store?.delete !== undefined && typeof store.delete !== "function") {
    throw new TypeError("dpopProofs: store.delete must be a function when given");
  }
  if (keyPair !== undefined) checkKeyPair(keyPair);
  let thumbprint: Promise<string> | undefined;
  return {
    bind: (tabs) => createDpopKey(store, tabs, keyPair),
    thumbprint() {
      if (keyPair === undefined) {
        return Promise.reject(
          new TypeError("dpopProofs: thumbprint() needs the keyPair option, the key to bind to"),
        );
      }
      thumbprint ??= publicJwkOf(keyPair.publicKey).then(thumbprintOf);
      return thumbprint;
    },
  };
}
