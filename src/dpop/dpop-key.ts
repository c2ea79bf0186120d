import { GrpcCode } from "../core/codes.js";
import type { DpopKeyHandle, DpopSigner } from "../core/grant.js";
import type { Proof, ProofAnswer, ProofScheme } from "../core/proof-scheme.js";
import type { TabLink } from "../core/tab-sharing.js";
import { publicJwkOf, thumbprintOf } from "./key-pair.js";
import type { DpopKeyStore } from "./key-store.js";
import { base64url, base64urlOf, idOf, type Key, loadKey } from "./load-key.js";
import { createServerClock, type ServerClock } from "./server-clock.js";

/** A source's DPoP key: signs proofs for its grant and its interceptors, keeps nonces per origin. */
export interface DpopKey extends DpopKeyHandle, ProofScheme {
  /**
   * Gives the key up, at sign-out: the next proof is signed with a new key (saved to the store),
   * and neither the store (with `delete`) nor this source takes the old one back, so the next
   * user's proofs cannot be linked to the last one's by the key's thumbprint. Returns a signer
   * that still holds the old key, for the requests that end the old session (revoking its
   * refresh token, which is bound to that key).
   */
  rotate(): DpopSigner;
}

/** Proofs signed on a clock this far off the refusing server's `Date` are worth one more try. */
export const SKEWED_PROOF_MS = 10_000;

/** Keys given up at sign-out that are remembered, so a store or tab cannot hand them back. */
const MAX_RETIRED = 16;

const encoder = new TextEncoder();

/** A `WWW-Authenticate` challenge for the DPoP scheme asking for a nonce (RFC 9449 §9). */
const USE_DPOP_NONCE = /(?:^|,)\s*DPoP\s[\s\S]*?\berror\s*=\s*"?use_dpop_nonce\b/i;
/** A `WWW-Authenticate` challenge for the DPoP scheme refusing the proof (RFC 9449 §7.1). */
const INVALID_DPOP_PROOF = /(?:^|,)\s*DPoP\s[\s\S]*?\berror\s*=\s*"?invalid_dpop_proof\b/i;

/** What every signer of one source shares, whichever key it holds. */
interface Shared {
  nonces: Map<string, string>;
  clock: ServerClock;
  targetOf: (url: string) => { origin: string; htu: string };
}

export function createDpopKey(
  store: DpopKeyStore | undefined,
  tabs: TabLink | undefined,
  keyPair: CryptoKeyPair | undefined,
): DpopKey {
  const shared: Shared = {
    nonces: new Map(),
    clock: createServerClock(),
    targetOf: urlParts(),
  };
  const key = createKeyHolder(store, tabs, keyPair);
  const signer = createSigner(key.current, shared);
  return {
    ...signer,
    scheme: "DPoP",
    // The call's URL without query or fragment is the proof's htu; calls are always POSTs.
    async prove(url, token) {
      const nonce = shared.nonces.get(shared.targetOf(url).origin);
      return { headers: { dpop: await signer.proof("POST", url, token) }, nonce };
    },
    challenge: (url, answer, sent) => challengeOf(signer, url, answer, sent),
    thumbprint: async () => thumbprintOf((await key.current()).jwk),
    keyPair: async () => (await key.current()).pair,
    async adopt(pair) {
      let offered = typeof pair === "function" ? undefined : pair;
      key.prefer(async () => {
        offered = typeof pair === "function" ? await pair() : pair;
        return offered;
      });
      const { jwk } = await key.current();
      return offered !== undefined && idOf(jwk) === idOf(await publicJwkOf(offered.publicKey));
    },
    rotate() {
      const old = key.rotate();
      return createSigner(() => old, shared);
    },
  };
}

/**
 * The source's current key, loaded once, and given up at sign-out: `rotate()` returns the old
 * key and makes the next `current()` load a new one, never the old one again.
 */
function createKeyHolder(
  store: DpopKeyStore | undefined,
  tabs: TabLink | undefined,
  keyPair: CryptoKeyPair | undefined,
) {
  let given = keyPair;
  // A pair a grant brought back from a sign-in by redirect, for a source that has no key yet.
  let preferred: (() => Promise<CryptoKeyPair | undefined>) | undefined;
  const retired = new Set<string>();
  // Resolves once the key given up last is retired and gone from the store.
  let retiring: Promise<void> = Promise.resolve();
  let key: Promise<Key> | undefined;
  let ready: Key | undefined;
  return {
    async current(): Promise<Key> {
      if (ready !== undefined) return ready;
      key ??= retiring.then(() => loadKey({ store, tabs, given, retired, preferred }));
      const loading = key;
      try {
        const loaded = await loading;
        if (key === loading) ready = loaded;
        return loaded;
      } catch (error) {
        // A failure is not kept (unless a newer try replaced it): the next proof tries again.
        if (key === loading) key = undefined;
        throw error;
      }
    },
    prefer(pair: () => Promise<CryptoKeyPair | undefined>): void {
      if (key === undefined) preferred = pair;
    },
    rotate(): Promise<Key> {
      const old = key ?? loadKey({ store, tabs: undefined, given, retired });
      key = undefined;
      ready = undefined;
      given = undefined;
      retiring = old
        .then(({ jwk }) => {
          if (retired.size >= MAX_RETIRED) retired.delete(retired.values().next().value as string);
          retired.add(idOf(jwk));
        })
        .then(() => store?.delete?.())
        .catch(() => {});
      return old;
    },
  };
}

