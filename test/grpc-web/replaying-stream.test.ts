import type { ClientReadableStream, Metadata, Request, StreamInterceptor } from "grpc-web";
import { MethodDescriptor, RpcError } from "grpc-web";
import { describe, expect, it, vi } from "vitest";
import { createGrpcWebInterceptors } from "../../src/grpc-web.js";
import { createTokenSource, type ReplayEvent, TokenFetchError } from "../../src/index.js";
import { sleep, waitFor } from "../helpers/wait.js";

// The odd corner where a hand-written fake is right: grpc-web's event orders, scripted
// exactly as its runtime emits them (its W() sends error before status; metadata comes
// when the response completes). Real clients in Chromium cover the same paths end to end.

type Event =
  | ["data", unknown]
  | ["metadata", Metadata]
  | ["error", number]
  | ["status", number]
  | ["end"];

const success: Event[] = [
  ["data", 1],
  ["data", 2],
  ["status", 0],
  ["metadata", { "x-attempt": "ok" }],
  ["end"],
];
/** An error in the body trailer: error, status, metadata, then end. */
const bodyTrailer = (code: number): Event[] => [
  ["error", code],
  ["status", code],
  ["metadata", { "x-attempt": "rejected" }],
  ["end"],
];
/** A trailers-only answer (or HTTP 401): metadata, error, status, and no end. */
const trailersOnly = (code: number): Event[] => [
  ["metadata", { "x-attempt": "rejected" }],
  ["error", code],
  ["status", code],
];

/** A stand-in for the runtime's stream that plays a script on the next macrotask. */
class ScriptedStream implements ClientReadableStream<unknown> {
  // biome-ignore lint/suspicious/noExplicitAny: listeners take a different type per event.
  readonly listeners = new Map<string, ((value?: any) => void)[]>();
  cancelled = false;
  constructor(script: Event[]) {
    setTimeout(() => {
      for (const [type, value] of script) {
        if (this.cancelled) return;
        const payload =
          type === "error"
            ? new RpcError(value as number, "scripted", {})
            : type === "status"
              ? { code: value, details: "", metadata: {} }
              : value;
        for (const listener of this.listeners.get(type) ?? []) listener(payload);
      }
    });
  }
  // biome-ignore lint/suspicious/noExplicitAny: as above.
  on(type: string, callback: (value?: any) => void): this {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), callback]);
    return this;
  }
  removeListener(): void {}
  cancel(): void {
    this.cancelled = true;
  }
}

function setup(scripts: Event[][], tokenOptions: { fail?: TokenFetchError } = {}) {
  let fetches = 0;
  const tokens = createTokenSource({
    fetchToken: async () => {
      if (tokenOptions.fail) throw tokenOptions.fail;
      fetches++;
      return `token-${fetches}`;
    },
  });
  const replays: ReplayEvent[] = [];
  const { streamInterceptors } = createGrpcWebInterceptors(tokens, {
    onReplay: (e) => replays.push(e),
  });
  const interceptor = streamInterceptors[0] as StreamInterceptor<unknown, unknown>;
  const sent: Metadata[] = [];
  const streams: ScriptedStream[] = [];
  const invoker = (req: Request<unknown, unknown>) => {
    sent.push(req.getMetadata());
    const stream = new ScriptedStream(scripts[streams.length] ?? success);
    streams.push(stream);
    return stream;
  };
  const callerMetadata: Metadata = { "x-trace": "1", Authorization: "Bearer stale" };
  const request = {
    getRequestMessage: () => ({}),
    getMethodDescriptor: () =>
      new MethodDescriptor(
        "/demo.v1.DemoService/Ticks",
        "server_streaming",
        Object,
        Object,
        () => new Uint8Array(),
        () => ({}),
      ),
    getMetadata: () => callerMetadata,
  } as unknown as Request<unknown, unknown>;
  const stream = interceptor.intercept(request, invoker);
  const seen: string[] = [];
  for (const type of ["data", "metadata", "error", "status", "end"] as const) {
    stream.on(type as "data", (value: unknown) => {
      const detail =
        type === "error" || type === "status"
          ? (value as { code: number }).code
          : type === "metadata"
            ? (value as Metadata)["x-attempt"]
            : type === "data"
              ? value
              : "";
      seen.push(`${type}${detail === "" ? "" : `:${String(detail)}`}`);
    });
  }
  let cancelled = false;
  const cancel = stream.cancel.bind(stream);
  stream.cancel = () => {
    cancelled = true;
    cancel();
  };
  /**
   * The call is over: its one terminal event arrived (and the status and metadata a script sends
   * after it, in the same turn). A cancelled call emits nothing: time is then the subject.
   */
  const settled = async () => {
    if (cancelled) return sleep(30);
    await waitFor(() => seen.some((event) => event === "end" || event.startsWith("error")), {
      what: "the stream's terminal event",
    });
    await sleep(0);
  };
  return {
    stream,
    seen,
    sent,
    streams,
    replays,
    tokens,
    callerMetadata,
    settled,
    fetches: () => fetches,
  };
}

