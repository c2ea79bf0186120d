/**
 * How a call proves possession of the key its token is bound to (DPoP, RFC 9449), as the
 * interceptors see it. A `TokenSource` hands one out per token through `proofFor`; the
 * interceptors stay free of any one scheme, so an app without one bundles none of it.
 */
export interface ProofScheme {
  /** The authorization scheme its tokens go with (`"DPoP"`). */
  readonly scheme: string;
  /** The proof for one attempt at `url` (no query or fragment) with `token`. */
  prove(url: string, token: string): Promise<Proof>;
  /**
   * After a refused attempt: `undefined` when `answer` is no nonce challenge; otherwise whether the
   * call is worth one more attempt, which is so only when the server asked for a nonce other than
   * the one `sent` carried (the new nonce is then kept for later proofs).
   */
  challenge(url: string, answer: ProofAnswer, sent: Proof | undefined): boolean | undefined;
}

/** The headers that prove possession for one attempt. */
export interface Proof {
  /** Request headers to add (`dpop`). */
  readonly headers: Readonly<Record<string, string>>;
  /** The server nonce the proof carries, if any. */
  readonly nonce: string | undefined;
}

/** What a refused attempt's answer tells a proof scheme. */
export interface ProofAnswer {
  /** The gRPC status code of the answer. */
  code: number | undefined;
  /** The answer's headers and trailers (`www-authenticate`, `dpop-nonce`). */
  headers: Headers | Readonly<Record<string, string>> | undefined;
}