/** {@link ProofScheme.challenge}: keeps the answer's nonce and clock; says whether to try again. */
function challengeOf(
  signer: DpopSigner,
  url: string,
  { code, headers }: ProofAnswer,
  sent: Proof | undefined,
): boolean | undefined {
  const nonce = headerOf(headers, "dpop-nonce");
  // A new nonce, or the server's clock, on any answer is kept for the next proofs.
  if (nonce !== undefined && nonce !== "") signer.nonce(url, nonce);
  const date = headerOf(headers, "date");
  signer.serverDate(url, date);
  if (code !== GrpcCode.Unauthenticated) return undefined;
  const challenge = headerOf(headers, "www-authenticate") ?? "";
  if (USE_DPOP_NONCE.test(challenge)) {
    // Worth one more attempt only with a nonce other than the one this attempt's proof carried.
    return nonce !== undefined && nonce !== "" && nonce !== sent?.nonce;
  }
  // A proof refused while signed on a clock far off the server's: the next one is not.
  if (INVALID_DPOP_PROOF.test(challenge) && isSkewed(sent, date)) return true;
  return undefined;
}

/** Signs proofs with the key `keyOf` gives, sharing the source's nonces and server clock. */
function createSigner(keyOf: () => Promise<Key>, { nonces, clock, targetOf }: Shared): DpopSigner {
  // The last token's hash: the same token is proved on many calls.
  let athFor = "";
  let ath = "";
  return {
    async proof(method, url, accessToken) {
      const { privateKey, header } = await keyOf();
      const { origin, htu } = targetOf(url);
      const claims: Record<string, string | number> = {
        jti: randomId(),
        htm: method,
        htu,
        iat: Math.floor(clock.now(origin) / 1000),
      };
      if (accessToken !== undefined) {
        if (athFor !== accessToken) {
          ath = base64url(await crypto.subtle.digest("SHA-256", encoder.encode(accessToken)));
          athFor = accessToken;
        }
        claims.ath = ath;
      }
      const nonce = nonces.get(origin);
      if (nonce !== undefined) claims.nonce = nonce;
      // The claims are ASCII (a parsed URL, base64url, a checked nonce): btoa takes them as they are.
      const input = `${header}.${base64urlOf(btoa(JSON.stringify(claims)))}`;
      const signature = await crypto.subtle.sign(
        { name: "ECDSA", hash: "SHA-256" },
        privateKey,
        encoder.encode(input),
      );
      return `${input}.${base64url(signature)}`;
    },
    nonce(url, nonce) {
      // RFC 9449's NQCHAR: visible ASCII but `"` and `\`.
      if (/^[\x21\x23-\x5b\x5d-\x7e]{1,512}$/.test(nonce)) nonces.set(targetOf(url).origin, nonce);
    },
    serverDate: (url, date) => clock.learn(targetOf(url).origin, date),
  };
}

/** Whether the proof `sent` was signed on a clock off the answer's `Date` by SKEWED_PROOF_MS. */
function isSkewed(
  sent: { headers: Readonly<Record<string, string>> } | undefined,
  date: string | undefined,
): boolean {
  const server = date === undefined ? Number.NaN : Date.parse(date);
  const claims = sent?.headers.dpop?.split(".")[1];
  if (Number.isNaN(server) || claims === undefined) return false;
  try {
    const { iat } = JSON.parse(atob(claims.replace(/-/g, "+").replace(/_/g, "/"))) as {
      iat?: unknown;
    };
    return typeof iat === "number" && Math.abs(iat * 1000 - server) >= SKEWED_PROOF_MS;
  } catch {
    return false;
  }
}

function headerOf(
  headers: Headers | Readonly<Record<string, string>> | undefined,
  name: string,
): string | undefined {
  if (headers instanceof Headers) return headers.get(name) ?? undefined;
  return headers?.[name];
}

/** A URL's origin and its `htu` (no query or fragment); calls go to few URLs, each parsed once. */
function urlParts(): (url: string) => { origin: string; htu: string } {
  const parts = new Map<string, { origin: string; htu: string }>();
  return (url) => {
    let known = parts.get(url);
    if (known === undefined) {
      const parsed = new URL(url, globalThis.location?.href);
      known = { origin: parsed.origin, htu: parsed.origin + parsed.pathname };
      if (parts.size >= 64) parts.clear();
      parts.set(url, known);
    }
    return known;
  };
}

function randomId(): string {
  return base64url(crypto.getRandomValues(new Uint8Array(16)));
}
