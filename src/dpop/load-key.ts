import { reportError } from "../core/report-error.js";
import type { TabLink } from "../core/tab-sharing.js";
import { DpopKeyRejectedError } from "./dpop-key-error.js";
import { isMatchingPair, keyPairProblem, type PublicJwk, publicJwkOf } from "./key-pair.js";
import type { DpopKeyStore } from "./key-store.js";

/** A key pair the source signs with, ready to use. */
export interface Key {
  pair: CryptoKeyPair;
  privateKey: CryptoKey;
  /** Its public key, as proofs carry it. */
  jwk: PublicJwk;
  /** The proof's protected header, base64url: the same for every proof. */
  header: string;
}

/** Where the source's key comes from, and which keys it gave up (signed out) and must not take back. */
export interface KeySources {
  store: DpopKeyStore | undefined;
  tabs: TabLink | undefined;
  /** The app's `keyPair`, already checked. */
  given: CryptoKeyPair | undefined;
  /** `x.y` of the public keys given up at sign-out. */
  retired: ReadonlySet<string>;
  /**
   * A pair a grant brought back from a sign-in by redirect, asked for only when a key must be
   * made (no store's, no tab's): taken instead of a new one if it passes the checks.
   */
  preferred?: (() => Promise<CryptoKeyPair | undefined>) | undefined;
}

const NOT_ITS_PAIR = ".publicKey must be the public key of keyPair.privateKey";

/**
 * The source's key pair: the one given, the store's, another tab's, or a new one. A pair from the
 * store or a tab must pass the rule the app's `keyPair` passes, and its public key must verify
 * what its private key signs; one that fails is reported ({@link DpopKeyRejectedError}) and a new
 * pair made (and saved over it). A pair given up at sign-out is passed over without a report.
 */
export async function loadKey(sources: KeySources): Promise<Key> {
  const { store, tabs, given, retired, preferred } = sources;
  if (given !== undefined) {
    await store?.save(given).catch(() => {});
    const key = await keyOf(given);
    if (!(await isMatchingPair(given, key.jwk))) {
      throw new TypeError(`dpopProofs: keyPair${NOT_ITS_PAIR}`);
    }
    return key;
  }
  const stored = await store?.load().catch(() => undefined);
  const fromStore = stored === undefined ? undefined : await accepted(stored, "store", retired);
  if (fromStore !== undefined) return fromStore;
  const make = async () => {
    const pair = await preferred?.().catch(() => undefined);
    if (pair === undefined || (await accepted(pair, "sign-in", retired)) === undefined) {
      return generate(store);
    }
    await store?.save(pair).catch(() => {});
    return pair;
  };
  if (tabs === undefined) return keyOf(await make());
  // The channel admits only pairs that pass the rule; the rest of the check needs to await.
  const shared = await tabs.shared("dpop-key", make, admitFromTab);
  return (await accepted(shared, "tab", retired)) ?? keyOf(await make());
}

/** A pair from the store or a tab as a Key, or `undefined` (reported unless retired) to make one. */
async function accepted(
  pair: unknown,
  from: DpopKeyRejectedError["from"],
  retired: ReadonlySet<string>,
): Promise<Key | undefined> {
  const problem = keyPairProblem(pair);
  if (problem !== undefined) {
    reportError(new DpopKeyRejectedError(from, problem));
    return undefined;
  }
  const key = await keyOf(pair as CryptoKeyPair);
  if (retired.has(idOf(key.jwk))) return undefined;
  if (!(await isMatchingPair(pair as CryptoKeyPair, key.jwk))) {
    reportError(new DpopKeyRejectedError(from, NOT_ITS_PAIR));
    return undefined;
  }
  return key;
}

/** The channel's check for another tab's pair: the rule, and a report for what fails it. */
function admitFromTab(value: unknown): value is CryptoKeyPair {
  const problem = keyPairProblem(value);
  if (problem !== undefined) reportError(new DpopKeyRejectedError("tab", problem));
  return problem === undefined;
}

/** What identifies a public key among the retired ones. */
export function idOf(jwk: PublicJwk): string {
  return `${jwk.x}.${jwk.y}`;
}

async function keyOf(pair: CryptoKeyPair): Promise<Key> {
  const jwk = await publicJwkOf(pair.publicKey);
  const header = {
    typ: "dpop+jwt",
    alg: "ES256",
    jwk: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y },
  };
  return {
    pair,
    privateKey: pair.privateKey,
    jwk,
    header: base64url(encoder.encode(JSON.stringify(header))),
  };
}

/** A new pair, saved in the store (over whatever it held). */
export async function generate(store: DpopKeyStore | undefined): Promise<CryptoKeyPair> {
  // Non-extractable: the private key can sign here, and never leave as bytes.
  const pair = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, [
    "sign",
    "verify",
  ])) as CryptoKeyPair;
  await store?.save(pair).catch(() => {});
  return pair;
}

const encoder = new TextEncoder();

export function base64url(bytes: ArrayBuffer | Uint8Array): string {
  return base64urlOf(btoa(String.fromCharCode(...new Uint8Array(bytes))));
}

export function base64urlOf(base64: string): string {
  return base64.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
