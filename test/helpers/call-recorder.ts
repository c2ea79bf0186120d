import {
  Code,
  ConnectError,
  createContextKey,
  type Interceptor,
  type StreamResponse,
} from "@connectrpc/connect";
import type { TokenSource } from "../../src/index.js";

// Records what the auth interceptor and its token source do per call, so properties can check
// the invariants afterwards: attempts per call, the token each attempt carried, and when the
// source was told a token was rejected.

/** Tags a call so the recorder can tell calls apart; set it in the call's context values. */
export const callIdKey = createContextKey<number>(0, { description: "test: call id" });

/** Where a call is; properties abort calls at these points. */
export type CallStage = "token" | "refresh" | "attempt-1" | "attempt-2";

/** One attempt the interceptor sent to the transport. */
export interface Attempt {
  call: number;
  /** 1 for the first attempt, 2 for the replay. */
  number: number;
  /** The bearer token it carried; undefined when none. */
  token: string | undefined;
  seq: number;
  /** How it ended, as far as this attempt is concerned: "ok", or the code it failed with. */
  outcome?: "ok" | Code;
  /** Messages it delivered before it ended (server streams). */
  messages: number;
}

/** A token the source resolved for a call's getToken() or refresh(). */
export interface Handout {
  call: number | undefined;
  token: string;
  /** The seq at which getToken()/refresh() was called. */
  askedAt: number;
  seq: number;
  /** `performance.now()` when getToken()/refresh() was called: real time, whatever `Date.now()` says. */
  askedAtMs: number;
}

/** The source was told `token` was refused by the server. */
export interface Rejection {
  token: string;
  seq: number;
  via: "refresh" | "invalidate";
}

export interface CallLog {
  /** A global order over everything recorded. */
  next(): number;
  attempts: Attempt[];
  handouts: Handout[];
  rejections: Rejection[];
  /** Called when a call reaches a stage (after the source was asked, before an attempt is sent). */
  onStage: ((call: number, stage: CallStage) => void) | undefined;
}

export function createCallLog(): CallLog {
  let seq = 0;
  return { next: () => ++seq, attempts: [], handouts: [], rejections: [], onStage: undefined };
}

// Connect hands every interceptor of a call the same signal: it identifies the call to the source.
const callBySignal = new WeakMap<AbortSignal, number>();

/** The outermost interceptor: lets the recording source know which call is asking. */
export function tagCalls(): Interceptor {
  return (next) => (req) => {
    callBySignal.set(req.signal, req.contextValues.get(callIdKey));
    return next(req);
  };
}

/** Wraps a token source to record what it hands out and what it is told was rejected. */
export function recordingSource(source: TokenSource, log: CallLog): TokenSource {
  const handOut = (call: number | undefined, token: () => Promise<string>) => {
    const askedAt = log.next();
    const askedAtMs = performance.now();
    return token().then((value) => {
      log.handouts.push({ call, token: value, askedAt, seq: log.next(), askedAtMs });
      return value;
    });
  };
  const callOf = (signal: AbortSignal | undefined) =>
    signal === undefined ? undefined : callBySignal.get(signal);
  return {
    getToken(options) {
      const call = callOf(options?.signal);
      const token = handOut(call, () => source.getToken(options));
      if (call !== undefined) log.onStage?.(call, "token");
      return token;
    },
    refresh(rejected, options) {
      log.rejections.push({ token: rejected, seq: log.next(), via: "refresh" });
      const call = callOf(options?.signal);
      const token = handOut(call, () => source.refresh(rejected, options));
      if (call !== undefined) log.onStage?.(call, "refresh");
      return token;
    },
    invalidate(rejected) {
      log.rejections.push({ token: rejected, seq: log.next(), via: "invalidate" });
      source.invalidate(rejected);
    },
    clear: () => source.clear(),
    subscribe: (listener) => source.subscribe(listener),
    peek: () => source.peek(),
  };
}

/** The innermost interceptor: records each attempt, its token, and how it ended. */
export function recordAttempts(log: CallLog): Interceptor {
  return (next) => async (req) => {
    const call = req.contextValues.get(callIdKey);
    const header = req.header.get("authorization") ?? undefined;
    const attempt: Attempt = {
      call,
      number: log.attempts.filter((a) => a.call === call).length + 1,
      token: header?.startsWith("Bearer ") ? header.slice("Bearer ".length) : header,
      seq: log.next(),
      messages: 0,
    };
    log.attempts.push(attempt);
    if (attempt.number <= 2) log.onStage?.(call, `attempt-${attempt.number}` as CallStage);
    const ended = (error?: unknown) => {
      attempt.outcome ??= error === undefined ? "ok" : ConnectError.from(error).code;
    };
    let res: Awaited<ReturnType<typeof next>>;
    try {
      res = await next(req);
    } catch (error) {
      ended(error);
      throw error;
    }
    if (!res.stream) {
      ended();
      return res;
    }
    const inner = res.message;
    async function* messages() {
      try {
        for await (const message of inner) {
          attempt.messages++;
          yield message;
        }
        ended();
      } catch (error) {
        ended(error);
        throw error;
      }
    }
    return { ...res, message: messages() } as StreamResponse;
  };
}

/**
 * What broke the interceptor's promises, one line each: more than one replay
 * for a call, a replay after anything but an Unauthenticated answer before the
 * first message, an attempt that carried a token other than the one the source
 * just gave that call, and a token handed out after the source was told the
 * server rejected it.
 */
export function interceptorViolations(log: CallLog): string[] {
  const found: string[] = [];
  const calls = new Set(log.attempts.map((a) => a.call));
  for (const call of calls) {
    const attempts = log.attempts.filter((a) => a.call === call);
    if (attempts.length > 2) found.push(`call ${call} was sent ${attempts.length} times`);
    const [first, second] = attempts;
    if (first !== undefined && second !== undefined) {
      if (first.outcome !== Code.Unauthenticated || first.messages > 0) {
        found.push(
          `call ${call} was replayed after its first attempt ended with ${String(first.outcome)} after ${first.messages} messages`,
        );
      }
    }
    for (const attempt of attempts) {
      const given = log.handouts.filter((h) => h.call === call && h.seq < attempt.seq).at(-1);
      if (given === undefined || given.token !== attempt.token) {
        found.push(`call ${call} attempt ${attempt.number} carried a token not just handed to it`);
      }
    }
  }
  for (const handout of log.handouts) {
    const known = log.rejections.find((r) => r.token === handout.token && r.seq < handout.askedAt);
    if (known !== undefined) {
      found.push(
        `a token rejected (via ${known.via}) at #${known.seq} was handed to call ${handout.call} asking at #${handout.askedAt}`,
      );
    }
  }
  return found;
}
