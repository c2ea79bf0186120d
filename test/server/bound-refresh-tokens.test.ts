/**
 * A DPoP-bound refresh-token family answers only to its key: revoking it takes a proof by the key
 * (as refreshing it does), and a request without one learns nothing about whether it is alive.
 */
import { describe, expect, it } from "vitest";
import type { DemoServer } from "../../demo/server/server.js";
import { REFRESH_REFUSAL } from "../../demo/server/token-endpoint.js";
import { type DpopKey, makeDpopKey } from "./dpop-key.js";
import { postJson, refresh, revoke, signIn, startTestServer } from "./fixtures.js";

/** Signs alice in bound to `key`. */
async function boundSignIn(server: DemoServer, key: DpopKey) {
  return signIn(server, "alice", "wonderland", { dpop: await key.proof(server.tokenUrl) });
}

/** Refreshes with a proof by `key`; returns the status. */
async function refreshWith(server: DemoServer, token: string, key: DpopKey) {
  return refresh(server, token, { dpop: await key.proof(server.tokenUrl) });
}

async function revokeWith(
  server: DemoServer,
  token: string,
  key?: DpopKey,
  hint = "refresh_token",
) {
  return fetch(server.revokeUrl, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      ...(key && { dpop: await key.proof(server.revokeUrl) }),
    },
    body: new URLSearchParams({ token, token_type_hint: hint }),
  });
}

describe("a DPoP-bound refresh-token family", () => {
  it("is revoked only with a proof by its key: without one, or with another key's, the answer is 200 and the family lives on", async () => {
    const server = await startTestServer({ testMode: true });
    const key = await makeDpopKey();
    const thief = await makeDpopKey();
    let { refresh_token } = await boundSignIn(server, key);

    expect((await revoke(server, { token: refresh_token })).status).toBe(200);
    expect((await revokeWith(server, refresh_token, thief)).status).toBe(200);
    expect(server.stats().revocations).toBe(0);
    const alive = await refreshWith(server, refresh_token, key);
    expect(alive.status).toBe(200);
    refresh_token = ((await alive.json()) as { refresh_token: string }).refresh_token;

    const revoked = await revokeWith(server, refresh_token, key);
    expect(revoked.status).toBe(200);
    expect(await revoked.text()).toBe("");
    expect(server.stats()).toMatchObject({ revokeRequests: 3, revocations: 1, rotations: 1 });
    expect((await refreshWith(server, refresh_token, key)).status).toBe(400);
  });

  it("answers a refresh without its key's proof exactly as for a token that is dead or was never issued", async () => {
    const server = await startTestServer({ testMode: true });
    const key = await makeDpopKey();
    const thief = await makeDpopKey();
    const live = (await boundSignIn(server, key)).refresh_token;
    const revoked = (await boundSignIn(server, key)).refresh_token;
    expect((await revokeWith(server, revoked, key)).status).toBe(200);

    const answers = [
      await refresh(server, live),
      await refreshWith(server, live, thief),
      await refresh(server, live, { dpop: "not.a.proof" }),
      await refreshWith(server, revoked, thief),
      await refreshWith(server, "never-issued-token", thief),
      await refresh(server, "never-issued-token"),
    ];
    const seen = await Promise.all(
      answers.map(async (res) => ({ status: res.status, body: await res.json() })),
    );
    for (const answer of seen) {
      expect(answer).toEqual({
        status: 400,
        body: { error: "invalid_grant", error_description: REFRESH_REFUSAL },
      });
    }
    // None of it touched the live family: its key still refreshes it.
    expect((await refreshWith(server, live, key)).status).toBe(200);
  });

  it("answers the key's holder invalid_dpop_proof for a proof refused for its iat, so it can recover", async () => {
    const server = await startTestServer({ testMode: true });
    const key = await makeDpopKey();
    const { refresh_token } = await boundSignIn(server, key);
    const stale = { iat: Math.floor(Date.now() / 1000) - 600 };
    const refreshed = await refresh(server, refresh_token, {
      dpop: await key.proof(server.tokenUrl, stale),
    });
    expect(refreshed.status).toBe(400);
    expect(await refreshed.json()).toMatchObject({ error: "invalid_dpop_proof" });
    const revoked = await fetch(server.revokeUrl, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        dpop: await key.proof(server.revokeUrl, stale),
      },
      body: new URLSearchParams({ token: refresh_token }),
    });
    expect(revoked.status).toBe(400);
    expect(await revoked.json()).toMatchObject({ error: "invalid_dpop_proof" });
    expect(server.stats()).toMatchObject({ revocations: 0, invalidGrants: 0 });
  });

  it("asks for the server's nonce at revocation when nonces are required, and revokes with it", async () => {
    const server = await startTestServer({ testMode: true, dpopNonces: true });
    const key = await makeDpopKey();
    const first = await postJson(server.tokenUrl, { username: "alice", password: "wonderland" });
    const nonce = first.headers.get("dpop-nonce") as string;
    const { refresh_token } = await signIn(server, "alice", "wonderland", {
      dpop: await key.proof(server.tokenUrl, { nonce }),
    });
    const challenged = await revokeWith(server, refresh_token, key);
    expect(challenged.status).toBe(400);
    expect(await challenged.json()).toMatchObject({ error: "use_dpop_nonce" });
    const fresh = challenged.headers.get("dpop-nonce") as string;
    const res = await fetch(server.revokeUrl, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        dpop: await key.proof(server.revokeUrl, { nonce: fresh }),
      },
      body: new URLSearchParams({ token: refresh_token }),
    });
    expect(res.status).toBe(200);
    expect(server.stats().revocations).toBe(1);
  });
});

describe("a DPoP-bound access token", () => {
  it("is revoked only with a proof by its key", async () => {
    const server = await startTestServer({ testMode: true });
    const key = await makeDpopKey();
    const thief = await makeDpopKey();
    const { access_token } = await boundSignIn(server, key);
    expect((await revokeWith(server, access_token, undefined, "access_token")).status).toBe(200);
    expect((await revokeWith(server, access_token, thief, "access_token")).status).toBe(200);
    expect(server.stats().revocations).toBe(0);
    expect((await revokeWith(server, access_token, key, "access_token")).status).toBe(200);
    expect(server.stats().revocations).toBe(1);
  });
});
