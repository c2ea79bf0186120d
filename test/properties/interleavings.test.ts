import {
  type Client,
  Code,
  ConnectError,
  createClient,
  createContextValues,
  type Interceptor,
} from "@connectrpc/connect";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";
import {
  createAuthInterceptor,
  createTokenSource,
  passwordGrant,
  TokenFetchCode,
  TokenFetchError,
  type TokenSource,
} from "../../src/index.js";
import { type Authority, createAuthority } from "../helpers/authority.js";
import { type Backend, startBackend } from "../helpers/backend.js";
import {
  type CallLog,
  type CallStage,
  callIdKey,
  createCallLog,
  interceptorViolations,
  recordAttempts,
  recordingSource,
  tagCalls,
} from "../helpers/call-recorder.js";
import { collectTicks } from "../helpers/fault-world.js";
import { echoStatus, hang } from "../helpers/hostile-endpoint.js";
import { type ProcessWatch, watchProcess } from "../helpers/leak-watch.js";
import { propertyConfig } from "../helpers/property-config.js";
import { startTokenEndpoint, TEST_USER, type TokenEndpoint } from "../helpers/token-endpoint.js";
import { sleep } from "../helpers/wait.js";

// Random interleavings of concurrent unary and streaming calls, revocations on the server, a
// service that refuses every token or cannot be reached for a while, token endpoint failures,
// callers that abort at random points, logouts and clock jumps. Whatever the order, every call
// settles, no call is sent more than twice (and replayed only after Unauthenticated), at most one
// token fetch is in flight, token fetches stay within bursts plus the failures' backoff windows, no token is handed out after the source was told the server rejected
// it, and once the faults stop and the app signs out (which ends the backoff) calls succeed.

type WorldKind = "in-process" | "loopback";
type Fault = "500" | "timeout" | "401";
type AbortPlan =
  | { kind: "none" }
  | { kind: "after"; ms: number }
  | { kind: "at"; stage: CallStage };
type Op =
  | { kind: "unary"; at: number; abort: AbortPlan }
  | { kind: "stream"; at: number; count: number; failAfter: number; abort: AbortPlan }
  | { kind: "revoke"; at: number }
  | { kind: "refuse"; at: number; forMs: number }
  | { kind: "outage"; at: number; forMs: number }
  | { kind: "fault"; at: number; fault: Fault; forMs: number }
  | { kind: "jump"; at: number; offsetMs: number }
  | { kind: "clear"; at: number };

