import type { StreamRequest, StreamResponse } from "@connectrpc/connect";
import type { ReplayRules } from "../replay/auth-options.js";
import { type FirstToken, startCall } from "../replay/call.js";
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
  // The transport consumes the request iterable: record it as the first attempt reads it, and
  // hand a replay a fresh iterable over the same messages.
  const input = recordedInput(req.message);
  const withInput: Next = (r) => next({ ...(r as StreamRequest), message: input() });
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
  return attempt();
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
