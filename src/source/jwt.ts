/** The claims this library reads from a JWT payload; never verified here. */
export interface JwtTimes {
  /** `exp`, seconds since the epoch. */
  exp: number;
  /** `iat`, seconds since the epoch, when present. */
  iat: number | undefined;
}

/**
 * Reads `exp` and `iat` from a compact JWS without verifying it (verifying is
 * the server's job). Returns `undefined` for anything that is not a JWT with a
 * numeric `exp`: such a token is treated as opaque.
 */
export function readJwtTimes(token: string): JwtTimes | undefined {
  const parts = token.split(".");
  if (parts.length !== 3) return undefined;
  const payload = parts[1];
  if (payload === undefined || payload === "") return undefined;
  let claims: unknown;
  try {
    claims = JSON.parse(decodeBase64Url(payload));
  } catch {
    return undefined;
  }
  if (typeof claims !== "object" || claims === null) return undefined;
  const { exp, iat } = claims as { exp?: unknown; iat?: unknown };
  if (!isFiniteNumber(exp)) return undefined;
  return { exp, iat: isFiniteNumber(iat) ? iat : undefined };
}

function isFiniteNumber(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value);
}

function decodeBase64Url(input: string): string {
  if (!/^[A-Za-z0-9_-]+$/.test(input)) throw new TypeError("not base64url");
  const base64 = input.replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(base64.padEnd(base64.length + ((4 - (base64.length % 4)) % 4), "="));
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
}
