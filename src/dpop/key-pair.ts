/** The members of a P-256 public JWK that a DPoP proof's header and its thumbprint carry. */
export interface PublicJwk {
  crv: string;
  kty: string;
  x: string;
  y: string;
}

/**
 * The one rule for a DPoP key pair, wherever it comes from (the app's `keyPair`, a `store`,
 * another tab), as far as it can be checked without awaiting: ECDSA P-256, a private key that can
 * sign and can never be exported, and a public key that can (to put it in the proof header).
 * Returns what is wrong, or `undefined` for a usable pair.
 */
export function keyPairProblem(value: unknown): string | undefined {
  const pair = value as Partial<CryptoKeyPair> | null | undefined;
  if (typeof pair !== "object" || pair === null) return "must be a CryptoKeyPair";
  const { privateKey, publicKey } = pair;
  if (!isCryptoKey(privateKey) || !isCryptoKey(publicKey)) {
    return "must be a CryptoKeyPair: { privateKey, publicKey } CryptoKeys";
  }
  for (const [name, key] of [
    ["privateKey", privateKey],
    ["publicKey", publicKey],
  ] as const) {
    const algorithm = key.algorithm as Partial<EcKeyAlgorithm>;
    if (algorithm.name !== "ECDSA" || algorithm.namedCurve !== "P-256") {
      return `.${name} must be an ECDSA P-256 key (ES256), not ${String(algorithm.name)} ${String(algorithm.namedCurve ?? "")}`.trimEnd();
    }
  }
  if (privateKey.type !== "private" || publicKey.type !== "public") {
    return "must hold the private key as privateKey and the public key as publicKey";
  }
  if (privateKey.extractable) {
    return ".privateKey must be non-extractable (generateKey(…, false, …)): an extractable key can be read out by any script of the page";
  }
  if (!privateKey.usages.includes("sign")) return '.privateKey must have the "sign" usage';
  if (!publicKey.extractable) {
    return ".publicKey must be extractable (generateKey makes it so): proofs carry it as a JWK";
  }
  return undefined;
}

/** Checks a key pair an app hands to `dpopProofs({ keyPair })`: {@link keyPairProblem} as a TypeError. */
export function checkKeyPair(value: unknown): asserts value is CryptoKeyPair {
  const problem = keyPairProblem(value);
  if (problem !== undefined) throw new TypeError(`dpopProofs: keyPair ${problem}`);
}

/** Whether `value` passes {@link keyPairProblem}: the check a key from another tab must pass. */
export function isUsableKeyPair(value: unknown): value is CryptoKeyPair {
  return keyPairProblem(value) === undefined;
}

/**
 * Whether the pair's public key is the private key's: a challenge signed with the private key
 * verifies with the public one. A pair that passed {@link keyPairProblem} but fails this was put
 * together from two keys, and proofs signed with it would carry a key that did not sign them.
 */
export async function isMatchingPair(pair: CryptoKeyPair, jwk: PublicJwk): Promise<boolean> {
  const algorithm = { name: "ECDSA", hash: "SHA-256" };
  const challenge = crypto.getRandomValues(new Uint8Array(32));
  try {
    const signature = await crypto.subtle.sign(algorithm, pair.privateKey, challenge);
    // Imported from the JWK: the pair's public key need not carry the "verify" usage.
    const publicKey = await crypto.subtle.importKey(
      "jwk",
      { ...jwk, ext: true },
      { name: "ECDSA", namedCurve: "P-256" },
      false,
      ["verify"],
    );
    return await crypto.subtle.verify(algorithm, publicKey, signature, challenge);
  } catch {
    return false;
  }
}

/** The public key as the JWK members RFC 7638 hashes for EC keys, in their canonical order. */
export async function publicJwkOf(publicKey: CryptoKey): Promise<PublicJwk> {
  const { crv, kty, x, y } = await crypto.subtle.exportKey("jwk", publicKey);
  return { crv: crv as string, kty: kty as string, x: x as string, y: y as string };
}

/** The RFC 7638 SHA-256 thumbprint of `jwk`, base64url: DPoP's `jkt` (RFC 9449 §6.1, §10). */
export async function thumbprintOf(jwk: PublicJwk): Promise<string> {
  // RFC 7638 §3.2: the required members only, in lexicographic order, without whitespace.
  const canonical = JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y });
  const hash = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(canonical));
  return btoa(String.fromCharCode(...new Uint8Array(hash)))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");
}

function isCryptoKey(value: unknown): value is CryptoKey {
  return typeof CryptoKey !== "undefined" && value instanceof CryptoKey;
}
