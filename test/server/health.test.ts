import { Code, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { describe, expect, it } from "vitest";
import type { DemoServer } from "../../demo/server/server.js";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";
import {
  Health,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from "../../gen/grpc/health/v1/health_pb.js";
import { browserTransports, codeOf, startTestServer } from "./fixtures.js";

/** A native gRPC (h2c) client of `service` on the server's gRPC port, sending no token. */
function grpcClient<S extends typeof Health | typeof DemoService>(server: DemoServer, service: S) {
  if (!server.grpcUrl) throw new Error("server is not in behind-envoy mode");
  return createClient(service, createGrpcTransport({ baseUrl: server.grpcUrl }));
}

/** Whether `next` (a pending stream read) is still unsettled after `ms`. */
async function stillPending(next: Promise<unknown>, ms = 300): Promise<boolean> {
  const settled = next.then(
    () => false,
    () => false,
  );
  return Promise.race([settled, new Promise<boolean>((resolve) => setTimeout(resolve, ms, true))]);
}

describe("grpc.health.v1.Health in behind-envoy mode", () => {
  it("answers Check over h2c gRPC without a token: SERVING for the server and the DemoService", async () => {
    const server = await startTestServer({ behindEnvoy: true });
    const health = grpcClient(server, Health);
    expect((await health.check({ service: "" })).status).toBe(ServingStatus.SERVING);
    expect((await health.check({ service: DemoService.typeName })).status).toBe(
      ServingStatus.SERVING,
    );
  });

  it("fails Check on an unknown service with NotFound, as the health protocol specifies", async () => {
    const server = await startTestServer({ behindEnvoy: true });
    const health = grpcClient(server, Health);
    expect(await codeOf(health.check({ service: "demo.v1.NoSuchService" }))).toBe(Code.NotFound);
  });

  it("still requires a token for the DemoService on the same port", async () => {
    const server = await startTestServer({ behindEnvoy: true });
    expect(await codeOf(grpcClient(server, DemoService).whoAmI({}))).toBe(Code.Unauthenticated);
    const stream = grpcClient(server, DemoService).ticks({ count: 1 });
    expect(await codeOf(stream[Symbol.asyncIterator]().next())).toBe(Code.Unauthenticated);
  });

  it("does not count health checks as demo calls or as Unauthenticated answers", async () => {
    const server = await startTestServer({ behindEnvoy: true });
    await grpcClient(server, Health).check({ service: "" });
    await codeOf(grpcClient(server, Health).check({ service: "unknown" }));
    expect(server.stats().calls).toEqual({});
    expect(server.stats().unauthenticated).toBe(0);
  });

  it("sends the current status on Watch, then stays open until the client cancels", async () => {
    const server = await startTestServer({ behindEnvoy: true });
    const abort = new AbortController();
    const stream = grpcClient(server, Health)
      .watch({ service: DemoService.typeName }, { signal: abort.signal })
      [Symbol.asyncIterator]();
    expect((await stream.next()).value?.status).toBe(ServingStatus.SERVING);

    const next = stream.next();
    expect(await stillPending(next)).toBe(true);
    abort.abort();
    expect(await codeOf(next)).toBe(Code.Canceled);
  });

  it("reports an unknown service as SERVICE_UNKNOWN on Watch without ending the call", async () => {
    const server = await startTestServer({ behindEnvoy: true });
    const abort = new AbortController();
    const stream = grpcClient(server, Health)
      .watch({ service: "demo.v1.NoSuchService" }, { signal: abort.signal })
      [Symbol.asyncIterator]();
    expect((await stream.next()).value?.status).toBe(ServingStatus.SERVICE_UNKNOWN);
    const next = stream.next();
    expect(await stillPending(next)).toBe(true);
    abort.abort();
    expect(await codeOf(next)).toBe(Code.Canceled);
  });

  it("ends an open Watch promptly when the server closes", async () => {
    const server = await startTestServer({ behindEnvoy: true });
    const stream = grpcClient(server, Health).watch({ service: "" })[Symbol.asyncIterator]();
    expect((await stream.next()).value?.status).toBe(ServingStatus.SERVING);
    const started = Date.now();
    await server.close();
    expect(await codeOf(stream.next())).not.toBe("ok");
    expect(Date.now() - started).toBeLessThan(1000);
  });
});

describe.each(browserTransports)(
  "grpc.health.v1.Health on the combined server over $name",
  ({ create }) => {
    it("answers Check without a token", async () => {
      const server = await startTestServer();
      const health = createClient(Health, create({ baseUrl: server.url }));
      expect((await health.check({ service: "" })).status).toBe(ServingStatus.SERVING);
      expect(await codeOf(health.check({ service: "unknown" }))).toBe(Code.NotFound);
    });
  },
);