describe("the grpc-web stream wrapper", () => {
  it("reports a listener that throws, and still tells the other listeners", async () => {
    const reported = vi.spyOn(console, "error").mockImplementation(() => {});
    const t = setup([success]);
    t.stream.on("data", () => {
      throw new Error("listener broke");
    });
    await t.settled();
    expect(t.seen).toEqual(["data:1", "data:2", "status:0", "metadata:ok", "end"]);
    expect(reported.mock.calls.map(([error]) => (error as Error).message)).toEqual([
      "listener broke",
      "listener broke",
    ]);
    reported.mockRestore();
  });

  it("forwards a successful stream's events in order with one end", async () => {
    const t = setup([success]);
    await t.settled();
    expect(t.seen).toEqual(["data:1", "data:2", "status:0", "metadata:ok", "end"]);
  });

  it("sends a copy of the caller's metadata with the header, leaving the caller's object alone", async () => {
    const t = setup([success]);
    await t.settled();
    expect(t.sent[0]).toEqual({ "x-trace": "1", authorization: "Bearer token-1" });
    expect(t.callerMetadata).toEqual({ "x-trace": "1", Authorization: "Bearer stale" });
  });

  it("shows exactly one terminal event for an error in the body trailer", async () => {
    const t = setup([bodyTrailer(7)]);
    await t.settled();
    expect(t.seen).toEqual(["error:7", "status:7", "metadata:rejected"]);
  });

  it("shows exactly one terminal event for a trailers-only error", async () => {
    const t = setup([trailersOnly(13)]);
    await t.settled();
    expect(t.seen).toEqual(["metadata:rejected", "error:13", "status:13"]);
  });

  for (const [name, rejection] of [
    ["a trailers-only", trailersOnly(16)],
    ["a body-trailer", bodyTrailer(16)],
  ] as const) {
    it(`replays once after ${name} Unauthenticated before any data, leaving no trace of the first attempt`, async () => {
      const t = setup([rejection, success]);
      await t.settled();
      expect(t.seen).toEqual(["data:1", "data:2", "status:0", "metadata:ok", "end"]);
      expect(t.sent.map((m) => m.authorization)).toEqual(["Bearer token-1", "Bearer token-2"]);
      expect(t.replays).toEqual([{ method: "demo.v1.DemoService/Ticks" }]);
    });
  }

  it("gives a second Unauthenticated to the caller and never sends that token again", async () => {
    const t = setup([trailersOnly(16), bodyTrailer(16)]);
    await t.settled();
    expect(t.seen).toEqual(["error:16", "status:16", "metadata:rejected"]);
    expect(t.streams).toHaveLength(2);
    // The replacement was refused too: no new token until the backoff ends or clear().
    await expect(t.tokens.getToken()).rejects.toMatchObject({ code: 16, repeated: true });
    expect(t.fetches()).toBe(2);
    t.tokens.clear();
    expect(await t.tokens.getToken()).toBe("token-3");
  });

  it("does not replay after data; the token is dropped for later calls", async () => {
    const t = setup([[["data", 1], ...bodyTrailer(16)]]);
    await t.settled();
    expect(t.seen).toEqual(["data:1", "error:16", "status:16", "metadata:rejected"]);
    expect(t.streams).toHaveLength(1);
    expect(t.tokens.peek()).toBeUndefined();
  });

  /** What grpc-web emits for a plain-text HTTP answer: Unknown while loading, the HTTP code at completion. */
  const plainHttp = (code: number): Event[] => [
    ["error", 2],
    ["status", 2],
    ["error", 2],
    ["status", 2],
    ["metadata", { "x-attempt": "rejected" }],
    ["error", code],
    ["status", code],
  ];

  it("holds an early Unknown until completion and replays on the HTTP 401 behind it", async () => {
    const t = setup([plainHttp(16), success]);
    await t.settled();
    expect(t.seen).toEqual(["data:1", "data:2", "status:0", "metadata:ok", "end"]);
    expect(t.replays).toHaveLength(1);
  });

  it("reports the code from the HTTP status behind an early Unknown", async () => {
    const t = setup([plainHttp(14)]);
    await t.settled();
    expect(t.seen).toEqual(["metadata:rejected", "error:14", "status:14"]);
  });

  it("reports a held Unknown when the answer ends without another error", async () => {
    const t = setup([
      [["error", 2], ["status", 2], ["metadata", { "x-attempt": "html" }], ["end"]],
    ]);
    await t.settled();
    expect(t.seen).toEqual(["metadata:html", "error:2", "status:2"]);
  });

  it("does not replay on other codes", async () => {
    const t = setup([trailersOnly(7)]);
    await t.settled();
    expect(t.streams).toHaveLength(1);
    expect(t.replays).toHaveLength(0);
  });

  it("cancels before the token arrives without starting the call or emitting anything", async () => {
    const t = setup([success]);
    t.stream.cancel();
    await t.settled();
    expect(t.streams).toHaveLength(0);
    expect(t.seen).toEqual([]);
  });

  it("cancels a running call and emits nothing more", async () => {
    const t = setup([success]);
    await new Promise((resolve) => setTimeout(resolve, 1));
    await Promise.resolve();
    t.stream.cancel();
    await t.settled();
    expect(t.streams[0]?.cancelled).toBe(true);
    expect(t.seen).toEqual([]);
  });

  it("stops calling a listener after removeListener", async () => {
    const t = setup([success]);
    const data: unknown[] = [];
    const listener = (d: unknown) => data.push(d);
    t.stream.on("data", listener);
    t.stream.removeListener("data", listener);
    await t.settled();
    expect(data).toEqual([]);
    expect(t.seen).toContain("data:1");
  });

  it("ends with the error table's code when the token cannot be fetched, without secrets", async () => {
    const t = setup([success], {
      fail: new TokenFetchError("the token endpoint answered 503", { code: 14, status: 503 }),
    });
    await t.settled();
    expect(t.seen).toEqual(["error:14", "status:14"]);
    expect(t.streams).toHaveLength(0);
  });
});
