import { createHash } from "node:crypto";
import {
  calculateJwkThumbprint,
  EmbeddedJWK,
  errors,
  type FlattenedJWSInput,
  type JWK,
  type JWSHeaderParameters,
  type JWTPayload,
  jwtVerify,
} from "jose";
import type { DpopNonces } from "./dpop-nonces.js";

/** Proof algorithms accepted by default: ES256 (what browsers' WebCrypto makes), EdDSA, RS256. */
export const DPOP_ALGORITHMS: readonly string[] = ["ES256", "EdDSA", "Ed25519", "RS256"];

/** JWK members that only a private key has; a proof's `jwk` must carry none of them. */
const PRIVATE_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/** Options for {@link createDpopVerifier}. */
export interface DpopVerifierOptions {
  /** Algorithms a proof may be signed with. Default {@link DPOP_ALGORITHMS}. */
  algorithms?: readonly string[];
  /** How far a proof's `iat` may be from the server's clock, either way, in seconds. Default 60. */
  maxSkewSeconds?: number;
  /** Where nonces come from when they are required. */
  nonces: DpopNonces;
  /** Whether proofs must carry a current nonce. Default false. */
  requireNonces?: boolean;
  /**
   * Proofs remembered at once to refuse replays (each for `maxSkewSeconds` and a second, about
   * 150 bytes); a proof that would need more is refused until some are forgotten. Only proofs
   * that passed every check are remembered, and the endpoints verify proofs only for a request
   * that is otherwise authenticated (a right password, a known refresh token, a valid access
   * token), so reaching it takes that many authenticated requests within the window. Default
   * 100000.
   */
  maxRememberedProofs?: number;
}

/** What a proof must match, besides its own signature. */
export interface DpopProofCheck {
  /** The HTTP method of the request (`htm`). */
  method: string;
  /** The URL of the request (`htu`); query and fragment are ignored on both sides. */
  url: string;
  /** The access token the request presents, whose SHA-256 the proof must carry as `ath`. */
  accessToken?: string;
  /** The thumbprint the proof's key must have: the token's `cnf.jkt`. */
  jkt?: string;
}

/**
 * A refused proof. `code` is the OAuth error to answer with: `use_dpop_nonce` when the proof was
 * good but lacked a current nonce (send one in `DPoP-Nonce`), else `invalid_dpop_proof`. The
 * message is a short fixed sentence, never an excerpt of the proof or the token.
 */
export class DpopProofError extends Error {
  override name = "DpopProofError";
  /**
   * With {@link DpopProofCheck.jkt}: the proof did not show possession of that key (there was
   * none, it was signed by another key, or its signature did not verify). Only the key's holder
   * learns anything more, so an endpoint can answer a thief as if the token did not exist.
   */
  readonly withoutKey: boolean;
  constructor(
    readonly code: "invalid_dpop_proof" | "use_dpop_nonce",
    message: string,
    options?: { cause?: unknown; withoutKey?: boolean },
  ) {
    super(message, options);
    this.withoutKey = options?.withoutKey ?? false;
  }
}

/** Checks DPoP proofs (RFC 9449 §4.3) and remembers their `jti`s to refuse replays. */
export interface DpopVerifier {
  /**
   * Verifies `proof` (the `DPoP` header) against `check`; resolves to the RFC 7638 SHA-256
   * thumbprint of the proof's key. Throws {@link DpopProofError}.
   */
  verify(proof: string | null | undefined, check: DpopProofCheck): Promise<{ jkt: string }>;
  /** The nonce to send in `DPoP-Nonce` now, or undefined while nonces are not required. */
  nonce(): string | undefined;
  /** Whether proofs must carry a current nonce. */
  requireNonces(): boolean;
  /** Starts or stops requiring nonces (test mode). */
  setRequireNonces(on: boolean): void;
  /** How many proofs are remembered now to refuse replays (tests). */
  remembered(): number;
}

/**
 * Creates a verifier. A proof passes when it is a JWS with `typ: dpop+jwt`, an allowed `alg`, a
 * public `jwk` header that verifies its signature, `htm` and `htu` matching the request, `iat`
 * within `maxSkewSeconds`, a `jti` not seen within that window, `ath` matching the access token
 * (when one is presented), a key whose thumbprint is the token's `cnf.jkt` (when one is given),
 * and a current nonce (when nonces are required). The key is checked right after the signature,
 * so a failure before it is {@link DpopProofError.withoutKey}. A `jti` is only remembered once
 * the proof has passed, so a proof refused for its nonce does not burn the client's `jti`; at
 * most `maxRememberedProofs` are remembered.
 *
 * @example
 * const dpop = createDpopVerifier({ nonces: createDpopNonces() });
 * const { jkt } = await dpop.verify(req.headers.dpop, { method: "POST", url: tokenUrl });
 */
