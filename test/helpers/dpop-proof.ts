import { createHash, randomUUID } from "node:crypto";
import { calculateJwkThumbprint, exportJWK, SignJWT } from "jose";

/** What a DPoP proof (RFC 9449 §4.2) names besides its key. */
export interface DpopProofClaims {
  /** The request's method. Default `"POST"`. */
  htm?: string;
  /** The request's URL; query and fragment are dropped as the RFC asks. */
  htu: string;
  /** The access token the request presents; the proof then carries its hash as `ath`. */
  accessToken?: string;
  /** A server nonce from a `DPoP-Nonce` header. */
  nonce?: string;
  /** Seconds since the epoch. Default now; a test sets it to make a stale proof. */
  iat?: number;
  /** Default a fresh UUID; a test repeats one to make a replay. */
  jti?: string;
}

/**
 * Signs a DPoP proof with `keyPair` (ES256), the way a correct client does. Test-side code: the
 * harness signs its own proofs so it can check the provider without the library.
 */
export async function signDpopProof(
  keyPair: CryptoKeyPair,
  claims: DpopProofClaims,
): Promise<string> {
  const url = new URL(claims.htu);
  const payload: Record<string, unknown> = {
    htm: claims.htm ?? "POST",
    htu: `${url.origin}${url.pathname}`,
    jti: claims.jti ?? randomUUID(),
    iat: claims.iat ?? Math.floor(Date.now() / 1000),
  };
  if (claims.accessToken !== undefined) payload.ath = athOf(claims.accessToken);
  if (claims.nonce !== undefined) payload.nonce = claims.nonce;
  return new SignJWT(payload)
    .setProtectedHeader({ alg: "ES256", typ: "dpop+jwt", jwk: await exportJWK(keyPair.publicKey) })
    .sign(keyPair.privateKey);
}

/** The RFC 7638 SHA-256 thumbprint of the key pair's public key: `dpop_jkt`, `cnf.jkt`. */
export async function thumbprintOf(keyPair: CryptoKeyPair): Promise<string> {
  return calculateJwkThumbprint(await exportJWK(keyPair.publicKey), "sha256");
}

/** base64url(SHA-256(accessToken)), a proof's `ath`. */
export function athOf(accessToken: string): string {
  return createHash("sha256").update(accessToken, "ascii").digest("base64url");
}
