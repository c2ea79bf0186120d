import { Code, ConnectError, type StreamRequest, type UnaryRequest } from "@connectrpc/connect";
import { abortReason } from "../core/abort.js";
import type { Failure } from "../replay/call.js";
import { tokenFailure } from "../replay/token-failure.js";

/** A failed attempt as the replay rules read it: its code, and its headers and trailers. */
export function failureOf(error: unknown): Failure {
  const connectError = ConnectError.from(error);
  return { error, code: connectError.code, headers: connectError.metadata };
}

/** Waits for a token; a failure becomes the ConnectError the call ends with. */
export function tokenOrConnectError(
  token: Promise<string>,
  req: UnaryRequest | StreamRequest,
): Promise<string> {
  return token.catch((error: unknown) => {
    const { signal } = req;
    // The call's own signal says why: Canceled, or DeadlineExceeded from Connect's deadline.
    if (signal.aborted) throw ConnectError.from(abortReason(signal), Code.Canceled);
    if (error instanceof ConnectError) throw error;
    const { code, message, cause } = tokenFailure(error);
    throw new ConnectError(message, code, undefined, undefined, cause);
  });
}
