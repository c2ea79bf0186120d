import { Code, createClient } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { describe, expect, it } from "vitest";
import type { DemoServer } from "../../demo/server/server.js";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";
import { bearer, drain, fetchToken, postJson, startTestServer } from "./fixtures.js";

/** A native gRPC (h2c) client for the server's gRPC port. */
function grpcClient(server: DemoServer, token: string | undefined) {
  if (!server.grpcUrl) throw new Error("server is not in behind-envoy mode");
  const transport = createGrpcTransport({ baseUrl: server.grpcUrl, interceptors: [bearer(token)] });
  return createClient(DemoService, transport);
}

describe("behind-envoy mode", () => {
  it("serves native gRPC over h2c to a client with a token from the token port", async () => {
    const server = await startTestServer({ behindEnvoy: true });
    expect(server.grpcUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(server.grpcUrl).not.toBe(server.url);
    const client = grpcClient(server, await fetchToken(server));
    expect((await client.whoAmI({})).subject).toBe("alice");
    const { items, error } = await drain(client.ticks({ count: 3 }));
    expect(error).toBeUndefined();
    expect(items.map((tick) => tick.n)).toEqual([1, 2, 3]);
  });

  it("answers Unauthenticated to gRPC calls without a valid token", async () => {
    const server = await startTestServer({ behindEnvoy: true });
    await expect(grpcClient(server, undefined).whoAmI({})).rejects.toMatchObject({
      code: Code.Unauthenticated,
    });
    await expect(grpcClient(server, "garbage").whoAmI({})).rejects.toMatchObject({
      code: Code.Unauthenticated,
    });
  });

  it("serves only gRPC on the gRPC port, leaving gRPC-Web and Connect to Envoy", async () => {
    const server = await startTestServer({ behindEnvoy: true });
    const token = await fetchToken(server);
    for (const create of [createConnectTransport, createGrpcWebTransport]) {
      const transport = create({
        baseUrl: server.grpcUrl ?? "",
        httpVersion: "2",
        interceptors: [bearer(token)],
      });
      // The server answers HTTP 415 (unsupported content type), which clients see as Unknown.
      await expect(createClient(DemoService, transport).whoAmI({})).rejects.toMatchObject({
        code: Code.Unknown,
      });
    }
  });

  it("serves the token endpoint, JWKS and test routes on the token port without CORS", async () => {
    const server = await startTestServer({ behindEnvoy: true, testMode: true });
    const origin = { origin: "http://localhost:5173" };
    const res = await postJson(server.tokenUrl, { username: "bob", password: "builder" }, origin);
    expect(res.status).toBe(200);
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
    expect((await fetch(server.jwksUrl)).status).toBe(200);
    expect((await fetch(`${server.url}/test/stats`)).status).toBe(200);
    expect((await fetch(`${server.url}/demo.v1.DemoService/WhoAmI`)).status).toBe(404);
  });

  it("shares one issuer, so revoking on the token port rejects calls on the gRPC port", async () => {
    const server = await startTestServer({ behindEnvoy: true, testMode: true });
    const client = grpcClient(server, await fetchToken(server));
    await client.whoAmI({});
    expect((await postJson(`${server.url}/test/revoke`, {})).status).toBe(204);
    await expect(client.whoAmI({})).rejects.toMatchObject({ code: Code.Unauthenticated });
    expect(server.stats()).toMatchObject({ unauthenticated: 1, calls: { WhoAmI: 2 } });
  });

  it("close() ends an open gRPC stream promptly", async () => {
    const server = await startTestServer({ behindEnvoy: true });
    const client = grpcClient(server, await fetchToken(server));
    const stream = client.ticks({ count: 3, intervalMs: 5000 })[Symbol.asyncIterator]();
    expect((await stream.next()).value?.n).toBe(1);
    const started = Date.now();
    await server.close();
    await expect(stream.next()).rejects.toBeDefined();
    expect(Date.now() - started).toBeLessThan(1000);
  });
});
