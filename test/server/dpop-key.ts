import { createHash, randomUUID } from "node:crypto";
import type { Interceptor } from "@connectrpc/connect";
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";

/** What a test may change in a proof; everything else is what a correct client would send. */
export interface ProofOverrides {
  htm?: string;
  htu?: string;
  ath?: string;
  nonce?: string;
  iat?: number;
  jti?: string;
  typ?: string;
  /** The `jwk` header to embed instead of the signing key's public half. */
  jwk?: JWK;
}

/** A client's DPoP key pair and a proof maker, as a browser client would hold them. */
export interface DpopKey {
  /** RFC 7638 SHA-256 thumbprint of the public key. */
  jkt: string;
  /** Signs a proof for `htm`/`htu` (and `ath` of `accessToken`, when given). */
  proof(htu: string, options?: { accessToken?: string } & ProofOverrides): Promise<string>;
}

/** Makes a fresh ES256 DPoP key with jose, the way the tests' clients do. */
export async function makeDpopKey(): Promise<DpopKey> {
  const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  const jkt = await calculateJwkThumbprint(publicJwk);
  return {
    jkt,
    proof(htu, options = {}) {
      const { accessToken, ...overrides } = options;
      const claims: Record<string, unknown> = {
        htm: overrides.htm ?? "POST",
        htu: overrides.htu ?? htu,
        jti: overrides.jti ?? randomUUID(),
        iat: overrides.iat ?? Math.floor(Date.now() / 1000),
      };
      const ath = overrides.ath ?? (accessToken === undefined ? undefined : sha256(accessToken));
      if (ath !== undefined) claims.ath = ath;
      if (overrides.nonce !== undefined) claims.nonce = overrides.nonce;
      return new SignJWT(claims)
        .setProtectedHeader({
          alg: "ES256",
          typ: overrides.typ ?? "dpop+jwt",
          jwk: overrides.jwk ?? publicJwk,
        })
        .sign(privateKey);
    },
  };
}

/** base64url(SHA-256(value)), the `ath` of an access token. */
export function sha256(value: string): string {
  return createHash("sha256").update(value).digest("base64url");
}

/**
 * A client interceptor that sends `authorization: DPoP <token>` and a fresh proof for the call's
 * URL (`req.url`), signed by `key`; `overrides` tamper with the proof.
 */
export function dpopAuth(
  token: string,
  key: DpopKey,
  overrides: (url: string) => ProofOverrides = () => ({}),
): Interceptor {
  return (next) => async (req) => {
    req.header.set("authorization", `DPoP ${token}`);
    req.header.set("dpop", await key.proof(req.url, { accessToken: token, ...overrides(req.url) }));
    return next(req);
  };
}
