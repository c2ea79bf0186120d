/**
 * DPoP proofs dated on the server's clock: a page whose clock is off gets one proof refused, then
 * dates its proofs by the `Date` of the answers, at the demo backend, oidc-provider and a resource
 * server that checks `iat` within 60 s.
 */
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { afterEach, describe, expect, it } from "vitest";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";
import { setClock } from "../../src/core/clock.js";
import type { BindableDpopProofs } from "../../src/dpop/dpop-proofs.js";
import {
  createAuthInterceptor,
  createTokenSource,
  type DpopProofs,
  dpopProofs,
  passwordGrant,
  type TokenGrant,
} from "../../src/index.js";
import { startOidcProvider } from "../helpers/oidc-provider.js";
import { signIn } from "../helpers/oidc-sign-in.js";
import { startResourceServer } from "../helpers/resource-server.js";
import { startTestServer } from "../server/fixtures.js";

/** The key a source binds, as the source sees its `dpop` option. */
const bindable = (proofs: DpopProofs) => proofs as BindableDpopProofs;

/** Makes this machine's wall clock `offsetMs` off the true time (the servers keep theirs). */
function skewClock(offsetMs: number): void {
  setClock({ now: () => Date.now() + offsetMs, monotonic: () => performance.now() });
}

afterEach(() => setClock(undefined));

const iatOf = (proof: string): number =>
  JSON.parse(Buffer.from(proof.split(".")[1] as string, "base64url").toString()).iat;
const trueSeconds = () => Math.floor(Date.now() / 1000);
const httpDate = (ms: number) => new Date(ms).toUTCString();

describe("DpopSigner.serverDate", () => {
  it("dates proofs on the server's clock once an answer told it, for that origin and origins not heard from yet", async () => {
    skewClock(-120_000);
    const key = bindable(dpopProofs()).bind(undefined);
    expect(iatOf(await key.proof("POST", "https://a.example/x"))).toBeLessThan(trueSeconds() - 110);

    expect(key.serverDate("https://a.example/token", httpDate(Date.now()))).toBe(true);
    for (const url of ["https://a.example/x", "https://b.example/y"]) {
      expect(Math.abs(iatOf(await key.proof("POST", url)) - trueSeconds())).toBeLessThanOrEqual(2);
    }
    // Told again, the same clock is no change.
    expect(key.serverDate("https://a.example/other", httpDate(Date.now()))).toBe(false);
    // An origin with a clock of its own keeps it; the others follow the last one heard.
    expect(key.serverDate("https://c.example/", httpDate(Date.now() + 600_000))).toBe(true);
    expect(
      Math.abs(iatOf(await key.proof("POST", "https://a.example/x")) - trueSeconds()),
    ).toBeLessThanOrEqual(2);
    expect(iatOf(await key.proof("POST", "https://c.example/x"))).toBeGreaterThan(
      trueSeconds() + 590,
    );
  });

  it("ignores a missing or unparsable Date, and an offset within the Date's one-second resolution", async () => {
    const key = bindable(dpopProofs()).bind(undefined);
    expect(key.serverDate("https://a.example/", null)).toBe(false);
    expect(key.serverDate("https://a.example/", "yesterday-ish")).toBe(false);
    expect(key.serverDate("https://a.example/", httpDate(Date.now() - 1_000))).toBe(false);
    expect(
      Math.abs(iatOf(await key.proof("POST", "https://a.example/")) - trueSeconds()),
    ).toBeLessThanOrEqual(1);
  });
});

describe("ProofScheme.challenge", () => {
  it("asks for one more attempt only for a proof refused while dated far off the answer's Date", async () => {
    const refusal = (date: string) => ({
      code: 16,
      headers: { date, "www-authenticate": 'DPoP error="invalid_dpop_proof"' },
    });
    skewClock(-120_000);
    const key = bindable(dpopProofs()).bind(undefined);
    const skewed = await key.prove("https://a.example/x", "token");
    expect(key.challenge("https://a.example/x", refusal(httpDate(Date.now())), skewed)).toBe(true);
    // The next proof is on the server's clock: refused again, it is no clock problem.
    const corrected = await key.prove("https://a.example/x", "token");
    expect(key.challenge("https://a.example/x", refusal(httpDate(Date.now())), corrected)).toBe(
      undefined,
    );
    // Nor is a refusal without a Date, or one for another reason.
    expect(key.challenge("https://a.example/x", { code: 16, headers: {} }, skewed)).toBe(undefined);
    expect(
      key.challenge(
        "https://a.example/x",
        {
          code: 16,
          headers: { date: httpDate(Date.now()), "www-authenticate": 'DPoP error="invalid_token"' },
        },
        skewed,
      ),
    ).toBe(undefined);
  });
});

