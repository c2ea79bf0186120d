import { Code, ConnectError } from "@connectrpc/connect";
import type { RpcError } from "grpc-web";
import { describe, expect, it } from "vitest";
import { TokenFetchError } from "../../src/index.js";
import { collectTicks, type FaultWorld, settle, startFaultWorld } from "../helpers/fault-world.js";
import { drain, grpcWebTicks, grpcWebWhoAmI, terminals } from "../helpers/grpc-web-calls.js";
import {
  answer200,
  answerAfter,
  type DripStats,
  dripBody,
  echoStatus,
  hang,
  redirectTo,
  resetAfter,
  resetBeforeAnswer,
  stallBody,
  startOtherOrigin,
} from "../helpers/hostile-endpoint.js";
import { makeJwt } from "../helpers/jwt.js";
import { findLeaks, useQuietProcess } from "../helpers/leak-watch.js";
import { startTcpGate } from "../helpers/tcp-gate.js";
import { type Behaviour, TEST_USER } from "../helpers/token-endpoint.js";
import { useXmlHttpRequest } from "../helpers/xhr.js";

useXmlHttpRequest();

// The exhaustive hostile-endpoint matrix. Every row is checked for the same invariants through
// tokens.getToken(), through real Connect calls and through Google's grpc-web runtime: the code from the README's error
// table, a bounded time to settle, the number of requests, an "error" event, no secret in any
// error, event or console line, no unhandled rejection, a next call that fails fast without a
// request (the backoff, or refused credentials not sent again), and one that succeeds once the
// endpoint behaves again and the app called clear().

const DEFAULT_TIMEOUT_MS = 3_000;
/** Room on top of timeoutMs for a loaded 2-core machine; a call that hangs is far beyond it. */
const SLACK_MS = 2_500;
const MB = 1024 * 1024;

