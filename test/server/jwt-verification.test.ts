import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { exportJWK, exportSPKI, generateKeyPair, type JWTPayload, SignJWT } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { createDemoService } from "../../demo/server/demo-service.js";
import { createStatsRecorder } from "../../demo/server/stats.js";
import type { TokenIssuer } from "../../demo/server/token-issuer.js";
import { createVerifyInterceptor } from "../../demo/server/verify-interceptor.js";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";

// The demo's verifier against forged tokens. The test owns the accepted key pair, so it can
// sign any claims with it; the verifier sees what a real issuer would give it.

const ISS = "grpc-web-auth-demo";
const AUD = "grpc-web-auth-demo-api";
type Keys = Awaited<ReturnType<typeof generateKeyPair>>;
let accepted: Keys;
let other: Keys;

beforeAll(async () => {
  accepted = await generateKeyPair("ES256", { extractable: true });
  other = await generateKeyPair("ES256");
});

function server() {
  const stats = createStatsRecorder();
  const issuer = {
    issuer: ISS,
    audience: AUD,
    publicKey: accepted.publicKey,
    isRevoked: () => false,
  } as unknown as TokenIssuer;
  const transport = createRouterTransport(
    ({ service }) => service(DemoService, createDemoService({ testMode: false, stats })),
    { router: { interceptors: [createVerifyInterceptor({ issuer, stats })] } },
  );
  const call = async (token: string) => {
    const client = createClient(DemoService, transport);
    return client.whoAmI({}, { headers: { authorization: `Bearer ${token}` } }).then(
      (res) => res.subject,
      (e: unknown) => ConnectError.from(e),
    );
  };
  return { call, stats };
}

const now = () => Math.floor(Date.now() / 1000);
const goodClaims = (): JWTPayload => ({
  iss: ISS,
  aud: AUD,
  sub: "alice",
  iat: now(),
  exp: now() + 300,
  jti: "jti-1",
});

function sign(
  claims: JWTPayload,
  key: CryptoKey | Uint8Array = accepted.privateKey,
  alg = "ES256",
) {
  return new SignJWT(claims).setProtectedHeader({ alg, typ: "JWT" }).sign(key);
}

/** The good claims less one. */
function without(claim: keyof JWTPayload): JWTPayload {
  const { [claim]: _dropped, ...rest } = goodClaims();
  return rest;
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

describe("the demo backend's JWT verification", () => {
  it("accepts a token signed with its key and the right claims (the control case)", async () => {
    const { call } = server();
    expect(await call(await sign(goodClaims()))).toBe("alice");
  });

  const forged: [string, () => Promise<string>][] = [
    ["alg none", async () => `${b64({ alg: "none", typ: "JWT" })}.${b64(goodClaims())}.`],
    [
      "HS256 signed with the public key as the secret (algorithm confusion)",
      async () => {
        const pem = await exportSPKI(accepted.publicKey);
        return sign(goodClaims(), new TextEncoder().encode(pem), "HS256");
      },
    ],
    [
      "HS256 signed with the public JWK as the secret",
      async () => {
        const jwk = JSON.stringify(await exportJWK(accepted.publicKey));
        return sign(goodClaims(), new TextEncoder().encode(jwk), "HS256");
      },
    ],
    ["a wrong iss", () => sign({ ...goodClaims(), iss: "https://evil.example" })],
    ["a wrong aud", () => sign({ ...goodClaims(), aud: "another-api" })],
    ["an expired token", () => sign({ ...goodClaims(), iat: now() - 600, exp: now() - 300 })],
    ["a token not yet valid (nbf ahead)", () => sign({ ...goodClaims(), nbf: now() + 3600 })],
    ["no exp", () => sign(without("exp"))],
    ["no sub", () => sign(without("sub"))],
    ["no jti", () => sign(without("jti"))],
    [
      "a tampered payload under the original signature",
      async () => {
        const [header, , signature] = (await sign(goodClaims())).split(".");
        return `${header}.${b64({ ...goodClaims(), sub: "mallory" })}.${signature}`;
      },
    ],
    [
      "a tampered signature",
      async () => {
        const token = await sign(goodClaims());
        const flipped = token.at(-2) === "A" ? "B" : "A";
        return `${token.slice(0, -2)}${flipped}${token.slice(-1)}`;
      },
    ],
    ["a token from another key", () => sign(goodClaims(), other.privateKey)],
    ["garbage", async () => "not.a.jwt"],
  ];

  for (const [name, forge] of forged) {
    it(`answers Unauthenticated to ${name}`, async () => {
      const { call, stats } = server();
      const result = await call(await forge());
      expect(result).toBeInstanceOf(ConnectError);
      expect((result as ConnectError).code).toBe(Code.Unauthenticated);
      // Nothing of the token is echoed back.
      expect((result as ConnectError).rawMessage).not.toMatch(/eyJ/);
      expect(stats.snapshot().unauthenticated).toBe(1);
    });
  }
});