const transports = { "grpc-web": createGrpcWebTransport, connect: createConnectTransport } as const;

describe.each(Object.keys(transports) as (keyof typeof transports)[])(
  "a page whose clock is two minutes behind, over %s, at the demo backend",
  (kind) => {
    it("has its call's proof refused once, replays it once on the server's clock, and later calls pass at once", async () => {
      const server = await startTestServer({ testMode: true });
      const tokens = createTokenSource({
        fetchToken: passwordGrant({
          endpoint: server.tokenUrl,
          credentials: { username: "alice", password: "wonderland" },
        }),
        dpop: dpopProofs(),
      });
      let sent = 0;
      const count: Interceptor = (next) => (req) => {
        sent++;
        return next(req);
      };
      const client = createClient(
        DemoService,
        transports[kind]({
          baseUrl: server.url,
          interceptors: [createAuthInterceptor(tokens), count],
        }),
      );
      await tokens.getToken();
      skewClock(-120_000);

      expect((await client.whoAmI({})).subject).toBe("alice");
      expect(sent).toBe(2);
      expect(server.stats()).toMatchObject({ invalidDpopProofs: 1, tokenRequests: 1 });
      expect((await client.whoAmI({})).subject).toBe("alice");
      expect(sent).toBe(3);
      expect(server.stats()).toMatchObject({ invalidDpopProofs: 1, tokenRequests: 1 });
    });
  },
);

describe("a grant that tells the signer each answer's Date", () => {
  /** What the library's grants do: every answer's Date to the signer, one more try when it helped. */
  function tellingGrant(endpoint: string, body: () => URLSearchParams | string): TokenGrant {
    return async ({ dpop, signal }) => {
      for (let tries = 1; ; tries++) {
        const res = await fetch(endpoint, {
          method: "POST",
          headers: {
            "content-type":
              typeof body() === "string" ? "application/json" : "application/x-www-form-urlencoded",
            dpop: (await dpop?.proof("POST", endpoint)) as string,
          },
          body: body(),
          signal,
        });
        const changed = dpop?.serverDate(endpoint, res.headers.get("date")) ?? false;
        const answer = (await res.json()) as Record<string, string>;
        if (res.ok) return answer.access_token as string;
        if (tries === 1 && answer.error === "invalid_dpop_proof" && changed) continue;
        throw new Error(`refused: ${answer.error}`);
      }
    };
  }

  it("recovers after one refused proof at the demo token endpoint, and its calls pass at once", async () => {
    const server = await startTestServer({ testMode: true });
    skewClock(-120_000);
    const tokens = createTokenSource({
      fetchToken: tellingGrant(server.tokenUrl, () =>
        JSON.stringify({ username: "alice", password: "wonderland" }),
      ),
      dpop: dpopProofs(),
    });
    const client = createClient(
      DemoService,
      createConnectTransport({
        baseUrl: server.url,
        interceptors: [createAuthInterceptor(tokens)],
      }),
    );
    expect((await client.whoAmI({})).subject).toBe("alice");
    expect(server.stats()).toMatchObject({
      tokenRequests: 2,
      invalidDpopProofs: 1,
      dpopTokensIssued: 1,
      dpopCalls: 1,
    });
  });

  it("recovers after one refused proof at oidc-provider, and calls pass at once at a resource server on another origin", async () => {
    const provider = await startOidcProvider();
    const api = await startResourceServer(provider);
    try {
      const keyPair = (await crypto.subtle.generateKey(
        { name: "ECDSA", namedCurve: "P-256" },
        false,
        ["sign", "verify"],
      )) as CryptoKeyPair;
      const { refresh_token } = await signIn(provider, { dpop: keyPair, login: "dora" });
      provider.reset();
      // Ten minutes behind: beyond oidc-provider's five-minute window for iat.
      skewClock(-600_000);
      const form = () =>
        new URLSearchParams({
          grant_type: "refresh_token",
          refresh_token,
          client_id: provider.clientId,
        });
      const tokens = createTokenSource({
        fetchToken: tellingGrant(provider.token, form),
        dpop: dpopProofs({ keyPair }),
      });
      const client = createClient(
        DemoService,
        createConnectTransport({ baseUrl: api.url, interceptors: [createAuthInterceptor(tokens)] }),
      );
      expect((await client.whoAmI({})).subject).toBe("dora");
      expect(provider.stats()).toMatchObject({
        tokenRequests: 2,
        tokenErrors: { invalid_dpop_proof: 1 },
        grants: { refresh_token: 1 },
      });
      expect(api.stats()).toMatchObject({ accepted: 1, dpopAccepted: 1, unauthenticated: 0 });
    } finally {
      await api.close();
      await provider.close();
    }
  });
});