const cleanups: (() => Promise<void> | void)[] = [];
const later = (cleanup: () => Promise<void> | void) => cleanups.push(cleanup);
const watch = useQuietProcess(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** How one row breaks the endpoint, and what else it checks. */
interface Fault {
  /** How the endpoint answers while broken. */
  behaviour?: Behaviour;
  /** Puts something in front of the endpoint (see FaultWorldOptions.via). */
  via?: (endpointUrl: string) => Promise<string>;
  /** Undoes what `via` broke; the endpoint's behaviour is restored anyway. */
  recover?: () => Promise<void>;
  /** Checks once the broken call settled. */
  afterSettle?: () => Promise<void> | void;
  /** Values besides the password and minted tokens that must never be printed. */
  secrets?: Record<string, string>;
}

interface FaultRow {
  /** Completes "a token endpoint that …". */
  does: string;
  code: Code;
  /** TokenFetchError.status; undefined when no HTTP answer was read. */
  status: number | undefined;
  /** The requests the endpoint receives while broken: [least, most]. */
  requests: readonly [number, number];
  timeoutMs?: number;
  /** The least time the failure may take (the timeout, a Retry-After): proves the wait. */
  atLeastMs?: number;
  /** The endpoint's error body echoes the credentials: the excerpt must show them redacted. */
  echoes?: boolean;
  setup(): Promise<Fault> | Fault;
}

const status = (code: number): Pick<Fault, "behaviour"> => ({ behaviour: echoStatus(code) });
const ok200 = (body: string, contentType?: string): Pick<Fault, "behaviour"> => ({
  behaviour: answer200(body, contentType),
});

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

function redirectRow(code: number): FaultRow {
  return {
    does: `redirects (${code}) to another origin`,
    code: Code.Internal,
    status: code,
    requests: [1, 1],
    async setup() {
      const other = await startOtherOrigin();
      later(() => other.close());
      return {
        behaviour: redirectTo(code, other.url),
        afterSettle: () => expect(other.requests).toBe(0),
      };
    },
  };
}

function tenMegabyteRow(contentLength: boolean): FaultRow {
  return {
    does: contentLength
      ? "answers 200 with a 10 MB body announced in Content-Length"
      : "answers 200 with a 10 MB body, sent slowly without a Content-Length",
    code: Code.Internal,
    status: 200,
    requests: [1, 1],
    setup() {
      const stats: DripStats = { written: 0, finished: 0, cutShort: 0 };
      return {
        behaviour: dripBody(200, 10 * MB, stats, { contentLength }),
        async afterSettle() {
          // The client hangs up after 64 KiB: the server never gets to send the rest.
          await expect.poll(() => stats.cutShort, { timeout: 5_000 }).toBe(1);
          expect(stats.finished).toBe(0);
          expect(stats.written).toBeLessThan(2 * MB);
        },
      };
    },
  };
}

const failureRows: FaultRow[] = [
  ...[400, 401, 403].map(
    (code): FaultRow => ({
      does: `answers ${code}`,
      code: Code.Unauthenticated,
      status: code,
      requests: [1, 1],
      echoes: true,
      setup: () => status(code),
    }),
  ),
  {
    does: "answers 404",
    code: Code.Internal,
    status: 404,
    requests: [1, 1],
    echoes: true,
    setup: () => status(404),
  },
  {
    does: "answers 429 with a Retry-After of 1 s, within the budget",
    code: Code.Unavailable,
    status: 429,
    requests: [3, 3],
    atLeastMs: 1_900,
    echoes: true,
    setup: () => ({ behaviour: echoStatus(429, { "retry-after": "1" }) }),
  },
  {
    does: "answers 429 with a Retry-After of an hour, beyond the budget",
    code: Code.Unavailable,
    status: 429,
    requests: [1, 1],
    echoes: true,
    setup: () => ({ behaviour: echoStatus(429, { "retry-after": "3600" }) }),
  },
  ...[500, 502, 503].map(
    (code): FaultRow => ({
      does: `answers ${code}`,
      code: Code.Unavailable,
      status: code,
      requests: [3, 3],
      echoes: true,
      setup: () => status(code),
    }),
  ),
  {
    does: "refuses the connection",
    code: Code.Unavailable,
    status: undefined,
    requests: [0, 0],
    setup() {
      let gate: Awaited<ReturnType<typeof startTcpGate>> | undefined;
      return {
        async via(url) {
          gate = await startTcpGate(url);
          later(() => gate?.close());
          await gate.refuse();
          return gate.url;
        },
        recover: async () => gate?.open(),
      };
    },
  },
  {
    does: "drops the connection before answering",
    code: Code.Unavailable,
    status: undefined,
    requests: [3, 3],
    setup: () => ({ behaviour: resetBeforeAnswer }),
  },
  {
    does: "drops the connection right after the headers",
    code: Code.Unavailable,
    status: 200,
    requests: [1, 1],
    setup: () => ({ behaviour: resetAfter() }),
  },
  {
    does: "drops the connection halfway through the body",
    code: Code.Unavailable,
    status: 200,
    requests: [1, 1],
    setup: () => ({ behaviour: resetAfter('{"token":"eyJhbGciOiJFUzI1NiJ9.eyJzdW') }),
  },
  {
    does: "does not answer until after the timeout",
    code: Code.Unavailable,
    status: undefined,
    requests: [1, 1],
    timeoutMs: 500,
    atLeastMs: 450,
    setup: () => ({
      behaviour: answerAfter(2_000, answer200('{"token":"late-token-never-used"}')),
      secrets: { "the late token": "late-token-never-used" },
    }),
  },
  {
    does: "never answers at all",
    code: Code.Unavailable,
    status: undefined,
    requests: [1, 1],
    timeoutMs: 500,
    atLeastMs: 450,
    setup: () => ({ behaviour: hang }),
  },
  {
    does: "sends the headers, then stalls the body past the timeout",
    code: Code.Unavailable,
    status: undefined,
    requests: [1, 1],
    timeoutMs: 500,
    atLeastMs: 450,
    setup: () => ({ behaviour: stallBody }),
  },
  {
    does: "answers 200 with an HTML page",
    code: Code.Internal,
    status: 200,
    requests: [1, 1],
    setup: () => ok200("<!doctype html><title>Sign in</title><form>…</form>", "text/html"),
  },
  {
    does: "answers 200 with invalid JSON",
    code: Code.Internal,
    status: 200,
    requests: [1, 1],
    setup: () => ok200('{"token": "abc'),
  },
  {
    does: "answers 200 with {}",
    code: Code.Internal,
    status: 200,
    requests: [1, 1],
    setup: () => ok200("{}"),
  },
  {
    does: 'answers 200 with {"token": 42}',
    code: Code.Internal,
    status: 200,
    requests: [1, 1],
    setup: () => ok200('{"token": 42}'),
  },
  {
    does: 'answers 200 with {"token": ""}',
    code: Code.Internal,
    status: 200,
    requests: [1, 1],
    setup: () => ok200('{"token": ""}'),
  },
  tenMegabyteRow(false),
  tenMegabyteRow(true),
  redirectRow(302),
  redirectRow(307),
  redirectRow(308),
  {
    does: "hands out a JWT already expired by its own claims (exp before iat)",
    code: Code.Internal,
    status: undefined,
    requests: [1, 1],
    setup() {
      const now = nowSeconds();
      const expired = makeJwt({ sub: "alice", iat: now, exp: now - 300, jti: "expired" });
      return {
        behaviour: answer200(JSON.stringify({ token: expired })),
        secrets: { "the expired JWT": expired },
      };
    },
  },
  {
    does: "hands out a JWT whose claims give it no lifetime (exp equal to iat)",
    code: Code.Internal,
    status: undefined,
    requests: [1, 1],
    setup() {
      const now = nowSeconds();
      const expired = makeJwt({ sub: "alice", iat: now, exp: now, jti: "born-dead" });
      return {
        behaviour: answer200(JSON.stringify({ token: expired })),
        secrets: { "the expired JWT": expired },
      };
    },
  },
  {
    does: "hands out an OAuth token whose expires_in is 0",
    code: Code.Internal,
    status: undefined,
    requests: [1, 1],
    setup: () => ({
      behaviour: answer200('{"access_token":"oauth-token-born-dead","expires_in":0}'),
      secrets: { "the expired access token": "oauth-token-born-dead" },
    }),
  },
];

/** Starts the world for a row with the endpoint broken as the row says. */
async function breakEndpoint(row: FaultRow): Promise<{ w: FaultWorld; fault: Fault }> {
  const fault = await row.setup();
  const w = await startFaultWorld({
    timeoutMs: row.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    ...(fault.via === undefined ? {} : { via: fault.via }),
  });
  later(() => w.close());
  if (fault.behaviour !== undefined) w.endpoint.behave(fault.behaviour);
  return { w, fault };
}

function expectTokenFetchError(error: unknown, row: FaultRow): TokenFetchError {
  expect(error).toBeInstanceOf(TokenFetchError);
  const failure = error as TokenFetchError;
  expect(failure.code).toBe(row.code);
  expect(failure.status).toBe(row.status);
  if (row.echoes) {
    expect(failure.bodyExcerpt).toContain("[redacted]");
    expect((failure.bodyExcerpt ?? "").length).toBeLessThanOrEqual(121);
  }
  return failure;
}

function expectSettledInTime(ms: number, row: FaultRow) {
  expect(ms).toBeLessThan((row.timeoutMs ?? DEFAULT_TIMEOUT_MS) + SLACK_MS);
  if (row.atLeastMs !== undefined) expect(ms).toBeGreaterThanOrEqual(row.atLeastMs);
}

function expectRequests(w: FaultWorld, row: FaultRow) {
  expect(w.endpoint.requests).toBeGreaterThanOrEqual(row.requests[0]);
  expect(w.endpoint.requests).toBeLessThanOrEqual(row.requests[1]);
}

/** The events of one failed fetch: refused credentials end the session first. */
function failureEvents(row: FaultRow): string[] {
  return row.code === Code.Unauthenticated ? ["session-ended", "error"] : ["error"];
}

/** One fetch failed: one "error" event with the row's code, and no token event. */
function expectOneErrorEvent(w: FaultWorld, row: FaultRow) {
  expect(w.events.map((event) => event.type)).toEqual(failureEvents(row));
  const event = w.events.at(-1);
  expect(event?.type === "error" && event.error.code).toBe(row.code);
  if (row.code === Code.Unauthenticated) {
    expect(w.events[0]).toEqual({ type: "session-ended", reason: "credentials-refused" });
  }
}

/** Nothing the test saw holds the password, a minted token or a row's secret. */
function expectNoLeaks(w: FaultWorld, fault: Fault, values: unknown[]) {
  const secrets: Record<string, string> = { "the password": TEST_USER.password, ...fault.secrets };
  w.authority.minted.forEach((token, i) => {
    secrets[`minted token ${i}`] = token;
  });
  expect(findLeaks([...values, ...w.events, ...watch().consoleCalls()], secrets)).toEqual([]);
}

/**
 * Calls that needed a token failed in `ms` on one failed fetch: in time, with the row's requests
 * and one "error" event, and no call went out without a token or was replayed.
 */
async function expectCallsFailedOnOneFetch(w: FaultWorld, row: FaultRow, fault: Fault, ms: number) {
  expectSettledInTime(ms, row);
  expectRequests(w, row);
  await fault.afterSettle?.();
  expectOneErrorEvent(w, row);
  expect(w.authority.seen).toEqual([]);
  expect(w.replays).toEqual([]);
}

/**
 * Makes the endpoint behave again and signs out, which ends the backoff and forgets the refused
 * credentials: the next call fetches.
 */
async function recover(w: FaultWorld, fault: Fault) {
  w.endpoint.behave(undefined);
  await fault.recover?.();
  w.tokens.clear();
}

describe.each(failureRows)("a token endpoint that $does", (row) => {
  it(`fails getToken() with ${Code[row.code]} in bounded time, leaks nothing, and recovers`, async () => {
    const { w, fault } = await breakEndpoint(row);

    const { error, ms } = await settle(() => w.tokens.getToken());

    expectTokenFetchError(error, row);
    expectSettledInTime(ms, row);
    expectRequests(w, row);
    await fault.afterSettle?.();
    expectOneErrorEvent(w, row);
    expect(w.tokens.peek()).toBeUndefined();

    // Until the backoff ends (Internal, Unavailable) or the credentials change (Unauthenticated),
    // the failure is repeated without a request, even though the endpoint works again.
    w.endpoint.behave(undefined);
    const requests = w.endpoint.requests;
    const fast = await settle(() => w.tokens.getToken());
    expect(fast.error).toBeInstanceOf(TokenFetchError);
    expect(fast.error).toMatchObject({ code: row.code, repeated: true });
    expect(fast.ms).toBeLessThan(500);
    expect(w.endpoint.requests).toBe(requests);
    const failed = failureEvents(row).length;
    expect(w.events.slice(failed).every((event) => event.type === "error")).toBe(true);
    const afterFast = w.events.length;

    await recover(w, fault);
    const token = await w.tokens.getToken();
    expect(w.authority.minted).toEqual([token]);
    expect(w.events.slice(afterFast).map((event) => event.type)).toEqual(["cleared", "token"]);
    expectNoLeaks(w, fault, [error, fast.error]);
  });

  it(`fails concurrent unary and streaming calls with ${Code[row.code]} caused by the TokenFetchError, leaks nothing, and recovers`, async () => {
    const { w, fault } = await breakEndpoint(row);

    const started = performance.now();
    const results = await Promise.allSettled([
      w.client.whoAmI({}),
      collectTicks(w.client.ticks({ count: 2 })),
    ]);
    const ms = performance.now() - started;

    const errors = results.map((result) => (result.status === "rejected" ? result.reason : result));
    for (const error of errors) {
      expect(error).toBeInstanceOf(ConnectError);
      expect((error as ConnectError).code).toBe(row.code);
      const cause = expectTokenFetchError((error as ConnectError).cause, row);
      // Both calls waited on the same fetch.
      expect(cause).toBe((errors[0] as ConnectError).cause);
    }
    await expectCallsFailedOnOneFetch(w, row, fault, ms);

    await recover(w, fault);
    expect((await w.client.whoAmI({})).subject).toBe("alice");
    expect(await collectTicks(w.client.ticks({ count: 2 }))).toEqual([1, 2]);
    expect(w.authority.minted).toHaveLength(1);
    expect(w.authority.unauthenticated).toBe(0);
    expectNoLeaks(w, fault, errors);
  });

  it(`fails grpc-web unary and streaming calls with code ${row.code}, one end each, leaks nothing, and recovers`, async () => {
    const { w, fault } = await breakEndpoint(row);
    const url = w.backend.url;

    const started = performance.now();
    const [unary, stream] = await Promise.all([
      grpcWebWhoAmI(w.grpcWeb, url).then(
        () => undefined,
        (error: RpcError) => error,
      ),
      drain(grpcWebTicks(w.grpcWeb, url, { count: 2 })),
    ]);
    const ms = performance.now() - started;

    expect(unary?.code).toBe(row.code);
    expect(stream.error?.code).toBe(row.code);
    expect(stream.ticks).toEqual([]);
    expect(terminals(stream)).toEqual([`error:${row.code}`]);
    // drain() waits a beat after the terminal event for stragglers.
    await expectCallsFailedOnOneFetch(w, row, fault, ms - 50);

    await recover(w, fault);
    expect((await grpcWebWhoAmI(w.grpcWeb, url)).subject).toBe("alice");
    expect((await drain(grpcWebTicks(w.grpcWeb, url, { count: 2 }))).ticks).toEqual([1, 2]);
    expect(w.authority.minted).toHaveLength(1);
    expectNoLeaks(w, fault, [unary, stream.error]);
  });
});

function b64url(text: string): string {
  return Buffer.from(text).toString("base64url");
}
const JWT_HEADER = b64url(JSON.stringify({ alg: "ES256", typ: "JWT" }));

const unreadableTokens: [string, string][] = [
  ["an opaque token that is not a JWT", "opaque-3f9c2d7e1a8b4c60"],
  ["a JWT whose payload is not base64url", `${JWT_HEADER}.%%not*base64%%.c2ln`],
  ["a JWT whose payload is base64url but not JSON", `${JWT_HEADER}.${b64url("not json")}.c2ln`],
  [
    "a JWT whose exp is not a number",
    `${JWT_HEADER}.${b64url(JSON.stringify({ sub: "alice", exp: "tomorrow" }))}.c2ln`,
  ],
];

describe.each(unreadableTokens)("a token endpoint that hands out %s", (_name, token) => {
  const fault: Fault = { secrets: { "the unreadable token": token } };

  it("has getToken() use it as an opaque token until it is refreshed, without printing it", async () => {
    const w = await startFaultWorld();
    later(() => w.close());
    w.endpoint.behave(answer200(JSON.stringify({ token })));

    expect(await w.tokens.getToken()).toBe(token);
    expect(await w.tokens.getToken()).toBe(token);
    expect(w.endpoint.requests).toBe(1);
    expect(w.tokens.peek()).toEqual({ expiresAt: undefined, fresh: true });

    w.endpoint.behave(undefined);
    const next = await w.tokens.refresh(token);
    expect(w.authority.minted).toEqual([next]);
    expect(w.events).toMatchObject([
      { type: "token", expiresAt: undefined },
      { type: "rejected" },
      { type: "token", expiresAt: expect.any(Number) },
    ]);
    expectNoLeaks(w, fault, []);
  });

  it("has calls send it until the server rejects it, then replay once with a new token", async () => {
    const w = await startFaultWorld();
    later(() => w.close());
    w.endpoint.behave(answer200(JSON.stringify({ token })));
    let valid = true;
    const accepts = w.authority.accepts;
    w.authority.accepts = (sent) => (sent === token && valid) || accepts(sent);

    expect((await w.client.whoAmI({})).subject).toBe("alice");
    expect(await collectTicks(w.client.ticks({ count: 2 }))).toEqual([1, 2]);
    expect((await w.client.whoAmI({})).subject).toBe("alice");
    expect(w.authority.seen).toEqual([token, token, token]);
    expect(w.endpoint.requests).toBe(1);

    valid = false;
    w.endpoint.behave(undefined);
    expect((await w.client.whoAmI({})).subject).toBe("alice");
    expect(await collectTicks(w.client.ticks({ count: 2 }))).toEqual([1, 2]);
    expect(w.replays).toHaveLength(1);
    expect(w.authority.seen.slice(3)).toEqual([
      token,
      ...w.authority.minted,
      ...w.authority.minted,
    ]);
    expect(w.endpoint.requests).toBe(2);
    expectNoLeaks(w, fault, []);
  });
});
