import {
  Code,
  ConnectError,
  type StreamRequest,
  type StreamResponse,
  type UnaryRequest,
  type UnaryResponse,
} from "@connectrpc/connect";
import { abortReason } from "../core/abort.js";
import type { ProofScheme } from "../core/proof-scheme.js";
import { TokenFetchError } from "../core/token-fetch-error.js";
import type { TokenSource } from "../core/token-source.js";
import { recordedInput, watchReads } from "./stream-replay.js";
import { shortenTimeout } from "./timeout-header.js";

export type Req = UnaryRequest | StreamRequest;
export type Next = (req: Req) => Promise<UnaryResponse | StreamResponse>;

/** What the Connect interceptor's calls share: its source, options and header. */
export interface CallKit {
  source: TokenSource;
  /** A sender-constrained source's proofs (DPoP), if any. */
  proofs: ProofScheme | undefined;
  /** Tells the source a call succeeded with a token it had to wait for. */
  proven: ((token: string) => void) | undefined;
  isAuthError(error: unknown): boolean;
  setToken(req: Req, token: string): void;
  notifyReplay(method: string): void;
}

async function prove({ proofs }: CallKit, req: Req, token: string): Promise<void> {
  const url = req.url.replace(/[?#].*$/, "");
  for (const [name, value] of Object.entries(await (proofs as ProofScheme).headers(url, token))) {
    req.header.set(name, value);
  }
}

/** Proves the key (DPoP) for an attempt with `token`, then sends it. */
export async function proveAndSend(kit: CallKit, req: Req, token: string, next: Next) {
  await prove(kit, req, token);
  return next(req);
}

/** The server asked for one more try with a new nonce (DPoP's `use_dpop_nonce`). */
function nonceChallenge({ proofs }: CallKit, req: Req, error: unknown): boolean {
  if (proofs === undefined) return false;
  const { code, metadata } = ConnectError.from(error);
  return proofs.challenge(req.url, code, metadata);
}

/** Refreshes after `rejected` was refused, and sets up `req` for a replay with the new token. */
async function refreshFor(kit: CallKit, req: Req, rejected: string): Promise<string> {
  const fresh = await tokenOrConnectError(
    kit.source.refresh(rejected, { signal: req.signal }),
    req,
  );
  kit.notifyReplay(`${req.service.typeName}/${req.method.name}`);
  kit.setToken(req, fresh);
  return fresh;
}

/**
 * What follows a failed attempt: at most one replay for a nonce challenge (DPoP) and one with a
 * refreshed token, never more. `next` resolves to the token to replay with; it throws the error
 * when the call ends with it, after telling the source of a refused token.
 */
function replayPlan(kit: CallKit, req: Req, token: string, started: number) {
  let current = token;
  let refreshed = false;
  let nonced = false;
  return {
    current: () => current,
    async next(error: unknown): Promise<string> {
      if (!nonced && nonceChallenge(kit, req, error)) {
        nonced = true;
      } else {
        // Asked once per failure: the app's predicate may be costly, or throw.
        const refused = kit.isAuthError(error);
        if (refreshed || !refused) {
          if (refused) kit.source.invalidate(current);
          throw error;
        }
        refreshed = true;
        current = await refreshFor(kit, req, current);
      }
      shortenTimeout(req.header, performance.now() - started);
      return current;
    },
  };
}

async function replayUnary(
  kit: CallKit,
  next: Next,
  req: Req,
  token: string,
  started: number,
  error: unknown,
) {
  const plan = replayPlan(kit, req, token, started);
  for (let failure = error; ; ) {
    const current = await plan.next(failure);
    try {
      if (kit.proofs !== undefined) await prove(kit, req, current);
      const res = await next(req);
      kit.proven?.(current);
      return res;
    } catch (again) {
      failure = again;
    }
  }
}

/** A unary call with `token`; on an auth error, refreshed and replayed (see replayPlan). */
export function unary(kit: CallKit, next: Next, req: UnaryRequest, token: string, waited: boolean) {
  const started = performance.now();
  kit.setToken(req, token);
  const fail = (error: unknown) => replayUnary(kit, next, req, token, started, error);
  const { proven } = kit;
  const ok =
    waited && proven !== undefined
      ? (res: UnaryResponse | StreamResponse) => {
          proven(token);
          return res;
        }
      : undefined;
  if (kit.proofs !== undefined) {
    return prove(kit, req, token)
      .then(() => next(req))
      .then(ok, fail);
  }
  let sent: Promise<UnaryResponse | StreamResponse>;
  try {
    sent = next(req);
  } catch (error) {
    return fail(error);
  }
  return sent.then(ok, fail);
}

/**
 * A server-streaming call with `token`; refused before its first message (by `next` or the first
 * read), it is refreshed and replayed with the recorded request (see replayPlan).
 */
export function serverStream(
  kit: CallKit,
  next: Next,
  req: StreamRequest,
  token: string,
  waited: boolean,
) {
  const started = performance.now();
  // The transport consumes the request iterable: record it as the first attempt reads it, and
  // hand a replay a fresh iterable over the same messages.
  const input = recordedInput(req.message);
  const plan = replayPlan(kit, req, token, started);
  const { proven } = kit;
  const send = () => {
    const go = () => next({ ...req, message: input() } as StreamRequest) as Promise<StreamResponse>;
    return kit.proofs === undefined ? go() : prove(kit, req, plan.current()).then(go);
  };
  const attempt = (): Promise<StreamResponse> =>
    send().then(watch, (error: unknown) => plan.next(error).then(attempt));
  const watch = (res: StreamResponse) =>
    watchReads(
      res,
      (error) => plan.next(error).then(attempt),
      (error) => {
        if (kit.isAuthError(error)) kit.source.invalidate(plan.current());
      },
      (waited || plan.current() !== token) && proven ? () => proven(plan.current()) : undefined,
    );
  kit.setToken(req, token);
  try {
    return attempt();
  } catch (error) {
    return plan.next(error).then(attempt);
  }
}

/** Awaits a token; failures become the ConnectError the call ends with. */
export async function tokenOrConnectError(token: Promise<string>, req: Req): Promise<string> {
  try {
    return await token;
  } catch (error) {
    const { signal } = req;
    // The call's own signal says why: Canceled, or DeadlineExceeded from Connect's deadline.
    if (signal.aborted) throw ConnectError.from(abortReason(signal), Code.Canceled);
    if (error instanceof TokenFetchError) {
      throw new ConnectError(error.message, error.code, undefined, undefined, error);
    }
    throw ConnectError.from(error, Code.Unavailable);
  }
}
