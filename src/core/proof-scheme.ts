/**
 * What a sender-constraining scheme (DPoP) adds to every attempt of a call, as the interceptors
 * see it: they stay free of any one scheme, so an app without one bundles none of it.
 */
export interface ProofScheme {
  /** The authorization scheme its tokens go with (`"DPoP"`). */
  readonly scheme: string;
  /** The headers that prove possession for one attempt at `url` with `token`. */
  headers(url: string, token: string): Promise<Record<string, string>>;
  /**
   * After a refused attempt (`code`, the answer's `headers`): whether the server asked for one
   * more try with a new nonce, which is kept for the later attempts.
   */
  challenge(
    url: string,
    code: number | undefined,
    headers: Headers | Record<string, string> | undefined,
  ): boolean;
}
