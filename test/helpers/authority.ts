import { makeJwt } from "./jwt.js";

/**
 * The server side of the test world: mints tokens, knows which are valid,
 * revokes them, and counts what the service answered.
 */
export interface Authority {
  /** Mints a token valid for `ttlSeconds` by the issuer's clock. */
  mint(subject: string): string;
  /** Whether the service accepts this token now. */
  accepts(token: string): boolean;
  /** Revokes every token minted so far. */
  revokeAll(): void;
  /** Token lifetime for future tokens, in seconds. */
  ttlSeconds: number;
  /** How far the issuer's clock is ahead of this machine's, in ms (negative: behind). */
  issuerSkewMs: number;
  /** Unauthenticated answers the service gave. */
  unauthenticated: number;
  /** Every token the service was sent, in order (undefined: no header). */
  readonly seen: (string | undefined)[];
  readonly minted: string[];
}

export function createAuthority(options: { ttlSeconds?: number } = {}): Authority {
  const valid = new Set<string>();
  let counter = 0;
  const authority: Authority = {
    ttlSeconds: options.ttlSeconds ?? 300,
    issuerSkewMs: 0,
    unauthenticated: 0,
    seen: [],
    minted: [],
    mint(subject) {
      const iat = (Date.now() + authority.issuerSkewMs) / 1000;
      const token = makeJwt({
        sub: subject,
        iat: Math.floor(iat),
        exp: Math.floor(iat) + authority.ttlSeconds,
        jti: String(++counter),
      });
      valid.add(token);
      authority.minted.push(token);
      return token;
    },
    accepts(token) {
      if (!valid.has(token)) return false;
      const payload = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString());
      return payload.exp * 1000 > Date.now() + authority.issuerSkewMs;
    },
    revokeAll() {
      valid.clear();
    },
  };
  return authority;
}