const at = fc.integer({ min: 0, max: 60 });
const abortPlan: fc.Arbitrary<AbortPlan> = fc.oneof(
  { weight: 4, arbitrary: fc.constant({ kind: "none" as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("after" as const), ms: fc.nat(40) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("at" as const),
      stage: fc.constantFrom<CallStage>("token", "refresh", "attempt-1", "attempt-2"),
    }),
  },
);
const HOUR = 3_600_000;
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({ kind: fc.constant("unary" as const), at, abort: abortPlan }),
  },
  {
    weight: 3,
    arbitrary: fc
      .record({
        kind: fc.constant("stream" as const),
        at,
        count: fc.integer({ min: 1, max: 3 }),
        // Mostly healthy streams; sometimes the server ends one with Unauthenticated mid-way.
        failAfter: fc.oneof(
          { weight: 3, arbitrary: fc.constant(0) },
          fc.integer({ min: 1, max: 2 }),
        ),
        abort: abortPlan,
      })
      .map((s) => ({ ...s, failAfter: s.failAfter < s.count ? s.failAfter : 0 })),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("revoke" as const), at }) },
  {
    // The service refuses every token for a while (keys rotated, a bad deploy).
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("refuse" as const),
      at,
      forMs: fc.integer({ min: 5, max: 80 }),
    }),
  },
  {
    // The service cannot be reached for a while: calls fail with Unavailable, not to be replayed.
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("outage" as const),
      at,
      forMs: fc.integer({ min: 5, max: 80 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("fault" as const),
      at,
      fault: fc.constantFrom<Fault>("500", "timeout", "401"),
      forMs: fc.integer({ min: 5, max: 120 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("jump" as const),
      at,
      offsetMs: fc.oneof(fc.integer({ min: -2 * HOUR, max: 2 * HOUR }), fc.constant(0)),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("clear" as const), at }) },
);
const scenario = fc.array(op, { minLength: 1, maxLength: 14 });

/** Far longer than any call here can legitimately take (token timeouts are 150-250 ms). */
const SETTLE_BOUND_MS = 5_000;
/** Codes a call may end with in these scenarios; Canceled only when aborted or signed out. */
const ALLOWED = new Set([Code.Unauthenticated, Code.Unavailable, Code.Canceled]);

const realNow = Date.now;

/** How the token source gets its tokens in one world, with a fault switch and a flight count. */
interface TokenBackend {
  tokens: TokenSource;
  setFault(fault: Fault | undefined): void;
  /** Fetches under way now, and the most there ever were at once. */
  inFlight(): number;
  maxInFlight(): number;
  /** Fetches started so far (a fetch's retries inside ky count once). */
  fetches(): number;
  close(): Promise<void>;
}

/** An in-process fetchToken that mints from the authority; counts flights exactly. */
function inProcessBackend(authority: Authority): TokenBackend {
  let fault: Fault | undefined;
  let inFlight = 0;
  let maxInFlight = 0;
  let fetches = 0;
  const tokens = createTokenSource({
    timeoutMs: 150,
    async fetchToken({ signal }) {
      fetches++;
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      let ended = false;
      // The source stops waiting when it aborts the signal: that ends the flight for it too.
      const end = () => {
        if (!ended) inFlight--;
        ended = true;
      };
      signal.addEventListener("abort", end, { once: true });
      const mode = fault;
      try {
        // A fetch takes a moment, so the scenario's other steps interleave with it.
        await sleep(1);
        if (mode === "timeout") {
          await new Promise((_, reject) => {
            if (signal.aborted) reject(signal.reason);
            signal.addEventListener("abort", () => reject(signal.reason), { once: true });
          });
        }
        if (mode === "500") {
          throw new TokenFetchError("the token endpoint answered 500", {
            code: TokenFetchCode.Unavailable,
            status: 500,
          });
        }
        if (mode === "401") {
          throw new TokenFetchError("the token endpoint answered 401", {
            code: TokenFetchCode.Unauthenticated,
            status: 401,
          });
        }
        return authority.mint(TEST_USER.username);
      } finally {
        end();
        signal.removeEventListener("abort", end);
      }
    },
  });
  return {
    tokens,
    setFault: (next) => {
      fault = next;
    },
    inFlight: () => inFlight,
    maxInFlight: () => maxInFlight,
    fetches: () => fetches,
    close: async () => {},
  };
}

/**
 * The real loopback endpoint through the library's ky path. A flight starts
 * when the source asks for credentials and ends with its "token" or "error"
 * event (or a clear()).
 */
async function loopbackBackend(authority: Authority): Promise<TokenBackend> {
  const endpoint: TokenEndpoint = await startTokenEndpoint(authority);
  let inFlight = 0;
  let maxInFlight = 0;
  let fetches = 0;
  const tokens = createTokenSource({
    fetchToken: passwordGrant({
      endpoint: endpoint.url,
      credentials: () => {
        fetches++;
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        return TEST_USER;
      },
    }),
    timeoutMs: 250,
  });
  tokens.subscribe((event) => {
    if (event.type === "token" || event.type === "error") inFlight = Math.max(0, inFlight - 1);
    if (event.type === "cleared") inFlight = 0;
  });
  return {
    tokens,
    setFault(fault) {
      endpoint.behave(
        fault === undefined
          ? undefined
          : fault === "timeout"
            ? hang
            : echoStatus(fault === "500" ? 500 : 401),
      );
    },
    inFlight: () => inFlight,
    maxInFlight: () => maxInFlight,
    fetches: () => fetches,
    close: () => endpoint.close(),
  };
}

interface World {
  authority: Authority;
  backend: Backend;
  source: TokenBackend;
  log: CallLog;
  client: Client<typeof DemoService>;
  /** While true, the transport fails every attempt with Unavailable before it leaves. */
  outage: { on: boolean };
}

async function startWorld(kind: WorldKind): Promise<World> {
  const authority = createAuthority({ ttlSeconds: 300 });
  const backend = await startBackend(authority);
  const source =
    kind === "in-process" ? inProcessBackend(authority) : await loopbackBackend(authority);
  const log = createCallLog();
  const outage = { on: false };
  const unreachable: Interceptor = (next) => async (req) => {
    if (outage.on) throw new ConnectError("the service is unreachable", Code.Unavailable);
    return next(req);
  };
  const interceptors = [
    tagCalls(),
    createAuthInterceptor(recordingSource(source.tokens, log)),
    recordAttempts(log),
    unreachable,
  ];
  const client = createClient(DemoService, backend.transport("router", interceptors));
  return { authority, backend, source, log, client, outage };
}

/** The first backoff after a failure lasts at least this long (half of 1 s, jittered). */
const MIN_BACKOFF_MS = 500;

/**
 * The most token fetches a scenario may cause: one per burst that needs a new token (the cold
 * start, each revocation, sign-out, clock jump and mid-stream refusal, and the calls after the
 * faults stop), two per refusal window (the fetch and its refused replacement) and one per failing
 * fetch, each repeated at most once per backoff window the fault lasts. Refused credentials wait
 * for new ones, not for time: while the endpoint answers 401 each call may ask again.
 */
function fetchBound(ops: Op[]): number {
  const calls = ops.filter((o) => o.kind === "unary" || o.kind === "stream").length + 3;
  const windows = (forMs: number) => 1 + Math.ceil(forMs / MIN_BACKOFF_MS);
  let bound = 2;
  for (const o of ops) {
    if (o.kind === "revoke" || o.kind === "clear" || o.kind === "jump") bound += 1;
    if (o.kind === "stream" && o.failAfter > 0) bound += 1;
    if (o.kind === "refuse") bound += 2 * windows(o.forMs);
    if (o.kind === "fault") bound += o.fault === "401" ? calls : windows(o.forMs);
  }
  return bound;
}

type Outcome = { ok: true; value: string } | { ok: false; error: unknown } | "unsettled";

/** Races `work` against the settle bound; the timer never outlives the call. */
async function bounded(work: Promise<string>): Promise<Outcome> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const guard = new Promise<"unsettled">((resolve) => {
    timer = setTimeout(() => resolve("unsettled"), SETTLE_BOUND_MS);
  });
  try {
    return await Promise.race([
      work.then(
        (value): Outcome => ({ ok: true, value }),
        (error: unknown): Outcome => ({ ok: false, error }),
      ),
      guard,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs one scenario; returns every invariant it broke, one line each. */
async function runScenario(kind: WorldKind, ops: Op[], watch: ProcessWatch): Promise<string[]> {
  const w = await startWorld(kind);
  const violations: string[] = [];
  const timers: ReturnType<typeof setTimeout>[] = [];
  const stageAborts = new Map<number, { stage: CallStage; controller: AbortController }>();
  w.log.onStage = (call, stage) => {
    const plan = stageAborts.get(call);
    if (plan?.stage === stage) plan.controller.abort();
  };
  let offset = 0;
  const clock = vi.spyOn(Date, "now").mockImplementation(() => realNow() + offset);
  let faultGeneration = 0;
  let refuseGeneration = 0;
  let outageGeneration = 0;
  let refusing = false;
  const accepts = w.authority.accepts.bind(w.authority);
  w.authority.accepts = (token) => !refusing && accepts(token);
  const signedOut = ops.some((o) => o.kind === "clear");
  let nextCall = 0;

  const call = async (o: Extract<Op, { kind: "unary" | "stream" }>, id: number): Promise<void> => {
    const contextValues = createContextValues().set(callIdKey, id);
    let signal: AbortSignal | undefined;
    if (o.abort.kind !== "none") {
      const controller = new AbortController();
      signal = controller.signal;
      if (o.abort.kind === "after") {
        timers.push(setTimeout(() => controller.abort(), o.abort.ms));
      } else {
        stageAborts.set(id, { stage: o.abort.stage, controller });
      }
    }
    const options = signal === undefined ? { contextValues } : { contextValues, signal };
    const expected =
      o.kind === "unary" ? "alice" : Array.from({ length: o.count }, (_, i) => i + 1).join();
    const outcome = await bounded(
      o.kind === "unary"
        ? w.client.whoAmI({}, options).then((r) => r.subject)
        : collectTicks(w.client.ticks({ count: o.count, failAfter: o.failAfter }, options)).then(
            String,
          ),
    );
    const what = `call ${id} (${o.kind}${o.abort.kind === "none" ? "" : ", aborted"})`;
    if (outcome === "unsettled") {
      violations.push(`${what} did not settle within ${SETTLE_BOUND_MS} ms`);
    } else if (outcome.ok) {
      if (outcome.value !== expected) violations.push(`${what} returned ${outcome.value}`);
      if (o.kind === "stream" && o.failAfter > 0) violations.push(`${what} did not fail mid-way`);
    } else {
      const { code } = ConnectError.from(outcome.error);
      if (!ALLOWED.has(code)) violations.push(`${what} failed with ${Code[code]}`);
      if (code === Code.Canceled && o.abort.kind === "none" && !signedOut) {
        violations.push(`${what} was Canceled though nobody aborted it`);
      }
    }
  };

  const start = (o: Op): Promise<void> => {
    switch (o.kind) {
      case "unary":
      case "stream":
        return call(o, ++nextCall);
      case "revoke":
        w.authority.revokeAll();
        break;
      case "refuse": {
        const generation = ++refuseGeneration;
        refusing = true;
        timers.push(
          setTimeout(() => {
            if (generation === refuseGeneration) refusing = false;
          }, o.forMs),
        );
        break;
      }
      case "outage": {
        const generation = ++outageGeneration;
        w.outage.on = true;
        timers.push(
          setTimeout(() => {
            if (generation === outageGeneration) w.outage.on = false;
          }, o.forMs),
        );
        break;
      }
      case "fault": {
        const generation = ++faultGeneration;
        w.source.setFault(o.fault);
        timers.push(
          setTimeout(() => {
            if (generation === faultGeneration) w.source.setFault(undefined);
          }, o.forMs),
        );
        break;
      }
      case "jump":
        offset = o.offsetMs;
        // The service's clock is not this machine's: it keeps real time.
        w.authority.issuerSkewMs = -offset;
        break;
      case "clear":
        w.source.tokens.clear();
        break;
    }
    return Promise.resolve();
  };

  try {
    await Promise.all(
      ops.map(
        (o) =>
          new Promise<void>((resolve) => {
            timers.push(setTimeout(() => resolve(start(o)), o.at));
          }),
      ),
    );

    // The faults stop: once the last fetch under way is over, calls must succeed.
    faultGeneration++;
    refuseGeneration++;
    refusing = false;
    outageGeneration++;
    w.outage.on = false;
    w.source.setFault(undefined);
    for (let waited = 0; w.source.inFlight() > 0 && waited < SETTLE_BOUND_MS; waited += 5) {
      await sleep(5);
    }
    // A refused replacement token or refused credentials keep failing fast for a while (the
    // backoff, the session end): signing out ends that, so the calls after it must succeed.
    w.source.tokens.clear();
    const tagged = () => ({ contextValues: createContextValues().set(callIdKey, ++nextCall) });
    const finals = await Promise.all([
      bounded(w.client.whoAmI({}, tagged()).then((r) => r.subject)),
      bounded(collectTicks(w.client.ticks({ count: 2 }, tagged())).then(String)),
      bounded(w.client.whoAmI({}, tagged()).then((r) => r.subject)),
    ]);
    finals.forEach((outcome, i) => {
      if (outcome === "unsettled" || !outcome.ok) {
        const why =
          outcome === "unsettled" ? "did not settle" : ConnectError.from(outcome.error).message;
        violations.push(`call ${i + 1} after the faults stopped failed: ${why}`);
      }
    });

    violations.push(...interceptorViolations(w.log));
    if (w.source.maxInFlight() > 1) {
      violations.push(`${w.source.maxInFlight()} token fetches were in flight at once`);
    }
    if (w.source.fetches() > fetchBound(ops)) {
      violations.push(
        `${w.source.fetches()} token fetches, more than the ${fetchBound(ops)} the bursts and backoff windows allow`,
      );
    }
    // A beat for late rejections: what is checked is that none comes.
    await sleep(5);
    if (watch.unhandledRejections.length > 0) {
      violations.push(`unhandled rejections: ${watch.unhandledRejections.map(String).join("; ")}`);
    }
    if (watch.consoleCalls().length > 0) violations.push("something was printed to the console");
    return violations;
  } finally {
    for (const timer of timers) clearTimeout(timer);
    clock.mockRestore();
    w.source.tokens.clear();
    await w.source.close();
    await w.backend.close();
    watch.reset();
  }
}

let watch: ProcessWatch;
beforeAll(() => {
  watch = watchProcess();
});
afterAll(() => watch.stop());

describe.each([
  ["an in-process fetchToken", "in-process", 40],
  ["the loopback token endpoint", "loopback", 15],
] as const)("random interleavings with %s", (_name, kind, runs) => {
  it("settle every call, replay at most once, fetch one token at a time and no more than bursts and backoff windows allow, never reuse a rejected token, and recover", async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async (ops) => {
        expect(await runScenario(kind, ops, watch)).toEqual([]);
      }),
      propertyConfig(runs),
    );
  }, 120_000);
});
