/** `dpopProofs({ keyPair })`: a key handed over from a sign-in, checked up front, and its thumbprint. */
import { calculateJwkThumbprint, exportJWK } from "jose";
import { describe, expect, it, vi } from "vitest";
import { createTokenSource, dpopProofs, type TokenGrant } from "../../src/index.js";

const ec = (namedCurve: string, extractable: boolean) =>
  crypto.subtle.generateKey({ name: "ECDSA", namedCurve }, extractable, [
    "sign",
    "verify",
  ]) as Promise<CryptoKeyPair>;

function headerOf(proof: string): { jwk: Record<string, string> } {
  return JSON.parse(Buffer.from(proof.split(".")[0] as string, "base64url").toString());
}

describe("dpopProofs({ keyPair })", () => {
  it("gives the RFC 7638 thumbprint jose computes for the public key, for several keys", async () => {
    for (let i = 0; i < 5; i++) {
      const keyPair = await ec("P-256", false);
      const expected = await calculateJwkThumbprint(await exportJWK(keyPair.publicKey), "sha256");
      expect(await dpopProofs({ keyPair }).thumbprint()).toBe(expected);
    }
  });

  it("signs the grant's proofs with the key it was given, whose thumbprint is the one it reports", async () => {
    const keyPair = await ec("P-256", false);
    const proofs = dpopProofs({ keyPair });
    let proof = "";
    const grant: TokenGrant = async ({ dpop }) => {
      proof = (await dpop?.proof("POST", "https://idp.example/token")) ?? "";
      return "opaque-token";
    };
    await createTokenSource({ fetchToken: grant, dpop: proofs }).getToken();

    const { jwk } = headerOf(proof);
    expect(await calculateJwkThumbprint(jwk, "sha256")).toBe(await proofs.thumbprint());
    // Verifies with the given public key: it was signed by the given private key.
    const [header, claims, signature] = proof.split(".") as [string, string, string];
    const valid = await crypto.subtle.verify(
      { name: "ECDSA", hash: "SHA-256" },
      keyPair.publicKey,
      Buffer.from(signature, "base64url"),
      new TextEncoder().encode(`${header}.${claims}`),
    );
    expect(valid).toBe(true);
  });

  it("saves the given key pair in the store and never loads another over it", async () => {
    const keyPair = await ec("P-256", false);
    const store = { load: vi.fn(async () => ec("P-256", false)), save: vi.fn(async () => {}) };
    let proof = "";
    const grant: TokenGrant = async ({ dpop }) => {
      proof = (await dpop?.proof("POST", "https://idp.example/token")) ?? "";
      return "opaque-token";
    };
    const proofs = dpopProofs({ keyPair, store });
    await createTokenSource({ fetchToken: grant, dpop: proofs }).getToken();

    expect(store.save).toHaveBeenCalledExactlyOnceWith(keyPair);
    expect(store.load).not.toHaveBeenCalled();
    expect(await calculateJwkThumbprint(headerOf(proof).jwk, "sha256")).toBe(
      await proofs.thumbprint(),
    );
  });

  it("rejects thumbprint() with a TypeError when no keyPair was given", async () => {
    await expect(dpopProofs().thumbprint()).rejects.toThrow(
      new TypeError("dpopProofs: thumbprint() needs the keyPair option, the key to bind to"),
    );
  });

  it("throws a TypeError naming keyPair for a key pair it cannot use, at construction", async () => {
    const good = await ec("P-256", false);
    const extractable = await ec("P-256", true);
    const p384 = await ec("P-384", false);
    const rsa = (await crypto.subtle.generateKey(
      {
        name: "RSASSA-PKCS1-v1_5",
        modulusLength: 2048,
        publicExponent: new Uint8Array([1, 0, 1]),
        hash: "SHA-256",
      },
      false,
      ["sign", "verify"],
    )) as CryptoKeyPair;
    const ecdh = (await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, false, [
      "deriveBits",
    ])) as CryptoKeyPair;
    const cases: [string, unknown, RegExp][] = [
      ["a string", "key", /keyPair must be a CryptoKeyPair/],
      ["a JWK instead of CryptoKeys", { privateKey: {}, publicKey: {} }, /CryptoKeys/],
      ["an extractable private key", extractable, /privateKey must be non-extractable/],
      ["a P-384 key", p384, /must be an ECDSA P-256 key/],
      ["an RSA key", rsa, /must be an ECDSA P-256 key \(ES256\), not RSASSA-PKCS1-v1_5/],
      ["an ECDH key", ecdh, /must be an ECDSA P-256 key/],
      [
        "the keys swapped",
        { privateKey: good.publicKey, publicKey: good.privateKey },
        /private key as privateKey/,
      ],
    ];
    for (const [name, keyPair, message] of cases) {
      const make = () => dpopProofs({ keyPair: keyPair as CryptoKeyPair });
      expect(make, name).toThrow(TypeError);
      expect(make, name).toThrow(message);
      expect(make, name).toThrow(/^dpopProofs: keyPair/);
    }
    expect(() => dpopProofs({ keyPair: good })).not.toThrow();
  });
});
