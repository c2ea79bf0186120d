/**
 * `DpopKey.rotate()`, what a sign-out calls: the next user of the browser gets a new key, so the
 * key's thumbprint does not link their session to the last one's.
 */
import { exportJWK } from "jose";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { TabLink } from "../../src/core/tab-sharing.js";
import type { BindableDpopProofs } from "../../src/dpop/dpop-proofs.js";
import { type DpopKeyStore, type DpopProofs, dpopProofs } from "../../src/index.js";

/** The key a source binds, as the source sees its `dpop` option. */
const bindable = (proofs: DpopProofs) => proofs as BindableDpopProofs;

const ec = () =>
  crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, [
    "sign",
    "verify",
  ]) as Promise<CryptoKeyPair>;

const xOf = (proof: string): string =>
  JSON.parse(Buffer.from(proof.split(".")[0] as string, "base64url").toString()).jwk.x;
const xOfPair = async (pair: CryptoKeyPair) => (await exportJWK(pair.publicKey)).x as string;

/** A store in memory, as indexedDbKeyStore keeps one pair; `delete` only when asked for. */
function memoryStore(initial?: CryptoKeyPair, withDelete = true) {
  let held = initial;
  const saved: CryptoKeyPair[] = [];
  const store = {
    saved,
    load: vi.fn(async () => held),
    save: vi.fn(async (pair: CryptoKeyPair) => {
      saved.push(pair);
      held = pair;
    }),
    ...(withDelete && {
      delete: vi.fn(async () => {
        held = undefined;
      }),
    }),
  };
  return store as typeof store & Required<Pick<DpopKeyStore, "load" | "save">>;
}

let reports: unknown[];
beforeEach(() => {
  reports = [];
  vi.stubGlobal("reportError", (error: unknown) => reports.push(error));
});
afterEach(() => vi.unstubAllGlobals());

describe("DpopKey.rotate", () => {
  it("signs the next proof with a new key, saved to the store after the store forgot the old one", async () => {
    const store = memoryStore();
    const key = bindable(dpopProofs({ store })).bind(undefined);
    const before = xOf(await key.proof("POST", "https://a.example/"));
    const old = key.rotate();
    const after = xOf(await key.proof("POST", "https://a.example/"));

    expect(after).not.toBe(before);
    expect(store.delete).toHaveBeenCalledOnce();
    expect(store.save).toHaveBeenCalledTimes(2);
    expect(await xOfPair(store.saved[1] as CryptoKeyPair)).toBe(after);
    expect(vi.mocked(store.delete as () => Promise<void>).mock.invocationCallOrder[0]).toBeLessThan(
      store.save.mock.invocationCallOrder[1] as number,
    );
    // What ends the old session (revoking its refresh token) still proves the old key.
    expect(xOf(await old.proof("POST", "https://a.example/revoke"))).toBe(before);
    expect(reports).toHaveLength(0);
  });

  it("gives up the store's key even before any proof was signed, and proves the old session with it", async () => {
    const stored = await ec();
    const store = memoryStore(stored);
    const key = bindable(dpopProofs({ store })).bind(undefined);
    const old = key.rotate();
    expect(xOf(await old.proof("POST", "https://a.example/revoke"))).toBe(await xOfPair(stored));
    expect(xOf(await key.proof("POST", "https://a.example/"))).not.toBe(await xOfPair(stored));
    expect(store.delete).toHaveBeenCalledOnce();
  });

  it("never takes back the key it gave up, from a store without delete or from another tab, and reports neither", async () => {
    const store = memoryStore(undefined, false);
    const key = bindable(dpopProofs({ store })).bind(undefined);
    const first = xOf(await key.proof("POST", "https://a.example/"));
    // Without delete, the store still holds the old pair, and hands it back on the next load.
    key.rotate();
    const second = xOf(await key.proof("POST", "https://a.example/"));
    expect(second).not.toBe(first);

    const shared = await ec();
    const tabs = {
      shared: async (
        _name: string,
        make: () => Promise<unknown>,
        check: (v: unknown) => boolean,
      ) => (check(shared) ? shared : await make()),
    } as Partial<TabLink> as TabLink;
    const tabbed = bindable(dpopProofs()).bind(tabs);
    expect(xOf(await tabbed.proof("POST", "https://a.example/"))).toBe(await xOfPair(shared));
    tabbed.rotate();
    // The tab still answers with the pair given up: this source makes its own.
    expect(xOf(await tabbed.proof("POST", "https://a.example/"))).not.toBe(await xOfPair(shared));
    expect(reports).toHaveLength(0);
  });

  it("gives up a keyPair the app passed as well: the next session signs with a new key", async () => {
    const keyPair = await ec();
    const key = bindable(dpopProofs({ keyPair })).bind(undefined);
    expect(xOf(await key.proof("POST", "https://a.example/"))).toBe(await xOfPair(keyPair));
    const old = key.rotate();
    expect(xOf(await key.proof("POST", "https://a.example/"))).not.toBe(await xOfPair(keyPair));
    expect(xOf(await old.proof("POST", "https://a.example/"))).toBe(await xOfPair(keyPair));
  });

  it("makes one new key for many proofs after a rotation", async () => {
    const key = bindable(dpopProofs()).bind(undefined);
    await key.proof("POST", "https://a.example/");
    key.rotate();
    const generate = vi.spyOn(crypto.subtle, "generateKey");
    const proofs = await Promise.all(
      Array.from({ length: 10 }, () => key.proof("POST", "https://a.example/")),
    );
    expect(generate).toHaveBeenCalledOnce();
    generate.mockRestore();
    expect(new Set(proofs.map(xOf)).size).toBe(1);
  });
});
