import type { Message } from "@bufbuild/protobuf";
import { Code, ConnectError, createContextValues, type Interceptor } from "@connectrpc/connect";
import { describe, expect, it, vi } from "vitest";
import {
  type AuthInterceptorOptions,
  createAuthInterceptor,
  createTokenSource,
  skipAuth,
  type TokenSource,
} from "../../src/index.js";
import type { EdgeRejection, TransportKind } from "../helpers/backend.js";
import { useTestClock } from "../helpers/clock.js";
import { startWorld as startSharedWorld, type World } from "../helpers/world.js";

/** The shared world with a 20 ms token endpoint and `client` over `kind`. */
function startWorld(
  kind: TransportKind,
  options: {
    ttlSeconds?: number;
    edge?: EdgeRejection;
    interceptor?: AuthInterceptorOptions;
    inner?: Interceptor[];
  } = {},
): Promise<World> {
  return startSharedWorld({ transport: kind, delayMs: 20, ...options });
}

async function collect(stream: AsyncIterable<{ n: number }>): Promise<number[]> {
  const ns: number[] = [];
  for await (const tick of stream) ns.push(tick.n);
  return ns;
}

const kinds: TransportKind[] = ["router", "grpc-web", "connect"];

describe.each(kinds)("createAuthInterceptor over the %s transport", (kind) => {
  it("sets authorization: Bearer <token> on unary and server-streaming calls", async () => {
    const w = await startWorld(kind);
    expect((await w.client.whoAmI({})).subject).toBe("alice");
    expect(await collect(w.client.ticks({ count: 3 }))).toEqual([1, 2, 3]);
    expect(w.authority.seen).toEqual([w.authority.minted[0], w.authority.minted[0]]);
    expect(w.endpoint.requests).toBe(1);
  });

  it("makes one token request for 100 concurrent cold calls", async () => {
    const w = await startWorld(kind);
    await Promise.all(Array.from({ length: 100 }, () => w.client.whoAmI({})));
    expect(w.endpoint.requests).toBe(1);
    expect(w.authority.unauthenticated).toBe(0);
  });

  it("replays each call once with one refetch after the token was revoked", async () => {
    const w = await startWorld(kind);
    await w.client.whoAmI({});
    w.authority.revokeAll();
    const calls = [
      ...Array.from({ length: 10 }, () => w.client.whoAmI({}).then((r) => r.subject)),
      ...Array.from({ length: 10 }, () => collect(w.client.ticks({ count: 2 })).then(String)),
    ];
    const results = await Promise.all(calls);
    expect(results.filter((r) => r === "alice")).toHaveLength(10);
    expect(results.filter((r) => r === "1,2")).toHaveLength(10);
    expect(w.endpoint.requests).toBe(2);
    expect(w.authority.unauthenticated).toBe(20);
    expect(w.replays).toHaveLength(20);
    expect(w.replays[0]?.method).toMatch(/^demo\.v1\.DemoService\/(WhoAmI|Ticks)$/);
  });

  it("gives the second Unauthenticated to the caller instead of looping, and never sends that token again", async () => {
    const w = await startWorld(kind);
    w.authority.accepts = () => false;
    const unary = await w.client.whoAmI({}).then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    expect(unary?.code).toBe(Code.Unauthenticated);
    expect(w.authority.seen).toHaveLength(2);
    expect(w.endpoint.requests).toBe(2);

    // The replacement was refused too: the next call fails fast, without a fetch or a send.
    const fast = await collect(w.client.ticks({})).then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    expect(fast?.code).toBe(Code.Unauthenticated);
    expect(fast?.cause).toMatchObject({ repeated: true, reason: "token-refused" });
    expect(w.authority.seen).toHaveLength(2);
    expect(w.endpoint.requests).toBe(2);

    // clear() ends the backoff: a stream gets the same one replay, then the caller the error.
    w.tokens.clear();
    const stream = await collect(w.client.ticks({})).then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    expect(stream).toBeInstanceOf(ConnectError);
    expect((stream as ConnectError).code).toBe(Code.Unauthenticated);
    expect(w.authority.seen).toHaveLength(4);
    // Every attempt carried a token the source had not yet seen rejected.
    expect(new Set(w.authority.seen).size).toBe(4);
    expect(w.endpoint.requests).toBe(4);
  });

  it("replays a server stream rejected before its first message and delivers every message", async () => {
    const w = await startWorld(kind);
    await w.client.whoAmI({});
    w.authority.revokeAll();
    expect(await collect(w.client.ticks({ count: 5 }))).toEqual([1, 2, 3, 4, 5]);
    expect(w.replays).toHaveLength(1);
    expect(w.authority.seen.slice(1)).toEqual([w.authority.minted[0], w.authority.minted[1]]);
  });

  it("gives the caller the trailer of the replayed stream, not of the refused attempt", async () => {
    const w = await startWorld(kind);
    await w.client.whoAmI({});
    w.authority.revokeAll();
    let trailer: Headers | undefined;
    const ticks = await collect(w.client.ticks({ count: 2 }, { onTrailer: (t) => (trailer = t) }));
    expect(ticks).toEqual([1, 2]);
    expect(w.replays).toHaveLength(1);
    expect(trailer?.get("x-ticks-served")).toBe("yes");
  });

  it("does not replay a stream that already delivered a message", async () => {
    const w = await startWorld(kind);
    const received: number[] = [];
    const error = await (async () => {
      for await (const tick of w.client.ticks({ count: 5, failAfter: 2 })) received.push(tick.n);
    })().then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    expect(received).toEqual([1, 2]);
    expect(error?.code).toBe(Code.Unauthenticated);
    expect(w.replays).toHaveLength(0);
    expect(w.authority.seen).toHaveLength(1);
    // The source learned the token is bad: the next call fetches another.
    await w.client.whoAmI({});
    expect(w.endpoint.requests).toBe(2);
  });

  it("does not replay on codes other than Unauthenticated", async () => {
    let denials = 0;
    const deny: Interceptor = () => async () => {
      denials++;
      throw new ConnectError("nope", Code.PermissionDenied);
    };
    const w = await startWorld(kind, { inner: [deny] });
    const unary = await w.client.whoAmI({}).then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    expect(unary?.code).toBe(Code.PermissionDenied);
    const stream = await collect(w.client.ticks({})).then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    expect((stream as ConnectError).code).toBe(Code.PermissionDenied);
    expect(denials).toBe(2);
    expect(w.replays).toHaveLength(0);
    expect(w.endpoint.requests).toBe(1);
  });

  it("sends no header and fetches no token for calls marked with skipAuth", async () => {
    const w = await startWorld(kind);
    const contextValues = createContextValues().set(skipAuth, true);
    const error = await w.client.whoAmI({}, { contextValues }).then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    expect(error?.code).toBe(Code.Unauthenticated);
    expect(w.authority.seen).toEqual([undefined]);
    expect(w.endpoint.requests).toBe(0);
  });

  it("uses the configured header name and scheme", async () => {
    const seen: (string | null)[] = [];
    const capture: Interceptor = (next) => async (req) => {
      seen.push(req.header.get("x-token"), req.header.get("authorization"));
      return next(req);
    };
    const w = await startWorld(kind, {
      interceptor: { headerName: "x-token", scheme: "" },
      inner: [capture],
    });
    // The service reads only `authorization`, so it refuses the call: both attempts show the header.
    await w.client.whoAmI({}).catch(() => {});
    expect(seen).toEqual([w.authority.minted[0], null, w.authority.minted[1], null]);
  });

  it("ends the call with DeadlineExceeded when its deadline passes while waiting for a token", async () => {
    const w = await startWorld(kind);
    w.endpoint.behave(() => new Promise(() => {}));
    const error = await w.client.whoAmI({}, { timeoutMs: 150 }).then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    expect(error?.code).toBe(Code.DeadlineExceeded);
  });

  it("ends the call with Canceled when the caller aborts while waiting for a token", async () => {
    const w = await startWorld(kind);
    w.endpoint.behave(() => new Promise(() => {}));
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    const error = await w.client.whoAmI({}, { signal: controller.signal }).then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    expect(error?.code).toBe(Code.Canceled);
  });
});

