import { expect, ok, test } from "./fixtures.js";

// A DPoP key pair planted by other code of the origin: a page under another path writes an
// extractable pair (whose private key it can export) into the app's IndexedDB key store. The app
// must refuse it, say so, and prove a key of its own that no script can read out.

test("an extractable key pair planted in the IndexedDB store by a page under another path is refused, reported, and replaced by a non-extractable one", async ({
  harness,
  backend,
  clientKind,
  context,
  page,
}) => {
  test.skip(clientKind !== "grpc-web", "the key store does not depend on the client kind");
  const database = "planted";

  // The other page of the origin: plants its pair where indexedDbKeyStore(database) looks.
  const other = await context.newPage();
  await other.goto("/index.html");
  const planted = await other.evaluate(async (name) => {
    const pair = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
      "sign",
      "verify",
    ])) as CryptoKeyPair;
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const request = indexedDB.open(name, 1);
      request.onupgradeneeded = () => request.result.createObjectStore("keys");
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
    await new Promise<void>((resolve, reject) => {
      const tx = db.transaction("keys", "readwrite");
      tx.objectStore("keys").put(pair, "dpop");
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(tx.error);
    });
    db.close();
    // The attacker can read its private key out: that is what must never sign the app's proofs.
    const jwk = await crypto.subtle.exportKey("jwk", pair.privateKey);
    const canonical = JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y });
    const hash = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(canonical));
    return btoa(String.fromCharCode(...new Uint8Array(hash)))
      .replace(/\+/g, "-")
      .replace(/\//g, "_")
      .replace(/=+$/, "");
  }, database);
  await other.close();

  // The app sees the report as a window error event (reportError), and handles it.
  await page.evaluate(() => {
    const seen: { name: string; from: string; message: string }[] = [];
    (window as unknown as { rejectedKeys: typeof seen }).rejectedKeys = seen;
    window.addEventListener("error", (event) => {
      const error = event.error as { name?: string; from?: string; message?: string } | undefined;
      if (error?.name !== "DpopKeyRejectedError") return;
      seen.push({ name: error.name, from: String(error.from), message: String(error.message) });
      event.preventDefault();
    });
  });
  expect(await harness.storedKey(database)).toMatchObject({
    found: true,
    privateKeyExtractable: true,
  });

  await harness.setup({ dpopKeyStore: database });
  ok(await harness.whoAmI());
  ok(await harness.whoAmI());

  const reports = await page.evaluate(
    () => (window as unknown as { rejectedKeys: { from: string; message: string }[] }).rejectedKeys,
  );
  expect(reports).toHaveLength(1);
  expect(reports[0]).toMatchObject({ from: "store" });
  expect(reports[0]?.message).toMatch(/keyPair\.privateKey must be non-extractable/);
  // The store now holds the app's own pair, which no script can read out.
  expect(await harness.storedKey(database)).toEqual({
    found: true,
    privateKeyExtractable: false,
    algorithm: "ECDSA",
    exportError: "InvalidAccessError",
  });
  const stats = await backend.stats();
  expect(stats).toMatchObject({ dpopTokensIssued: 1, dpopCalls: 2, dpopKeys: 1 });
  expect(stats.dpopThumbprints).not.toContain(planted);
});