export function createDpopVerifier(options: DpopVerifierOptions): DpopVerifier {
  const algorithms = [...(options.algorithms ?? DPOP_ALGORITHMS)];
  const skew = options.maxSkewSeconds ?? 60;
  const { nonces } = options;
  let noncesRequired = options.requireNonces ?? false;
  if (algorithms.length === 0) throw new TypeError("algorithms must name at least one algorithm");
  if (!Number.isInteger(skew) || skew < 1 || skew > 3600) {
    throw new TypeError(`maxSkewSeconds must be an integer from 1 to 3600, got ${skew}`);
  }
  const maxRemembered = options.maxRememberedProofs ?? 100_000;
  if (!Number.isInteger(maxRemembered) || maxRemembered < 1) {
    throw new TypeError(`maxRememberedProofs must be a positive integer, got ${maxRemembered}`);
  }

  // jkt + jti → Unix second after which the proof's iat is out of the window anyway.
  const seen = new Map<string, number>();
  let lastPrune = 0;
  function prune(now: number, force = false): void {
    if (!force && now - lastPrune < 10) return;
    lastPrune = now;
    for (const [key, until] of seen) if (until < now) seen.delete(key);
  }

  // A client proves the same key on every call: import it (and hash it) once, not per proof.
  const keys = new Map<string, { key: Promise<CryptoKey | Uint8Array>; jkt: Promise<string> }>();
  const embeddedKey = (header: JWSHeaderParameters, token: FlattenedJWSInput) => {
    const jwk = header.jwk;
    if (typeof jwk !== "object" || jwk === null || PRIVATE_MEMBERS.some((m) => m in jwk)) {
      return EmbeddedJWK(header, token);
    }
    const id = `${header.alg}:${JSON.stringify(jwk)}`;
    let known = keys.get(id);
    if (known === undefined) {
      known = { key: EmbeddedJWK(header, token), jkt: calculateJwkThumbprint(jwk, "sha256") };
      // A bounded cache: a flood of fresh keys cannot grow it without limit.
      if (keys.size >= 1000) keys.delete(keys.keys().next().value as string);
      keys.set(id, known);
      known.key.catch(() => keys.delete(id));
    }
    return known.key;
  };
  const thumbprintOf = (alg: string | undefined, jwk: JWK) =>
    keys.get(`${alg}:${JSON.stringify(jwk)}`)?.jkt ?? calculateJwkThumbprint(jwk, "sha256");

  return {
    async verify(proof, check) {
      // Until the proof's key is known to be the expected one, a failure shows no possession.
      const withoutKey = check.jkt !== undefined;
      if (!proof)
        throw new DpopProofError("invalid_dpop_proof", "missing DPoP proof", { withoutKey });
      let payload: JWTPayload;
      let jwk: JWK;
      let alg: string | undefined;
      try {
        const verified = await jwtVerify(proof, embeddedKey, {
          typ: "dpop+jwt",
          algorithms,
          requiredClaims: ["iat", "jti", "htm", "htu"],
        });
        payload = verified.payload;
        jwk = verified.protectedHeader.jwk as JWK;
        alg = verified.protectedHeader.alg;
      } catch (e) {
        throw new DpopProofError("invalid_dpop_proof", reasonOf(e), { cause: e, withoutKey });
      }
      if (PRIVATE_MEMBERS.some((member) => member in jwk)) {
        throw new DpopProofError("invalid_dpop_proof", "DPoP proof key has private members", {
          withoutKey,
        });
      }
      const jkt = await thumbprintOf(alg, jwk);
      if (check.jkt !== undefined && jkt !== check.jkt) {
        throw new DpopProofError("invalid_dpop_proof", "DPoP proof key is not the token's key", {
          withoutKey,
        });
      }
      const { iat, jti, htm, htu } = payload as {
        iat: number;
        jti: unknown;
        htm: unknown;
        htu: unknown;
      };
      if (typeof jti !== "string" || jti === "" || jti.length > 256) {
        throw new DpopProofError("invalid_dpop_proof", "DPoP proof jti must be a string");
      }
      if (htm !== check.method) {
        throw new DpopProofError("invalid_dpop_proof", "DPoP proof htm does not match the method");
      }
      if (typeof htu !== "string" || htuOf(htu) === undefined || htuOf(htu) !== htuOf(check.url)) {
        throw new DpopProofError("invalid_dpop_proof", "DPoP proof htu does not match the URL");
      }
      const now = Math.floor(Date.now() / 1000);
      if (Math.abs(now - iat) > skew) {
        throw new DpopProofError("invalid_dpop_proof", "DPoP proof iat is too far from now");
      }
      if (check.accessToken !== undefined && payload.ath !== athOf(check.accessToken)) {
        throw new DpopProofError("invalid_dpop_proof", "DPoP proof ath does not match the token");
      }
      if (noncesRequired && !nonces.isValid(payload.nonce)) {
        throw new DpopProofError("use_dpop_nonce", "DPoP proof needs a current server nonce");
      }
      prune(now);
      const replayKey = `${jkt}.${jti}`;
      if (seen.has(replayKey)) {
        throw new DpopProofError("invalid_dpop_proof", "DPoP proof was already used");
      }
      if (seen.size >= maxRemembered) prune(now, true);
      if (seen.size >= maxRemembered) {
        throw new DpopProofError("invalid_dpop_proof", "too many recent DPoP proofs: try again");
      }
      seen.set(replayKey, Math.max(now, iat) + skew + 1);
      return { jkt };
    },
    nonce: () => (noncesRequired ? nonces.current() : undefined),
    requireNonces: () => noncesRequired,
    setRequireNonces(on) {
      noncesRequired = on;
    },
    remembered: () => seen.size,
  };
}

/** The `ath` for `accessToken`: base64url of its SHA-256 (RFC 9449 §4.2). */
export function athOf(accessToken: string): string {
  return createHash("sha256").update(accessToken, "ascii").digest("base64url");
}

/** `url` as `htu` compares it: scheme, host and path, without query or fragment, normalized. */
function htuOf(url: string): string | undefined {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
  } catch {
    return undefined;
  }
}

function reasonOf(e: unknown): string {
  if (e instanceof errors.JOSEAlgNotAllowed) return "DPoP proof algorithm is not allowed";
  if (e instanceof errors.JWTClaimValidationFailed) {
    return e.claim === "typ" ? "DPoP proof typ must be dpop+jwt" : "DPoP proof claims are invalid";
  }
  if (e instanceof errors.JWSSignatureVerificationFailed) return "DPoP proof signature is invalid";
  return "DPoP proof is malformed";
}