describe.each([
  ["grpc-web", "http-401"],
  ["grpc-web", "trailers-only"],
  ["connect", "http-401"],
] as const)("createAuthInterceptor over %s behind an edge answering %s", (kind, edge) => {
  it("replays a stream whose rejection comes from next() rather than the first read", async () => {
    const w = await startWorld(kind, { edge });
    await w.client.whoAmI({});
    w.authority.revokeAll();
    expect(await collect(w.client.ticks({ count: 3 }))).toEqual([1, 2, 3]);
    expect((await w.client.whoAmI({})).subject).toBe("alice");
    expect(w.replays).toHaveLength(1);
    expect(w.endpoint.requests).toBe(2);
  });

  it("gives a persistent edge rejection to the caller after one replay", async () => {
    const w = await startWorld(kind, { edge });
    w.authority.accepts = () => false;
    const error = await collect(w.client.ticks({})).then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    expect((error as ConnectError).code).toBe(Code.Unauthenticated);
    expect(w.authority.seen).toHaveLength(2);
  });
});

describe("createAuthInterceptor and the request message of a server stream", () => {
  /** Ticks(count) through [outer, auth, inner] on the router transport; the server needs no token. */
  async function ticksThrough(outer: Interceptor, inner: Interceptor, count: number) {
    const { client, replays, endpoint } = await startSharedWorld({
      outer: [outer],
      inner: [inner],
    });
    const ticks = await collect(client.ticks({ count }));
    return { ticks, replays, tokenRequests: endpoint.requests };
  }

  /**
   * Swaps the caller's request iterable for one that counts how it is read. The first read waits
   * for `holdFirstRead`, when given.
   */
  function countingInput(holdFirstRead?: Promise<void>) {
    const counts = { iterators: 0, reads: 0, closes: 0 };
    const outer: Interceptor = (next) => async (req) => {
      if (!req.stream) return next(req);
      const original = req.message;
      const message: AsyncIterable<Message> = {
        [Symbol.asyncIterator]() {
          counts.iterators++;
          const it = original[Symbol.asyncIterator]();
          return {
            next: async () => {
              if (counts.reads++ === 0) await holdFirstRead;
              return it.next();
            },
            return: (value?: unknown) => {
              counts.closes++;
              return it.return?.(value) ?? Promise.resolve({ done: true, value });
            },
          };
        },
      };
      return next({ ...req, message });
    };
    return { outer, counts };
  }

  /** Refuses the first attempt with Unauthenticated after `touch` looked at its input. */
  function refuseFirst(
    touch: (input: AsyncIterator<unknown>) => Promise<void> | void,
  ): Interceptor {
    let attempts = 0;
    return (next) => async (req) => {
      if (!req.stream || attempts++ > 0) return next(req);
      await touch(req.message[Symbol.asyncIterator]());
      throw new ConnectError("refused", Code.Unauthenticated);
    };
  }

  it("reads the caller's iterable once, though the call ran twice", async () => {
    const { outer, counts } = countingInput();
    const inner = refuseFirst(async (input) => {
      while ((await input.next()).done !== true);
    });
    const result = await ticksThrough(outer, inner, 3);
    expect(result.ticks).toEqual([1, 2, 3]);
    expect(result.replays).toHaveLength(1);
    expect(counts.iterators).toBe(1);
    // One message, then the end: read once between both attempts.
    expect(counts.reads).toBe(2);
  });

  it("gives the replay the message when the refused attempt never read it", async () => {
    const { outer, counts } = countingInput();
    const result = await ticksThrough(
      outer,
      refuseFirst(() => {}),
      4,
    );
    expect(result.ticks).toEqual([1, 2, 3, 4]);
    expect(result.replays).toHaveLength(1);
    expect(counts.reads).toBe(2);
  });

  it("gives the replay the message when the refused attempt closed its input early", async () => {
    const { outer, counts } = countingInput();
    const inner = refuseFirst(async (input) => {
      await input.return?.();
    });
    const result = await ticksThrough(outer, inner, 2);
    expect(result.ticks).toEqual([1, 2]);
    expect(counts.reads).toBe(2);
    // Closing one attempt's input must not close the caller's: the replay still reads it.
    expect(counts.closes).toBe(0);
  });

  it("shares a read still in flight when the refused attempt gave up without waiting", async () => {
    // The first read is held until the replay has been running for a while, so the replay's
    // transport asks for the message while the refused attempt's read of it is still pending.
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const { outer, counts } = countingInput(held);
    let attempts = 0;
    const inner: Interceptor = (next) => async (req) => {
      if (!req.stream) return next(req);
      if (attempts++ === 0) {
        void req.message[Symbol.asyncIterator]().next();
        throw new ConnectError("refused", Code.Unauthenticated);
      }
      setTimeout(release, 50);
      return next(req);
    };
    const result = await ticksThrough(outer, inner, 3);
    expect(result.ticks).toEqual([1, 2, 3]);
    expect(result.replays).toHaveLength(1);
    // The replay waited for the pending read instead of reading past the message.
    expect(counts.reads).toBe(2);
  });

  it("ends the call with the error of a request iterable that fails, and does not replay it", async () => {
    const failing: Interceptor = (next) => async (req) => {
      if (!req.stream) return next(req);
      const message: AsyncIterable<Message> = {
        [Symbol.asyncIterator]: () => ({
          next: () => Promise.reject(new ConnectError("input broke", Code.DataLoss)),
        }),
      };
      return next({ ...req, message });
    };
    const passThrough: Interceptor = (next) => (req) => next(req);
    const error = await ticksThrough(failing, passThrough, 1).then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    expect(error?.code).toBe(Code.DataLoss);
    expect(error?.rawMessage).toBe("input broke");
  });
});

