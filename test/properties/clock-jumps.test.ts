import { createClient, createContextValues } from "@connectrpc/connect";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";
import { createAuthInterceptor, createTokenSource } from "../../src/index.js";
import { createAuthority } from "../helpers/authority.js";
import { startBackend } from "../helpers/backend.js";
import {
  callIdKey,
  createCallLog,
  interceptorViolations,
  recordAttempts,
  recordingSource,
  tagCalls,
} from "../helpers/call-recorder.js";
import { collectTicks } from "../helpers/fault-world.js";
import { type ProcessWatch, watchProcess } from "../helpers/leak-watch.js";
import { propertyConfig } from "../helpers/property-config.js";
import { sleep } from "../helpers/wait.js";

// The wall clock jumps (NTP, a laptop's clock set by hand, a VM resumed) while calls go on. The
// source measures a token's age as the larger of wall-clock and monotonic time, so a jump
// forward costs at most one early refresh, and a jump back never keeps a token past its life.

/** Tokens live this long by the service's (real) clock; the source refreshes after half. */
const LIFETIME_MS = 150;
/** Room for a stalled process; a source that kept tokens past their life would be far beyond. */
const HANDOUT_SLACK_MS = 100;
const HOUR = 3_600_000;

/** One step: maybe the clock jumps, time passes, then calls go out (together or one by one). */
interface Step {
  jumpTo: number | undefined;
  sleepMs: number;
  unary: number;
  streams: number;
  together: boolean;
}

const step: fc.Arbitrary<Step> = fc.record({
  jumpTo: fc.option(
    fc.oneof(
      fc.constantFrom(-3 * HOUR, -5_000, -100, 0, 100, 5_000, 3 * HOUR),
      fc.integer({ min: -3 * HOUR, max: 3 * HOUR }),
    ),
    { nil: undefined },
  ),
  // Unbiased, so sleeps past the lifetime come up as often as short ones.
  sleepMs: fc.constantFrom(0, 30, 90, 270),
  unary: fc.integer({ min: 0, max: 3 }),
  streams: fc.integer({ min: 0, max: 2 }),
  together: fc.boolean(),
});

const realNow = Date.now;

async function runScenario(steps: Step[], watch: ProcessWatch): Promise<string[]> {
  const violations: string[] = [];
  const authority = createAuthority();
  // The service keeps real time and knows when each token dies.
  const diesAt = new Map<string, number>();
  const arrivedAt = new Map<string, number>();
  authority.accepts = (token) => (diesAt.get(token) ?? 0) > realNow();
  const backend = await startBackend(authority);
  let fetches = 0;
  let offset = 0;
  const clock = vi.spyOn(Date, "now").mockImplementation(() => realNow() + offset);
  const tokens = createTokenSource({
    // The app reads expires_in and turns it into a time on the local (jumping) clock.
    fetchToken: async () => {
      const token = `token-${++fetches}`;
      diesAt.set(token, realNow() + LIFETIME_MS);
      arrivedAt.set(token, performance.now());
      return { token, expiresAt: Date.now() + LIFETIME_MS };
    },
  });
  const log = createCallLog();
  const client = createClient(
    DemoService,
    backend.transport("router", [
      tagCalls(),
      createAuthInterceptor(recordingSource(tokens, log)),
      recordAttempts(log),
    ]),
  );
  const startedAt = performance.now();
  let forwardJumps = 0;
  let nextCall = 0;
  const tagged = () => ({ contextValues: createContextValues().set(callIdKey, ++nextCall) });
  try {
    for (const o of steps) {
      if (o.jumpTo !== undefined) {
        if (o.jumpTo > offset) forwardJumps++;
        offset = o.jumpTo;
      }
      // The generated pause between steps: real time passing is part of the scenario.
      await sleep(o.sleepMs);
      const calls = [
        ...Array.from({ length: o.unary }, () => () => client.whoAmI({}, tagged())),
        ...Array.from(
          { length: o.streams },
          () => () => collectTicks(client.ticks({ count: 2 }, tagged())),
        ),
      ];
      const results: PromiseSettledResult<unknown>[] = [];
      if (o.together) results.push(...(await Promise.allSettled(calls.map((call) => call()))));
      else for (const call of calls) results.push(...(await Promise.allSettled([call()])));
      for (const result of results) {
        if (result.status === "rejected") violations.push(`a call failed: ${result.reason}`);
      }
    }
    for (const handout of log.handouts) {
      // How old the token was when the caller asked; a token fetched for the caller is younger.
      const age = handout.askedAtMs - (arrivedAt.get(handout.token) ?? Number.NEGATIVE_INFINITY);
      if (age >= LIFETIME_MS + HANDOUT_SLACK_MS) {
        violations.push(`a token was handed out ${Math.round(age)} ms after it arrived`);
      }
    }
    // A refresh every half lifetime of real time, plus at most one per jump forward.
    const elapsed = Math.round(performance.now() - startedAt);
    const allowed = 2 + forwardJumps + Math.floor(elapsed / (LIFETIME_MS / 2));
    if (fetches > allowed) {
      violations.push(
        `${fetches} fetches in ${elapsed} ms with ${forwardJumps} jumps forward (at most ${allowed})`,
      );
    }
    violations.push(...interceptorViolations(log));
    if (watch.unhandledRejections.length > 0) violations.push("an unhandled rejection");
    if (watch.consoleCalls().length > 0) violations.push("something was printed to the console");
    return violations;
  } finally {
    clock.mockRestore();
    tokens.clear();
    await backend.close();
    watch.reset();
  }
}

let watch: ProcessWatch;
beforeAll(() => {
  watch = watchProcess();
});
afterAll(() => watch.stop());

describe("clock jumps while calls go on", () => {
  it("cost at most one early refresh per jump forward and never keep a token past its lifetime", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 2, maxLength: 5 }), async (steps) => {
        expect(await runScenario(steps, watch)).toEqual([]);
      }),
      propertyConfig(20),
    );
  }, 120_000);
});
