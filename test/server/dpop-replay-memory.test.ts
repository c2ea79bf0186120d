/**
 * The demo's DPoP replay cache: only proofs of authenticated requests are remembered, and never
 * more than `maxRememberedProofs` at once.
 */
import { describe, expect, it } from "vitest";
import { createDpopNonces } from "../../demo/server/dpop-nonces.js";
import { createDpopVerifier } from "../../demo/server/dpop-proof.js";
import { makeDpopKey } from "./dpop-key.js";
import { postJson, refresh, startTestServer } from "./fixtures.js";

describe("the DPoP replay cache", () => {
  it("remembers no proof of a sign-in with a wrong password or a refresh with an unknown token", async () => {
    // No backoff here: every wrong password is checked, as if from 300 accounts.
    const server = await startTestServer({
      testMode: true,
      signInThrottle: { freeFailures: 1_000 },
    });
    const key = await makeDpopKey();
    for (let i = 0; i < 300; i++) {
      const dpop = await key.proof(server.tokenUrl);
      const res = await postJson(
        server.tokenUrl,
        { username: "alice", password: `guess-${i}` },
        { dpop },
      );
      expect(res.status).toBe(401);
    }
    for (let i = 0; i < 100; i++) {
      const res = await refresh(server, `made-up-${i}`, { dpop: await key.proof(server.tokenUrl) });
      expect(res.status).toBe(400);
    }
    expect(server.stats().passwordChecks).toBe(300);
    expect(server.dpop.remembered()).toBe(0);

    const dpop = await key.proof(server.tokenUrl);
    const res = await postJson(
      server.tokenUrl,
      { username: "alice", password: "wonderland" },
      { dpop },
    );
    expect(res.status).toBe(200);
    expect(server.dpop.remembered()).toBe(1);
  });

  it("refuses proofs beyond maxRememberedProofs, and a replay either way", async () => {
    const verifier = createDpopVerifier({ nonces: createDpopNonces(), maxRememberedProofs: 3 });
    const key = await makeDpopKey();
    const url = "https://api.example/auth/token";
    const proofs = await Promise.all(Array.from({ length: 4 }, () => key.proof(url)));
    for (const proof of proofs.slice(0, 3)) {
      await expect(verifier.verify(proof, { method: "POST", url })).resolves.toMatchObject({
        jkt: key.jkt,
      });
    }
    await expect(verifier.verify(proofs[3], { method: "POST", url })).rejects.toThrow(
      /too many recent DPoP proofs/,
    );
    await expect(verifier.verify(proofs[0], { method: "POST", url })).rejects.toThrow(
      /already used/,
    );
    expect(verifier.remembered()).toBe(3);
    expect(() =>
      createDpopVerifier({ nonces: createDpopNonces(), maxRememberedProofs: 0 }),
    ).toThrow(/maxRememberedProofs/);
  });
});
