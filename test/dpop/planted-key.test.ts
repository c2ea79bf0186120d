/**
 * A DPoP key pair the source did not make (from its `store`, or another tab) signs nothing unless
 * it passes the rule the app's own `keyPair` passes and its halves belong together.
 */
import { exportJWK } from "jose";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { TabLink } from "../../src/core/tab-sharing.js";
import type { BindableDpopProofs } from "../../src/dpop/dpop-proofs.js";
import { DpopKeyRejectedError, type DpopProofs, dpopProofs } from "../../src/index.js";

/** The key a source binds, as the source sees its `dpop` option. */
const bindable = (proofs: DpopProofs) => proofs as BindableDpopProofs;

const ec = (namedCurve: string, extractable: boolean, usages: KeyUsage[] = ["sign", "verify"]) =>
  crypto.subtle.generateKey(
    { name: "ECDSA", namedCurve },
    extractable,
    usages,
  ) as Promise<CryptoKeyPair>;

function jwkOf(proof: string): Record<string, string> {
  return JSON.parse(Buffer.from(proof.split(".")[0] as string, "base64url").toString()).jwk;
}

/** A store holding `pair`, recording what is saved over it. */
function plantedStore(pair: unknown) {
  const saved: CryptoKeyPair[] = [];
  return {
    saved,
    load: vi.fn(async () => (saved.at(-1) ?? pair) as CryptoKeyPair),
    save: vi.fn(async (next: CryptoKeyPair) => {
      saved.push(next);
    }),
  };
}

let reports: unknown[];
beforeEach(() => {
  reports = [];
  // What a browser's reportError does, the window's error event, is what Node lacks.
  vi.stubGlobal("reportError", (error: unknown) => reports.push(error));
});
afterEach(() => {
  vi.unstubAllGlobals();
});

describe("a DPoP key pair from the store", () => {
  it("refuses an extractable pair, reports it once, and signs with a new non-extractable key saved over it", async () => {
    const planted = await ec("P-256", true);
    const store = plantedStore(planted);
    const key = bindable(dpopProofs({ store })).bind(undefined);
    const first = await key.proof("POST", "https://api.example/x");
    await key.proof("POST", "https://api.example/y");

    expect(reports).toHaveLength(1);
    const report = reports[0] as DpopKeyRejectedError;
    expect(report).toBeInstanceOf(DpopKeyRejectedError);
    expect(report.from).toBe("store");
    expect(report.message).toMatch(/keyPair\.privateKey must be non-extractable/);
    const plantedJwk = await exportJWK(planted.privateKey);
    for (const secret of [plantedJwk.d, plantedJwk.x, plantedJwk.y]) {
      expect(report.message).not.toContain(secret);
    }
    expect(jwkOf(first).x).not.toBe(plantedJwk.x);
    expect(store.save).toHaveBeenCalledOnce();
    const made = store.saved[0] as CryptoKeyPair;
    expect(made.privateKey.extractable).toBe(false);
    expect(jwkOf(first)).toEqual(
      Object.fromEntries(
        Object.entries(await exportJWK(made.publicKey)).filter(([name]) => name !== "ext"),
      ),
    );
  });

  it("refuses every pair that breaks the rule or whose halves do not belong together, one report each", async () => {
    const good = await ec("P-256", false);
    const other = await ec("P-256", false);
    const cases: [string, unknown, RegExp][] = [
      ["an extractable private key", await ec("P-256", true), /non-extractable/],
      ["a P-384 pair", await ec("P-384", false), /ECDSA P-256/],
      [
        "the keys swapped",
        { privateKey: good.publicKey, publicKey: good.privateKey },
        /privateKey/,
      ],
      [
        "the private key of one pair with the public key of another",
        { privateKey: good.privateKey, publicKey: other.publicKey },
        /\.publicKey must be the public key of keyPair\.privateKey/,
      ],
      ["a JWK instead of CryptoKeys", { privateKey: {}, publicKey: {} }, /CryptoKeys/],
    ];
    for (const [name, pair, problem] of cases) {
      reports = [];
      const store = plantedStore(pair);
      const proof = await bindable(dpopProofs({ store }))
        .bind(undefined)
        .proof("POST", "https://a.example/");
      expect(reports, name).toHaveLength(1);
      expect((reports[0] as DpopKeyRejectedError).problem, name).toMatch(problem);
      expect(store.save, name).toHaveBeenCalledOnce();
      const made = store.saved[0] as CryptoKeyPair;
      expect(jwkOf(proof).x, name).toBe((await exportJWK(made.publicKey)).x);
    }
  });

  it("uses a good pair from the store without a report and without making another", async () => {
    const pair = await ec("P-256", false);
    const store = plantedStore(pair);
    const generate = vi.spyOn(crypto.subtle, "generateKey");
    const proof = await bindable(dpopProofs({ store }))
      .bind(undefined)
      .proof("POST", "https://a.example/");
    expect(generate).not.toHaveBeenCalled();
    generate.mockRestore();
    expect(reports).toHaveLength(0);
    expect(store.save).not.toHaveBeenCalled();
    expect(jwkOf(proof).x).toBe((await exportJWK(pair.publicKey)).x);
  });
});

describe("a DPoP key pair from another tab", () => {
  /** The channel as src/tabs runs it: an answer is taken only if `check` admits it. */
  function tabsAnswering(answer: unknown): TabLink {
    return {
      shared: async (_name, make, check) => (check(answer) ? answer : await make()),
    } as Partial<TabLink> as TabLink;
  }

  it("refuses an extractable pair another tab hands over, reports it, and signs with its own key", async () => {
    const planted = await ec("P-256", true);
    const key = bindable(dpopProofs()).bind(tabsAnswering(planted));
    const proof = await key.proof("POST", "https://api.example/x");
    expect(reports).toHaveLength(1);
    expect((reports[0] as DpopKeyRejectedError).from).toBe("tab");
    expect(jwkOf(proof).x).not.toBe((await exportJWK(planted.publicKey)).x);
  });

  it("refuses a pair whose halves do not belong together, reports it, and signs with its own key", async () => {
    const good = await ec("P-256", false);
    const other = await ec("P-256", false);
    const key = bindable(dpopProofs()).bind(
      tabsAnswering({ privateKey: good.privateKey, publicKey: other.publicKey }),
    );
    const proof = await key.proof("POST", "https://api.example/x");
    expect(reports).toHaveLength(1);
    expect((reports[0] as DpopKeyRejectedError).problem).toMatch(
      /public key of keyPair\.privateKey/,
    );
    expect(jwkOf(proof).x).not.toBe((await exportJWK(other.publicKey)).x);
  });

  it("takes a good pair another tab hands over, without a report", async () => {
    const pair = await ec("P-256", false);
    const proof = await bindable(dpopProofs())
      .bind(tabsAnswering(pair))
      .proof("POST", "https://a.example/");
    expect(reports).toHaveLength(0);
    expect(jwkOf(proof).x).toBe((await exportJWK(pair.publicKey)).x);
  });
});
