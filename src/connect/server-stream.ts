import { Code, ConnectError, type StreamRequest, type StreamResponse } from "@connectrpc/connect";
import type { ReplayRules } from "../replay/auth-options.js";
import { type FirstToken, startCall } from "../replay/call.js";
import { endOnSignOut } from "../replay/sign-out.js";
import { type Next, sendSafely, targetOf } from "./attempt.js";
import { failureOf, tokenOrConnectError } from "./errors.js";
import { recordedInput, watchReads } from "./stream-replay.js";
import { shortenTimeout } from "./timeout-header.js";

/**
 * A server-streaming call with `first`; refused before its first message (by `next` or the first
 * read), it is replayed as the replay rules allow, with the recorded request.
 */
export function serverStream(
  rules: ReplayRules,
  next: Next,
  req: StreamRequest,
  first: FirstToken,
): Promise<StreamResponse> {
  const call = startCall(rules, targetOf(req), first);
  // Sign-out aborts the attempt under way; the caller's own abort (or deadline) still does.
  const controller = new AbortController();
  let signedOut: ConnectError | undefined;
  const stop = endOnSignOut(rules.source, (error) => {
    signedOut = new ConnectError(error.message, Code.Canceled, undefined, undefined, error);
    controller.abort(signedOut);
  });
  const abort = () => controller.abort(req.signal.reason);
  if (req.signal.aborted) abort();
  else req.signal.addEventListener("abort", abort, { once: true });
  const { signal } = controller;
  // The transport consumes the request iterable: record it as the first attempt reads it, and
  // hand a replay a fresh iterable over the same messages.
  const input = recordedInput(req.message);
  const withInput: Next = (r) => next({ ...(r as StreamRequest), message: input(), signal });
  /** The replacement for a failed attempt, or undefined when the caller gets the error. */
  const replayAfter = (error: unknown): Promise<StreamResponse> | undefined => {
    const replayed = call.replay(failureOf(error));
    if (replayed === undefined) return undefined;
    return tokenOrConnectError(replayed, req).then(() => {
      shortenTimeout(req.header, call.elapsed());
      return attempt();
    });
  };
  const watch = (res: StreamResponse) =>
    watchReads(
      res,
      replayAfter,
      (error) => call.failedAfterData(failureOf(error)),
      () => call.succeeded(),
    );
  const attempt = (): Promise<StreamResponse> =>
    (sendSafely(rules, call, req, withInput) as Promise<StreamResponse>).then(
      watch,
      (error: unknown) => replayAfter(error) ?? Promise.reject(error),
    );
  const ended = (error: unknown) => {
    stop();
    req.signal.removeEventListener("abort", abort);
    return signedOut ?? error;
  };
  return attempt().then(
    (res) => untilSignedOut(res, () => signedOut, ended),
    (error: unknown) => Promise.reject(ended(error)),
  );
}

/**
 * The stream as the caller reads it: after sign-out, every read fails with `signedOut()` (a
 * message that was on its way included); `ended` stops watching when the stream ends.
 */
function untilSignedOut(
  res: StreamResponse,
  signedOut: () => ConnectError | undefined,
  ended: (error: unknown) => unknown,
): StreamResponse {
  const inner = res.message[Symbol.asyncIterator]();
  const iterator: AsyncIterableIterator<unknown> = {
    next() {
      const error = signedOut();
      if (error !== undefined) return Promise.reject(ended(error));
      return inner.next().then(
        (result) => {
          if (signedOut() !== undefined) throw ended(undefined);
          if (result.done === true) ended(undefined);
          return result;
        },
        (failure: unknown) => Promise.reject(ended(failure)),
      );
    },
    return(value?: unknown) {
      ended(undefined);
      return inner.return?.(value) ?? Promise.resolve({ done: true, value });
    },
    throw(error?: unknown) {
      ended(undefined);
      return inner.throw?.(error) ?? Promise.reject(error);
    },
    [Symbol.asyncIterator]: () => iterator,
  };
  return { ...res, message: iterator } as StreamResponse;
}

/** A client- or bidi-streaming call: the token, and a proof for DPoP; its input is not replayable. */
export function clientStream(
  rules: ReplayRules,
  next: Next,
  req: StreamRequest,
  first: FirstToken,
): Promise<StreamResponse> {
  const call = startCall(rules, targetOf(req), first);
  return sendSafely(rules, call, req, next) as Promise<StreamResponse>;
}
