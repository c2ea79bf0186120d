import { GrpcCode } from "../core/codes.js";
import type { DpopKeyHandle } from "../core/grant.js";
import type { ProofScheme } from "../core/proof-scheme.js";
import type { TabLink } from "../core/tab-sharing.js";
import { checkKeyPair, publicJwkOf, thumbprintOf } from "./key-pair.js";

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
  /** Where the key pair outlives the page. Default: none, a new key per token source. */
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

/** A source's DPoP key: signs proofs for its grant and its interceptors, keeps nonces per origin. */
export interface DpopKey extends DpopKeyHandle, ProofScheme {}

interface Key {
  pair: CryptoKeyPair;
  /** RFC 7638 thumbprint of the public key, base64url. */
  thumbprint: string;
  privateKey: CryptoKey;
  /** The proof's protected header, base64url: the same for every proof. */
  header: string;
}

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
  // A key pair a grant brought back from a sign-in by redirect: used instead of a new one.
  let preferred: CryptoKeyPair | undefined;
  const keyOf = async (): Promise<Key> => {
    key ??= loadKey(store, tabs, given, preferred);
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
    thumbprint: async () => (ready ?? (await keyOf())).thumbprint,
    keyPair: async () => (ready ?? (await keyOf())).pair,
    async adopt(pair) {
      if (key === undefined) preferred = pair;
      const { thumbprint } = await keyOf();
      return thumbprint === (await thumbprintOf(await publicJwkOf(pair.publicKey)));
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

/**
 * The source's key pair: the one given, the store's, another tab's, or a new one (`preferred`
 * instead, when a grant brought one back from a sign-in by redirect); and its header.
 */
async function loadKey(
  store: DpopKeyStore | undefined,
  tabs: TabLink | undefined,
  given: CryptoKeyPair | undefined,
  preferred: CryptoKeyPair | undefined,
): Promise<Key> {
  if (given !== undefined) await store?.save(given).catch(() => {});
  const make = async () => {
    if (preferred === undefined) return generate(store);
    await store?.save(preferred).catch(() => {});
    return preferred;
  };
  const stored = given ?? (await store?.load().catch(() => undefined));
  const pair =
    stored ?? (await (tabs === undefined ? make() : tabs.shared("dpop-key", make, isKeyPair)));
  const jwk = await publicJwkOf(pair.publicKey);
  const header = {
    typ: "dpop+jwt",
    alg: "ES256",
    jwk: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y },
  };
  return {
    pair,
    thumbprint: await thumbprintOf(jwk),
    privateKey: pair.privateKey,
    header: base64url(encoder.encode(JSON.stringify(header))),
  };
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

async function generate(store: DpopKeyStore | undefined): Promise<CryptoKeyPair> {
  // Non-extractable: the private key can sign here, and never leave as bytes.
  const pair = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, [
    "sign",
    "verify",
  ])) as CryptoKeyPair;
  await store?.save(pair).catch(() => {});
  return pair;
}

function isKeyPair(value: unknown): value is CryptoKeyPair {
  const pair = value as Partial<CryptoKeyPair> | undefined;
  return pair?.privateKey instanceof CryptoKey && pair.publicKey instanceof CryptoKey;
}

function randomId(): string {
  return base64url(crypto.getRandomValues(new Uint8Array(16)));
}

function base64url(bytes: ArrayBuffer | Uint8Array): string {
  return base64urlOf(btoa(String.fromCharCode(...new Uint8Array(bytes))));
}

function base64urlOf(base64: string): string {
  return base64.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
