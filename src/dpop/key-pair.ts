/** The members of a P-256 public JWK that a DPoP proof's header and its thumbprint carry. */
export interface PublicJwk {
  crv: string;
  kty: string;
  x: string;
  y: string;
}

/**
 * Checks a key pair an app hands to `dpopProofs({ keyPair })`, as far as it can be checked
 * without awaiting: ECDSA P-256, a private key that can sign and can never be exported, and a
 * public key that can (to put it in the proof header).
 */
export function checkKeyPair(value: unknown): asserts value is CryptoKeyPair {
  const fail = (what: string) => {
    throw new TypeError(`dpopProofs: keyPair ${what}`);
  };
  const pair = value as Partial<CryptoKeyPair> | null | undefined;
  if (typeof pair !== "object" || pair === null) fail("must be a CryptoKeyPair");
  const { privateKey, publicKey } = pair as Partial<CryptoKeyPair>;
  if (!isCryptoKey(privateKey) || !isCryptoKey(publicKey)) {
    fail("must be a CryptoKeyPair: { privateKey, publicKey } CryptoKeys");
  }
  const keys = pair as CryptoKeyPair;
  for (const [name, key] of [
    ["privateKey", keys.privateKey],
    ["publicKey", keys.publicKey],
  ] as const) {
    const algorithm = key.algorithm as Partial<EcKeyAlgorithm>;
    if (algorithm.name !== "ECDSA" || algorithm.namedCurve !== "P-256") {
      fail(
        `.${name} must be an ECDSA P-256 key (ES256), not ${String(algorithm.name)} ${String(algorithm.namedCurve ?? "")}`.trimEnd(),
      );
    }
  }
  if (keys.privateKey.type !== "private" || keys.publicKey.type !== "public") {
    fail("must hold the private key as privateKey and the public key as publicKey");
  }
  if (keys.privateKey.extractable) {
    fail(
      ".privateKey must be non-extractable (generateKey(…, false, …)): an extractable key can be read out by any script of the page",
    );
  }
  if (!keys.privateKey.usages.includes("sign")) fail('.privateKey must have the "sign" usage');
  if (!keys.publicKey.extractable) {
    fail(".publicKey must be extractable (generateKey makes it so): proofs carry it as a JWK");
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
