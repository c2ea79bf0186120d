import { createContextKey } from "@connectrpc/connect";

/** The verified claims of the token a call was made with. */
export interface AuthInfo {
  /** The `sub` claim. */
  subject: string;
  /** The `exp` claim, seconds since the Unix epoch. */
  expiresAtUnix: number;
  /** The `jti` claim. */
  tokenId: string;
}

/**
 * Context value set by the verify interceptor; handlers read it with `ctx.values.get(authKey)`.
 * `undefined` means the call never passed verification, which handlers treat as a bug.
 */
export const authKey = createContextKey<AuthInfo | undefined>(undefined, {
  description: "verified token claims",
});
