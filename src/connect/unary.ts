import type { UnaryRequest } from "@connectrpc/connect";
import { monotonic } from "../core/clock.js";
import type { ReplayRules } from "../replay/auth-options.js";
import { type CallReplay, type FirstToken, startCall } from "../replay/call.js";
import { type Next, type Res, sendSafely, targetOf } from "./attempt.js";
import { failureOf, tokenOrConnectError } from "./errors.js";
import { shortenTimeout } from "./timeout-header.js";

/**
 * A unary call with `first`; on a failure the replay rules answer (a nonce challenge, a refused
 * token), replayed. A bearer token goes out without any replay state: it is made only on failure.
 */
export function unary(
  rules: ReplayRules,
  next: Next,
  req: UnaryRequest,
  first: FirstToken,
): Promise<Res> {
  const started = monotonic();
  const { source } = rules;
  const { token, proven } = first;
  if (source.proofFor?.(token) === undefined) {
    req.header.set(rules.headerName, rules.headerValue(token, undefined));
    const fail = (error: unknown) =>
      replay(rules, startCall(rules, targetOf(req), first, started), next, req, error);
    let sent: Promise<Res>;
    try {
      sent = next(req);
    } catch (error) {
      return fail(error);
    }
    if (proven || source.proven === undefined) return sent.then(undefined, fail);
    const { proven: prove } = source;
    return sent.then((res) => {
      prove(token);
      return res;
    }, fail);
  }
  const call = startCall(rules, targetOf(req), first, started);
  return attemptUnary(rules, call, next, req).then(undefined, (error: unknown) =>
    replay(rules, call, next, req, error),
  );
}

async function attemptUnary(rules: ReplayRules, call: CallReplay, next: Next, req: UnaryRequest) {
  const res = await sendSafely(rules, call, req, next);
  call.succeeded();
  return res;
}

/** What follows a failed attempt: replays while the rules allow, else the caller gets the error. */
async function replay(
  rules: ReplayRules,
  call: CallReplay,
  next: Next,
  req: UnaryRequest,
  error: unknown,
): Promise<Res> {
  for (let failure = error; ; ) {
    const replayed = call.replay(failureOf(failure));
    if (replayed === undefined) throw failure;
    await tokenOrConnectError(replayed, req);
    shortenTimeout(req.header, call.elapsed());
    try {
      return await attemptUnary(rules, call, next, req);
    } catch (again) {
      failure = again;
    }
  }
}
