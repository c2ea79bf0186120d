import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type createClient } from "@connectrpc/connect";
import type { GrpcWebClientBase, Metadata, RpcError } from "grpc-web";
import { describe, expect, it } from "vitest";
import { demoMethods } from "../../demo/shared/grpc-web-methods.js";
import {
  type DemoService,
  TicksRequestSchema,
  WhoAmIRequestSchema,
} from "../../gen/demo/v1/demo_pb.js";
import { createAuthInterceptor } from "../../src/index.js";
import type { EdgeRejection } from "../helpers/backend.js";
import { drain, grpcWebTicks, grpcWebWhoAmI, terminals } from "../helpers/grpc-web-calls.js";
import { TEST_USER } from "../helpers/token-endpoint.js";
import { sleep, waitFor } from "../helpers/wait.js";
import { type World as SharedWorld, startWorld as startSharedWorld } from "../helpers/world.js";
import { useXmlHttpRequest } from "../helpers/xhr.js";

useXmlHttpRequest();

interface World extends Omit<SharedWorld, "client"> {
  /** Google's grpc-web runtime through the library's interceptors. */
  client: GrpcWebClientBase;
  /** A Connect gRPC-Web client on the same source. */
  connectClient: ReturnType<typeof createClient<typeof DemoService>>;
}

/** The shared world with a 20 ms token endpoint, seen through Google's grpc-web runtime. */
async function startWorld(options: { edge?: EdgeRejection; timeoutMs?: number } = {}) {
  const w = await startSharedWorld({
    delayMs: 20,
    ...(options.edge ? { edge: options.edge } : {}),
    source: { timeoutMs: options.timeoutMs ?? 5_000 },
  });
  const connectClient = w.connect("grpc-web", [createAuthInterceptor(w.tokens)]);
  const world: World = { ...w, client: w.grpcWeb, connectClient };
  return world;
}

function whoAmI(w: World, metadata: Metadata = {}) {
  return grpcWebWhoAmI(w.client, w.url, metadata);
}

function startTicks(
  w: World,
  request: { count?: number; failAfter?: number; intervalMs?: number },
) {
  return grpcWebTicks(w.client, w.url, request);
}

