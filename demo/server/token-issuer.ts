import { randomUUID } from "node:crypto";
import {
  type CryptoKey,
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  type JSONWebKeySet,
  SignJWT,
} from "jose";

/** The only algorithm the demo signs with, and the only one its verifier accepts. */
export const TOKEN_ALGORITHM = "ES256";

/** Options for {@link createTokenIssuer}. */
export interface TokenIssuerOptions {
  /** The `iss` claim of every token. Default `"grpc-web-auth-demo"`. */
  issuer?: string;
  /** The `aud` claim of every token. Default `"grpc-web-auth-demo-api"`. */
  audience?: string;
  /** Lifetime of issued tokens in seconds (`exp - iat`). Default 300. */
  ttlSeconds?: number;
}

/** A freshly signed token and the facts a token response needs. */
export interface IssuedToken {
  /** The compact JWS. Never log it. */
  token: string;
  /** Seconds until it expires, as sent in `expires_in`. */
  expiresIn: number;
  /** Its `jti` claim. */
  tokenId: string;
}

/** Signs, publishes and revokes the demo's tokens. One key pair per process, never persisted. */
export interface TokenIssuer {
  /** The `iss` claim that tokens carry and the verifier requires. */
  readonly issuer: string;
  /** The `aud` claim that tokens carry and the verifier requires. */
  readonly audience: string;
  /** The key id (`kid`), the JWK thumbprint of the public key. */
  readonly keyId: string;
  /** The public half of the signing key, for verification. */
  readonly publicKey: CryptoKey;
  /**
   * Signs a token for `subject` with the current lifetime. With `jkt` (the RFC 7638 thumbprint of
   * a DPoP key) the token carries `cnf: { jkt }` and is only accepted with a proof by that key.
   */
  issue(subject: string, options?: { jkt?: string | undefined }): Promise<IssuedToken>;
  /** The public key as a JSON Web Key Set (`kid`, `alg: ES256`, `use: sig`). */
  jwks(): JSONWebKeySet;
  /** Lifetime in seconds of tokens issued from now on. */
  ttlSeconds(): number;
  /** Changes the lifetime of tokens issued from now on; 0 issues tokens that are already expired. */
  setTtlSeconds(seconds: number): void;
  /** Revokes every token issued so far; later tokens are unaffected. */
  revokeAll(): void;
  /** Revokes the tokens with these `jti`s (those already expired need no revoking). */
  revoke(tokenIds: Iterable<string>): void;
  /** While on, every token is revoked as it is issued: the server keeps refusing (test mode). */
  revokeOnIssue(on: boolean): void;
  /** Whether the token with this `jti` was revoked. */
  isRevoked(tokenId: string): boolean;
}

/**
 * Creates an issuer with a new ES256 key pair.
 *
 * @example
 * const issuer = await createTokenIssuer({ ttlSeconds: 60 });
 * const { token } = await issuer.issue("alice");
 */
export async function createTokenIssuer(options: TokenIssuerOptions = {}): Promise<TokenIssuer> {
  const issuer = options.issuer ?? "grpc-web-auth-demo";
  const audience = options.audience ?? "grpc-web-auth-demo-api";
  let ttl = options.ttlSeconds ?? 300;
  checkTtl(ttl, "ttlSeconds");
  if (issuer === "") throw new TypeError("issuer must be a non-empty string");
  if (audience === "") throw new TypeError("audience must be a non-empty string");

  const { publicKey, privateKey } = await generateKeyPair(TOKEN_ALGORITHM);
  const publicJwk = await exportJWK(publicKey);
  const keyId = await calculateJwkThumbprint(publicJwk);
  const jwks: JSONWebKeySet = {
    keys: [{ ...publicJwk, kid: keyId, alg: TOKEN_ALGORITHM, use: "sig" }],
  };

  // jti → exp, so entries can be dropped once the token would fail on expiry anyway.
  let outstanding = new Map<string, number>();
  const revoked = new Map<string, number>();
  let lastPrune = 0;
  let revokeIssued = false;

  function prune(nowSeconds: number): void {
    if (nowSeconds - lastPrune < 10) return;
    lastPrune = nowSeconds;
    for (const map of [outstanding, revoked]) {
      for (const [jti, exp] of map) if (exp < nowSeconds) map.delete(jti);
    }
  }

  return {
    issuer,
    audience,
    keyId,
    publicKey,
    async issue(subject, issueOptions = {}) {
      const nowMs = Date.now();
      const now = Math.floor(nowMs / 1000);
      prune(now);
      const tokenId = randomUUID();
      const { jkt } = issueOptions;
      const token = await new SignJWT(jkt === undefined ? {} : { cnf: { jkt } })
        .setProtectedHeader({ alg: TOKEN_ALGORITHM, kid: keyId, typ: "JWT" })
        .setIssuer(issuer)
        .setAudience(audience)
        .setSubject(subject)
        .setIssuedAt(now)
        .setExpirationTime(now + ttl)
        .setJti(tokenId)
        .sign(privateKey);
      outstanding.set(tokenId, now + ttl);
      if (revokeIssued) revoked.set(tokenId, now + ttl);
      // exp is whole seconds from a rounded-down now: announce only the whole seconds really left.
      const expiresIn = Math.max(0, Math.floor(now + ttl - nowMs / 1000));
      return { token, expiresIn, tokenId };
    },
    jwks: () => structuredClone(jwks),
    ttlSeconds: () => ttl,
    setTtlSeconds(seconds) {
      checkTtl(seconds, "seconds", 0);
      ttl = seconds;
    },
    revokeAll() {
      for (const [jti, exp] of outstanding) revoked.set(jti, exp);
      outstanding = new Map();
    },
    revoke(tokenIds) {
      for (const jti of tokenIds) {
        const exp = outstanding.get(jti);
        if (exp === undefined) continue;
        revoked.set(jti, exp);
        outstanding.delete(jti);
      }
    },
    isRevoked: (tokenId) => revoked.has(tokenId),
    revokeOnIssue(on) {
      revokeIssued = on;
    },
  };
}

function checkTtl(seconds: number, name: string, min = 1): void {
  if (!Number.isInteger(seconds) || seconds < min || seconds > 86_400) {
    throw new TypeError(`${name} must be an integer from ${min} to 86400, got ${seconds}`);
  }
}
