import { GrpcCode } from "../core/codes.js";
import type { DpopSigner } from "../core/grant.js";
import type { ProofScheme } from "../core/proof-scheme.js";
import type { TabLink } from "../core/tab-sharing.js";
import type { DpopKeyRejectedError } from "./dpop-key-error.js";
import { checkKeyPair, publicJwkOf, thumbprintOf } from "./key-pair.js";
import { base64url, base64urlOf, type Key, loadKey } from "./load-key.js";

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
}

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
  /** Binds to one source (and its tabs); internal to this library. */
  readonly bind: (tabs: TabLink | undefined) => DpopKey;
  /**
   * The RFC 7638 SHA-256 thumbprint (base64url) of the `keyPair` given: the `dpop_jkt` to send
   * with the authorization request (RFC 9449 §10). Rejects with a TypeError without `keyPair`
   * (the key a source makes is not known before it exists).
   */
  readonly thumbprint: () => Promise<string>;
}

/** A source's DPoP key: signs proofs for its grant and its interceptors, keeps nonces per origin. */
export interface DpopKey extends DpopSigner, ProofScheme {}

const encoder = new TextEncoder();

/** A `WWW-Authenticate` challenge for the DPoP scheme asking for a nonce (RFC 9449 §9). */
const USE_DPOP_NONCE = /(?:^|,)\s*DPoP\s[\s\S]*?\berror\s*=\s*"?use_dpop_nonce\b/i;

function headerOf(
  headers: Headers | Readonly<Record<string, string>> | undefined,
  name: string,
): string | undefined {
  if (headers instanceof Headers) return headers.get(name) ?? undefined;
  return headers?.[name];
}

/**
 * DPoP (RFC 9449) for a token source: `createTokenSource({ fetchToken, dpop: dpopProofs() })`.
 * The source makes one ECDSA P-256 key pair with `extractable: false` and uses it for its whole
 * life (with `shareAcrossTabs`, every tab uses the same one). The grants send a proof to the token
 * endpoint and get tokens bound to the key; the interceptors send `authorization: DPoP <token>`
 * and a fresh `dpop` proof on every attempt, and answer a server's nonce challenge with one replay.
 *
 * @example
 * ```ts
 * const tokens = createTokenSource({ fetchToken: passwordGrant(options), dpop: dpopProofs() });
 * ```
 */
export function dpopProofs(options: DpopProofsOptions = {}): DpopProofs {
  if (typeof options !== "object" || options === null) {
    throw new TypeError("dpopProofs: options must be an object");
  }
  const { store, keyPair } = options;
  if (
    store !== undefined &&
    (typeof store?.load !== "function" || typeof store.save !== "function")
  ) {
    throw new TypeError("dpopProofs: store must be { load(), save(pair) }");
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

function createDpopKey(
  store: DpopKeyStore | undefined,
  tabs: TabLink | undefined,
  given: CryptoKeyPair | undefined,
): DpopKey {
  let key: Promise<Key> | undefined;
  const nonces = new Map<string, string>();
  // The last token's hash: the same token is proved on many calls.
  let athFor = "";
  let ath = "";

  let ready: Key | undefined;
  const keyOf = async (): Promise<Key> => {
    key ??= loadKey({ store, tabs, given, retired: new Set() });
    const loading = key;
    try {
      ready = await loading;
      return ready;
    } catch (error) {
      // A failure is not kept (unless a newer try replaced it): the next proof tries again.
      if (key === loading) key = undefined;
      throw error;
    }
  };
  const targetOf = urlParts();

  const signer: DpopKey = {
    async proof(method, url, accessToken) {
      const { privateKey, header } = ready ?? (await keyOf());
      const { origin, htu } = targetOf(url);
      const claims: Record<string, string | number> = {
        jti: randomId(),
        htm: method,
        htu,
        iat: Math.floor(Date.now() / 1000),
      };
      if (accessToken !== undefined) {
        if (athFor !== accessToken) {
          ath = base64url(await crypto.subtle.digest("SHA-256", encoder.encode(accessToken)));
          athFor = accessToken;
        }
        claims.ath = ath;
      }
      const nonce = nonces.get(origin);
      if (nonce !== undefined) claims.nonce = nonce;
      // The claims are ASCII (a parsed URL, base64url, a checked nonce): btoa takes them as they are.
      const input = `${header}.${base64urlOf(btoa(JSON.stringify(claims)))}`;
      const signature = await crypto.subtle.sign(
        { name: "ECDSA", hash: "SHA-256" },
        privateKey,
        encoder.encode(input),
      );
      return `${input}.${base64url(signature)}`;
    },
    nonce(url, nonce) {
      // RFC 9449's NQCHAR: visible ASCII but `"` and `\`.
      if (/^[\x21\x23-\x5b\x5d-\x7e]{1,512}$/.test(nonce)) nonces.set(targetOf(url).origin, nonce);
    },
    scheme: "DPoP",
    // The call's URL without query or fragment is the proof's htu; calls are always POSTs.
    async prove(url, token) {
      const nonce = nonces.get(targetOf(url).origin);
      return { headers: { dpop: await signer.proof("POST", url, token) }, nonce };
    },
    challenge(url, { code, headers }, sent) {
      const nonce = headerOf(headers, "dpop-nonce");
      // A new nonce on any answer is kept for the next proofs.
      if (nonce !== undefined && nonce !== "") signer.nonce(url, nonce);
      if (
        code !== GrpcCode.Unauthenticated ||
        !USE_DPOP_NONCE.test(headerOf(headers, "www-authenticate") ?? "")
      ) {
        return undefined;
      }
      // Worth one more attempt only with a nonce other than the one this attempt's proof carried.
      return nonce !== undefined && nonce !== "" && nonce !== sent?.nonce;
    },
  };
  return signer;
}

/** A URL's origin and its `htu` (no query or fragment); calls go to few URLs, each parsed once. */
function urlParts(): (url: string) => { origin: string; htu: string } {
  const parts = new Map<string, { origin: string; htu: string }>();
  return (url) => {
    let known = parts.get(url);
    if (known === undefined) {
      const parsed = new URL(url, globalThis.location?.href);
      known = { origin: parsed.origin, htu: parsed.origin + parsed.pathname };
      if (parts.size >= 64) parts.clear();
      parts.set(url, known);
    }
    return known;
  };
}

function randomId(): string {
  return base64url(crypto.getRandomValues(new Uint8Array(16)));
}