describe("createGrpcWebInterceptors with the real grpc-web runtime", () => {
  it("sends the token on unaryCall and makes one token request for 20 concurrent calls", async () => {
    const w = await startWorld();
    const results = await Promise.all(Array.from({ length: 20 }, () => whoAmI(w)));
    expect(results.every((r) => r.subject === "alice")).toBe(true);
    expect(w.endpoint.requests).toBe(1);
    expect(w.authority.seen.every((t) => t === w.authority.minted[0])).toBe(true);
  });

  it("streams every tick with the token and exactly one end", async () => {
    const w = await startWorld();
    const outcome = await drain(startTicks(w, { count: 4 }));
    expect(outcome.ticks).toEqual([1, 2, 3, 4]);
    expect(terminals(outcome)).toEqual(["end"]);
  });

  it("never changes the caller's metadata object", async () => {
    const w = await startWorld();
    const metadata: Metadata = { "x-trace": "abc" };
    await whoAmI(w, metadata);
    expect(metadata).toEqual({ "x-trace": "abc" });
  });

  it("replays unary, streaming and callback calls once after revocation", async () => {
    const w = await startWorld();
    await whoAmI(w);
    w.authority.revokeAll();
    const callback = new Promise<string>((resolve, reject) => {
      w.client.rpcCall(
        `${w.url}/demo.v1.DemoService/WhoAmI`,
        create(WhoAmIRequestSchema),
        {},
        demoMethods.whoAmI,
        (error, response) => (error ? reject(error) : resolve(response.subject)),
      );
    });
    const [unary, stream, viaCallback] = await Promise.all([
      whoAmI(w),
      drain(startTicks(w, { count: 3 })),
      callback,
    ]);
    expect(unary.subject).toBe("alice");
    expect(stream.ticks).toEqual([1, 2, 3]);
    expect(terminals(stream)).toEqual(["end"]);
    expect(viaCallback).toBe("alice");
    expect(w.replays).toHaveLength(3);
    expect(w.endpoint.requests).toBe(2);
  });

  it("gives code 16 to the caller after one replay when the server keeps refusing", async () => {
    const w = await startWorld();
    w.authority.accepts = () => false;
    const unary = await whoAmI(w).catch((e: RpcError) => e);
    expect((unary as RpcError).code).toBe(16);
    expect(w.authority.seen).toHaveLength(2);
    const requests = w.endpoint.requests;
    // The replacement was refused too: the next call fails fast, without a fetch or a send.
    const fast = await drain(startTicks(w, {}));
    expect(fast.error?.code).toBe(16);
    expect(terminals(fast)).toHaveLength(1);
    expect(w.authority.seen).toHaveLength(2);
    expect(w.endpoint.requests).toBe(requests);
    // clear() ends the backoff: a stream gets the same one replay, then the caller code 16.
    w.tokens.clear();
    const stream = await drain(startTicks(w, {}));
    expect(stream.error?.code).toBe(16);
    expect(terminals(stream)).toHaveLength(1);
    expect(w.authority.seen).toHaveLength(4);
    expect(new Set(w.authority.seen).size).toBe(4);
  });

  it("does not replay a stream that already delivered data", async () => {
    const w = await startWorld();
    const outcome = await drain(startTicks(w, { count: 5, failAfter: 2 }));
    expect(outcome.ticks).toEqual([1, 2]);
    expect(outcome.error?.code).toBe(16);
    expect(terminals(outcome)).toHaveLength(1);
    expect(w.replays).toHaveLength(0);
  });

  it("replays unary and streaming calls after an edge rejection answered trailers-only", async () => {
    const w = await startWorld({ edge: "trailers-only" });
    await whoAmI(w);
    w.authority.revokeAll();
    const outcome = await drain(startTicks(w, { count: 2 }));
    expect(outcome.ticks).toEqual([1, 2]);
    expect(terminals(outcome)).toEqual(["end"]);
    w.authority.revokeAll();
    expect((await whoAmI(w)).subject).toBe("alice");
    expect(w.replays).toHaveLength(2);
  });

  it("replays a stream after a plain-text HTTP 401 from an edge, which grpc-web first reports as Unknown", async () => {
    const w = await startWorld({ edge: "http-401" });
    await whoAmI(w);
    w.authority.revokeAll();
    const outcome = await drain(startTicks(w, { count: 2 }));
    expect(outcome.ticks).toEqual([1, 2]);
    expect(outcome.events).toEqual(["data", "data", "status:0", "metadata", "end"]);
    expect(w.replays).toHaveLength(1);
  });

  it("reports a non-gRPC error answer by its HTTP status, not as Unknown", async () => {
    const w = await startWorld({ edge: "http-401" });
    w.authority.accepts = () => false;
    const outcome = await drain(startTicks(w, {}));
    expect(outcome.error?.code).toBe(16);
    expect(terminals(outcome)).toHaveLength(1);
  });

  it("cannot replay unaryCall after a plain-text 401: the runtime rejects with Unknown first (edges must answer gRPC-shaped)", async () => {
    const w = await startWorld({ edge: "http-401" });
    await whoAmI(w);
    w.authority.revokeAll();
    const error = (await whoAmI(w).catch((e: RpcError) => e)) as RpcError;
    expect(error.code).toBe(2);
    expect(w.replays).toHaveLength(0);
    // The source still has the revoked token: a later stream replays and repairs it.
    expect((await drain(startTicks(w, { count: 1 }))).ticks).toEqual([1]);
    expect((await whoAmI(w)).subject).toBe("alice");
  });

  it("stops all events after cancel()", async () => {
    const w = await startWorld();
    const stream = startTicks(w, { count: 8, intervalMs: 50 });
    const events: string[] = [];
    for (const type of ["data", "metadata", "status", "error", "end"] as const) {
      stream.on(type as "end", () => events.push(type));
    }
    // Mid-stream: a few of the ticks, 50 ms apart, have been sent.
    await sleep(150);
    stream.cancel();
    // Longer than the rest of the stream would take: nothing may arrive in it.
    await sleep(600);
    // xhr2 delivers the body only at the end, so nothing arrived before the cancel.
    expect(events).toEqual([]);
  });

  it("shares one token with a Connect client on the same source", async () => {
    const w = await startWorld();
    await Promise.all([
      whoAmI(w),
      w.connectClient.whoAmI({}),
      drain(startTicks(w, { count: 1 })),
      w.connectClient.whoAmI({}),
    ]);
    expect(w.endpoint.requests).toBe(1);
    expect(new Set(w.authority.seen)).toEqual(new Set([w.authority.minted[0]]));
    // A revocation seen by the Connect client is one refresh for both.
    w.authority.revokeAll();
    await w.connectClient.whoAmI({});
    await whoAmI(w);
    expect(w.endpoint.requests).toBe(2);
  });

  for (const [status, code] of [
    [401, 16],
    [503, 14],
  ] as const) {
    it(`fails with code ${code} when the token endpoint answers ${status}, without secrets`, async () => {
      const w = await startWorld();
      w.endpoint.behave((_req, res) => {
        res.writeHead(status).end();
      });
      const unary = (await whoAmI(w).catch((e: RpcError) => e)) as RpcError;
      expect(unary.code).toBe(code);
      const stream = await drain(startTicks(w, {}));
      expect(stream.error?.code).toBe(code);
      expect(terminals(stream)).toHaveLength(1);
      expect(`${unary.message} ${stream.error?.message}`).not.toContain(TEST_USER.password);
    });
  }

  it("fails with code 13 when the token endpoint answers garbage", async () => {
    const w = await startWorld();
    w.endpoint.behave((_req, res) => {
      res.writeHead(200, { "content-type": "text/html" }).end("<html>");
    });
    expect(((await whoAmI(w).catch((e: RpcError) => e)) as RpcError).code).toBe(13);
  });

  it("fails with code 4 when the call's deadline passes while waiting for a token", async () => {
    const w = await startWorld();
    w.endpoint.behave(() => new Promise(() => {}));
    const deadline = { deadline: String(Date.now() + 150) };
    const error = (await whoAmI(w, deadline).catch((e: RpcError) => e)) as RpcError;
    expect(error.code).toBe(4);
    const stream = w.client.serverStreaming(
      `${w.url}/demo.v1.DemoService/Ticks`,
      create(TicksRequestSchema),
      { deadline: String(Date.now() + 150) },
      demoMethods.ticks,
    );
    expect((await drain(stream)).error?.code).toBe(4);
  });

  it("fails with code 1 for calls waiting on a fetch that clear() abandoned", async () => {
    const w = await startWorld();
    w.endpoint.behave(() => new Promise(() => {}));
    const pending = whoAmI(w).catch((e: RpcError) => e);
    await waitFor(() => w.endpoint.inFlight === 1, {
      what: "the token fetch to reach the endpoint",
    });
    w.tokens.clear();
    expect(((await pending) as RpcError).code).toBe(1);
  });

  it("keeps Connect's behaviour for the same failure (a cross-check of the codes)", async () => {
    const w = await startWorld();
    w.endpoint.behave((_req, res) => {
      res.writeHead(503).end();
    });
    const error = await w.connectClient.whoAmI({}).catch((e: unknown) => ConnectError.from(e));
    expect((error as ConnectError).code).toBe(Code.Unavailable);
  });
});
