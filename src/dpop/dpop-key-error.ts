const FROM = {
  store: "the store",
  tab: "another tab",
  "sign-in": "the sign-in's key store",
} as const;

/**
 * A DPoP key pair that reached the source from a `store`, another tab or a sign-in's key store and was refused: reported
 * (through the page's `reportError`, so `window`'s `error` listeners see it) while the source goes
 * on with a key of its own. Same-origin code can answer the tabs' key query or write the store;
 * a key it planted (say, an extractable one it can read out) must never sign this app's proofs.
 * It carries where the key came from and what was wrong with it, never any key material.
 */
export class DpopKeyRejectedError extends Error {
  override name = "DpopKeyRejectedError";
  /**
   * @param from Where the refused pair came from.
   * @param problem What was wrong, as the `keyPair` TypeError would say it.
   */
  constructor(
    readonly from: "store" | "tab" | "sign-in",
    readonly problem: string,
  ) {
    super(
      `dpopProofs: refused the DPoP key pair from ${FROM[from]} and made a new one: keyPair${problem.startsWith(".") ? "" : " "}${problem}`,
    );
  }
}