describe("createAuthInterceptor's fast path", () => {
  it("asks getToken() for the first call with each new token, and uses it directly once a call succeeded", async () => {
    const w = await startWorld("router");
    const getToken = vi.spyOn(w.tokens, "getToken");
    await w.client.whoAmI({});
    expect(getToken).toHaveBeenCalledTimes(1);
    await w.client.whoAmI({});
    await collect(w.client.ticks({ count: 2 }));
    expect(getToken).toHaveBeenCalledTimes(1);

    w.tokens.clear();
    await w.client.whoAmI({});
    expect(getToken).toHaveBeenCalledTimes(2);
    await w.client.whoAmI({});
    expect(getToken).toHaveBeenCalledTimes(2);
    expect(w.endpoint.requests).toBe(2);
    expect(w.authority.unauthenticated).toBe(0);
  });

  it("keeps asking getToken() while no call has succeeded with the token", async () => {
    let failing = true;
    const deny: Interceptor = (next) => async (req) => {
      if (failing) throw new ConnectError("down", Code.Unavailable);
      return next(req);
    };
    const failed = await startWorld("router", { inner: [deny] });
    const getFailed = vi.spyOn(failed.tokens, "getToken");
    for (let i = 0; i < 3; i++) await failed.client.whoAmI({}).catch(() => {});
    expect(getFailed).toHaveBeenCalledTimes(3);
    expect(failed.endpoint.requests).toBe(1);
    failing = false;
    await failed.client.whoAmI({});
    expect(getFailed).toHaveBeenCalledTimes(4);
    await failed.client.whoAmI({});
    expect(getFailed).toHaveBeenCalledTimes(4);
  });
});

