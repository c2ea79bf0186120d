import { createHash, randomBytes, randomUUID } from "node:crypto";

/** Longest refresh-token lifetime accepted: 30 days. */
export const MAX_REFRESH_TTL_SECONDS = 30 * 86_400;

/** Options for {@link createRefreshTokenStore}. */
export interface RefreshTokenStoreOptions {
  /** Lifetime of each refresh token in seconds, from its issue, 1–2592000. Default 86400 (24 h). */
  ttlSeconds?: number;
  /**
   * Called with the ids (`jti`) of the access tokens issued from a family when that family is
   * revoked, so the RPC verifier refuses them too. Default: nothing is called.
   */
  onFamilyRevoked?: (accessTokenIds: readonly string[]) => void;
}

/** A new refresh token and the family it belongs to. */
export interface RefreshGrant {
  /** The opaque token (32 random bytes, base64url). Never log it. */
  refreshToken: string;
  /** The family: every refresh token descended from one sign-in. */
  familyId: string;
  /** The subject of the sign-in that started the family. */
  subject: string;
  /** JWK thumbprint of the DPoP key the family is bound to; undefined for an unbound family. */
  jkt: string | undefined;
}

/** Why a refresh token was refused; every one is answered `invalid_grant`. */
export type RefreshProblem = "unknown" | "expired" | "revoked" | "reused" | "wrong-key";

/** Issues, rotates and revokes refresh tokens (OAuth 2.0 §6, rotation with reuse detection). */
export interface RefreshTokenStore {
  /** Starts a family at a password sign-in, bound to the DPoP key `jkt` when given. */
  start(subject: string, jkt?: string): RefreshGrant;
  /**
   * Spends `token` and issues its successor in the same family. `proofJkt` is the thumbprint of
   * the request's DPoP key, if it carried a valid proof: a bound family needs the same key (else
   * `wrong-key`, and the token is not spent); an unbound family becomes bound to it. Presenting a
   * spent token again (`reused`) revokes its whole family, the newest token included.
   */
  rotate(token: string, proofJkt: string | undefined): RefreshGrant | { problem: RefreshProblem };
  /**
   * The binding of `token`'s family: `{ jkt }` (undefined `jkt` for an unbound family) for any
   * token still remembered, spent or revoked ones included; `undefined` for one never issued or
   * forgotten. What a request must prove before the token is looked at any further.
   */
  bindingOf(token: string): { jkt: string | undefined } | undefined;
  /** Notes an access token issued from `familyId`, so revoking the family revokes it too. */
  recordAccessToken(familyId: string, tokenId: string): void;
  /** Revokes the family of `token`; false when the token is unknown or was already revoked. */
  revokeFamilyOf(token: string): boolean;
  /** Revokes every family issued so far (their access tokens stay valid). */
  revokeAll(): void;
  /** Lifetime in seconds of refresh tokens issued from now on. */
  ttlSeconds(): number;
  /** Changes the lifetime of refresh tokens issued from now on; 0 issues expired ones (tests). */
  setTtlSeconds(seconds: number): void;
}

interface Family {
  subject: string;
  jkt: string | undefined;
  revoked: boolean;
  accessTokenIds: Set<string>;
  /** Expiry (Unix seconds) of the family's newest token: the family is forgotten after it. */
  expiresAt: number;
}

interface TokenRecord {
  familyId: string;
  expiresAt: number;
  spent: boolean;
}

/**
 * Creates an in-memory store. Only SHA-256 digests of the tokens are kept, so not even a heap
 * dump holds a usable refresh token. Spent tokens are remembered until they would have expired,
 * which is what lets a reuse be told apart from an unknown token.
 *
 * @example
 * const store = createRefreshTokenStore({ ttlSeconds: 3600 });
 * const { refreshToken } = store.start("alice");
 * const next = store.rotate(refreshToken, undefined); // a new token; refreshToken is spent
 */
export function createRefreshTokenStore(options: RefreshTokenStoreOptions = {}): RefreshTokenStore {
  let ttl = options.ttlSeconds ?? 86_400;
  checkTtl(ttl, "ttlSeconds", 1);
  const onFamilyRevoked = options.onFamilyRevoked ?? (() => {});

  const families = new Map<string, Family>();
  const tokens = new Map<string, TokenRecord>();
  let lastPrune = 0;

  const nowSeconds = () => Math.floor(Date.now() / 1000);

  function prune(now: number): void {
    if (now - lastPrune < 10) return;
    lastPrune = now;
    for (const [digest, record] of tokens) if (record.expiresAt < now) tokens.delete(digest);
    for (const [id, family] of families) if (family.expiresAt < now) families.delete(id);
  }

  function issue(familyId: string, family: Family): RefreshGrant {
    const now = nowSeconds();
    prune(now);
    const refreshToken = randomBytes(32).toString("base64url");
    const expiresAt = now + ttl;
    tokens.set(digestOf(refreshToken), { familyId, expiresAt, spent: false });
    family.expiresAt = Math.max(family.expiresAt, expiresAt);
    return { refreshToken, familyId, subject: family.subject, jkt: family.jkt };
  }

  function revoke(family: Family): void {
    if (family.revoked) return;
    family.revoked = true;
    onFamilyRevoked([...family.accessTokenIds]);
  }

  function lookup(token: string): { record: TokenRecord; family: Family } | undefined {
    const record = tokens.get(digestOf(token));
    const family = record && families.get(record.familyId);
    return record && family ? { record, family } : undefined;
  }

  return {
    start(subject, jkt) {
      const familyId = randomUUID();
      const family: Family = {
        subject,
        jkt,
        revoked: false,
        accessTokenIds: new Set(),
        expiresAt: nowSeconds() + ttl,
      };
      families.set(familyId, family);
      return issue(familyId, family);
    },
    rotate(token, proofJkt) {
      const found = lookup(token);
      if (!found) return { problem: "unknown" };
      const { record, family } = found;
      if (family.revoked) return { problem: "revoked" };
      if (record.expiresAt <= nowSeconds()) return { problem: "expired" };
      // Possession of the key comes first: without it a stolen token cannot even revoke a family.
      if (family.jkt !== undefined && family.jkt !== proofJkt) return { problem: "wrong-key" };
      if (record.spent) {
        revoke(family);
        return { problem: "reused" };
      }
      record.spent = true;
      if (family.jkt === undefined) family.jkt = proofJkt;
      return issue(record.familyId, family);
    },
    bindingOf(token) {
      const found = lookup(token);
      return found && { jkt: found.family.jkt };
    },
    recordAccessToken(familyId, tokenId) {
      families.get(familyId)?.accessTokenIds.add(tokenId);
    },
    revokeFamilyOf(token) {
      const found = lookup(token);
      if (!found || found.family.revoked) return false;
      revoke(found.family);
      return true;
    },
    revokeAll() {
      for (const family of families.values()) family.revoked = true;
    },
    ttlSeconds: () => ttl,
    setTtlSeconds(seconds) {
      checkTtl(seconds, "seconds", 0);
      ttl = seconds;
    },
  };
}

function digestOf(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("base64url");
}

function checkTtl(seconds: number, name: string, min: number): void {
  if (!Number.isInteger(seconds) || seconds < min || seconds > MAX_REFRESH_TTL_SECONDS) {
    throw new TypeError(
      `${name} must be an integer from ${min} to ${MAX_REFRESH_TTL_SECONDS}, got ${seconds}`,
    );
  }
}
