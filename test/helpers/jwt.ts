/** Claims a test token may carry; the library decodes but never verifies them. */
export interface TestClaims {
  sub?: string;
  iat?: number;
  exp?: number;
  jti?: string;
}

/** Builds a compact JWS-shaped token with the given claims and a dummy signature. */
export function makeJwt(claims: TestClaims): string {
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
  return `${encode({ alg: "ES256", typ: "JWT" })}.${encode(claims)}.c2ln`;
}
