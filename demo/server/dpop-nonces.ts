import { randomBytes } from "node:crypto";

/** Options for {@link createDpopNonces}. */
export interface DpopNoncesOptions {
  /**
   * Seconds a nonce stays current; the one before it is still accepted for as long again, so a
   * nonce is good for 1–2 periods. Default 60.
   */
  rotateSeconds?: number;
}

/** Server-issued DPoP nonces (RFC 9449 §8): random, rotating, accepted for a window. */
export interface DpopNonces {
  /** The nonce to hand out now (in a `DPoP-Nonce` header). */
  current(): string;
  /** Whether `nonce` is the current nonce or the previous one. */
  isValid(nonce: unknown): boolean;
}

/**
 * Creates a nonce source. Rotation happens when a nonce is asked for or checked, not on a timer,
 * so an idle server does no work.
 *
 * @example
 * const nonces = createDpopNonces({ rotateSeconds: 30 });
 * res.setHeader("dpop-nonce", nonces.current());
 */
export function createDpopNonces(options: DpopNoncesOptions = {}): DpopNonces {
  const rotateSeconds = options.rotateSeconds ?? 60;
  if (!Number.isInteger(rotateSeconds) || rotateSeconds <= 0) {
    throw new TypeError(`rotateSeconds must be a positive integer, got ${rotateSeconds}`);
  }
  const rotateMs = rotateSeconds * 1000;
  let current = fresh();
  let previous: string | undefined;
  let rotatedAt = Date.now();

  function rotate(): void {
    const elapsed = Date.now() - rotatedAt;
    if (elapsed < rotateMs) return;
    // After two idle periods even the current nonce is stale: forget both.
    previous = elapsed < 2 * rotateMs ? current : undefined;
    current = fresh();
    rotatedAt = Date.now();
  }

  return {
    current() {
      rotate();
      return current;
    },
    isValid(nonce) {
      rotate();
      return typeof nonce === "string" && (nonce === current || nonce === previous);
    },
  };
}

function fresh(): string {
  return randomBytes(18).toString("base64url");
}
