import { createHash, timingSafeEqual } from "node:crypto";

/** Checks a username and password against the configured demo users. */
export type CredentialChecker = (username: string, password: string) => boolean;

/**
 * Creates a checker over `users` (username → password). Passwords are compared as SHA-256
 * digests with `timingSafeEqual`, so the time taken says nothing about the password; an unknown
 * user is compared against a dummy digest for the same reason.
 */
export function createCredentialChecker(users: ReadonlyMap<string, string>): CredentialChecker {
  const digests = new Map<string, Buffer>();
  for (const [username, password] of users) digests.set(username, sha256(password));
  const dummy = sha256("");
  return (username, password) => {
    const expected = digests.get(username);
    const matches = timingSafeEqual(sha256(password), expected ?? dummy);
    return matches && expected !== undefined;
  };
}

function sha256(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}

/** The demo users when none are configured: `alice:wonderland,bob:builder`. */
export const DEFAULT_USERS: Readonly<Record<string, string>> = {
  alice: "wonderland",
  bob: "builder",
};