describe("createAuthInterceptor with short-lived tokens", () => {
  it("uses a 2 s token for 5 s without a single Unauthenticated answer", async () => {
    // The 5 s pass on the moved clock, which the token endpoint and the service read too.
    const clock = useTestClock();
    const w = await startWorld("router", { ttlSeconds: 2 });
    const until = Date.now() + 5_000;
    let calls = 0;
    while (Date.now() < until) {
      await w.client.whoAmI({});
      calls++;
      clock.advance(25);
    }
    expect(calls).toBeGreaterThan(50);
    expect(w.authority.unauthenticated).toBe(0);
    expect(w.replays).toHaveLength(0);
    // 5 s of 2 s tokens refreshed ahead of expiry: a handful of fetches, not one per call.
    expect(w.endpoint.requests).toBeGreaterThanOrEqual(3);
    expect(w.endpoint.requests).toBeLessThan(15);
  });
});

describe("createAuthInterceptor options", () => {
  const tokens = createTokenSource({ fetchToken: async () => "t" });
  const bad: [string, unknown, unknown, RegExp][] = [
    ["a source that is not a TokenSource", {}, undefined, /source/],
    ["an invalid header name", tokens, { headerName: "bad header" }, /headerName/],
    ["a scheme with a space", tokens, { scheme: "Bearer x" }, /scheme/],
    ["an onReplay that is not a function", tokens, { onReplay: 1 }, /onReplay/],
  ];
  for (const [name, source, options, message] of bad) {
    it(`throws a TypeError naming the problem for ${name}`, () => {
      const create = () =>
        createAuthInterceptor(source as TokenSource, options as AuthInterceptorOptions);
      expect(create).toThrow(TypeError);
      expect(create).toThrow(message);
    });
  }
});
