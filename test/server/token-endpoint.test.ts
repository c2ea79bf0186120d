import {
  createLocalJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  type JSONWebKeySet,
  jwtVerify,
} from "jose";
import { describe, expect, it } from "vitest";
import { postJson, startTestServer } from "./fixtures.js";

const alice = { username: "alice", password: "wonderland" };

describe("POST /auth/token", () => {
  it("issues an ES256 JWT that verifies against the served JWKS with iss, aud, sub, iat, exp and jti", async () => {
    const server = await startTestServer();
    const res = await postJson(server.tokenUrl, alice);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/json");
    expect(res.headers.get("cache-control")).toBe("no-store");
    const body = (await res.json()) as { token: string; expires_in: number };
    // Whole seconds left of a whole-second exp: the ttl, or one less mid-second.
    expect([299, 300]).toContain(body.expires_in);

    const jwks = (await (await fetch(server.jwksUrl)).json()) as JSONWebKeySet;
    const { payload, protectedHeader } = await jwtVerify(body.token, createLocalJWKSet(jwks), {
      algorithms: ["ES256"],
      issuer: "grpc-web-auth-demo",
      audience: "grpc-web-auth-demo-api",
    });
    expect(protectedHeader).toMatchObject({ alg: "ES256", kid: jwks.keys[0]?.kid, typ: "JWT" });
    expect(payload.sub).toBe("alice");
    const { exp = 0, iat = 0 } = payload;
    expect(exp - iat).toBe(300);
    expect(Math.abs(iat - Date.now() / 1000)).toBeLessThan(5);
    expect(payload.jti).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("gives every token its own jti", async () => {
    const server = await startTestServer();
    const jtis = new Set<unknown>();
    for (let i = 0; i < 3; i++) {
      const { token } = (await (await postJson(server.tokenUrl, alice)).json()) as {
        token: string;
      };
      jtis.add(decodeJwt(token).jti);
    }
    expect(jtis.size).toBe(3);
  });

  it("uses the configured users and token lifetime", async () => {
    const server = await startTestServer({ users: { carol: "s3cret" }, tokenTtlSeconds: 60 });
    expect((await postJson(server.tokenUrl, alice)).status).toBe(401);
    const res = await postJson(server.tokenUrl, { username: "carol", password: "s3cret" });
    const body = (await res.json()) as { token: string; expires_in: number };
    expect([59, 60]).toContain(body.expires_in);
    expect(decodeProtectedHeader(body.token).alg).toBe("ES256");
  });

  it.each([
    ["a wrong password", { username: "alice", password: "builder" }],
    ["an unknown user", { username: "mallory", password: "wonderland" }],
    ["another user's password", { username: "bob", password: "wonderland" }],
    ["empty strings", { username: "", password: "" }],
  ])("answers 401 in short plain text for %s", async (_name, credentials) => {
    const server = await startTestServer();
    const res = await postJson(server.tokenUrl, credentials);
    expect(res.status).toBe(401);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
    const text = await res.text();
    expect(text.length).toBeLessThan(100);
    expect(text).not.toContain(credentials.password || "\u0000");
  });

  it.each([
    ["a body that is not JSON", "username=alice&password=wonderland"],
    ["an empty body", ""],
    ["a JSON array", "[]"],
    ["JSON null", "null"],
    ["a missing password", { username: "alice" }],
    ["a missing username", { password: "wonderland" }],
    ["a numeric password", { username: "alice", password: 42 }],
    ["a username that is an object", { username: { name: "alice" }, password: "wonderland" }],
  ])("answers 400 for %s", async (_name, body) => {
    const server = await startTestServer();
    const res = await postJson(server.tokenUrl, body);
    expect(res.status).toBe(400);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
  });

  it("answers 413 for a body over 16 KiB", async () => {
    const server = await startTestServer();
    const res = await postJson(server.tokenUrl, { ...alice, padding: "x".repeat(17 * 1024) });
    expect(res.status).toBe(413);
    // Just under the limit is still fine.
    const ok = await postJson(server.tokenUrl, { ...alice, padding: "x".repeat(15 * 1024) });
    expect(ok.status).toBe(200);
  });

  it.each(["GET", "PUT", "DELETE"])("answers 405 with `allow: POST` for %s", async (method) => {
    const server = await startTestServer();
    const res = await fetch(server.tokenUrl, { method });
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("POST");
  });
});

describe("GET /.well-known/jwks.json", () => {
  it("serves only the public key, with kid, alg ES256 and use sig", async () => {
    const server = await startTestServer();
    const res = await fetch(server.jwksUrl);
    expect(res.status).toBe(200);
    const jwks = (await res.json()) as JSONWebKeySet;
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).toMatchObject({ kty: "EC", crv: "P-256", alg: "ES256", use: "sig" });
    expect(jwks.keys[0]?.kid).toBe(server.issuer.keyId);
    expect(jwks.keys[0]).not.toHaveProperty("d");
  });
});
