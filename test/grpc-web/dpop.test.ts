/** DPoP through Google's grpc-web runtime (in Node, over xhr2), against the demo backend. */
import { GrpcWebClientBase } from "grpc-web";
import { describe, expect, it } from "vitest";
import { createGrpcWebInterceptors } from "../../src/grpc-web.js";
import { createTokenSource, dpopProofs, passwordGrant } from "../../src/index.js";
import { drain, grpcWebTicks, grpcWebWhoAmI, terminals } from "../helpers/grpc-web-calls.js";
import { useXmlHttpRequest } from "../helpers/xhr.js";
import { startTestServer } from "../server/fixtures.js";

useXmlHttpRequest();

async function makeWorld() {
  const server = await startTestServer({ testMode: true });
  const tokens = createTokenSource({
    fetchToken: passwordGrant({
      endpoint: server.tokenUrl,
      credentials: { username: "alice", password: "wonderland" },
    }),
    dpop: dpopProofs(),
  });
  const client = new GrpcWebClientBase({
    format: "binary",
    ...createGrpcWebInterceptors(tokens, { baseUrl: server.url }),
  });
  return { server, client };
}

describe("DPoP through Google's grpc-web runtime", () => {
  it("sends a bound token with a fresh proof on unary and streaming calls", async () => {
    const { server, client } = await makeWorld();
    expect((await grpcWebWhoAmI(client, server.url)).subject).toBe("alice");
    const outcome = await drain(grpcWebTicks(client, server.url, { count: 3 }));
    expect(outcome.ticks).toEqual([1, 2, 3]);
    expect(terminals(outcome)).toEqual(["end"]);
    expect(server.stats()).toMatchObject({ dpopTokensIssued: 1, dpopCalls: 2, dpopKeys: 1 });
  });

  it("answers a nonce challenge with one replay, unary and streaming", async () => {
    const { server, client } = await makeWorld();
    await grpcWebWhoAmI(client, server.url);
    server.dpop.setRequireNonces(true);
    expect((await grpcWebWhoAmI(client, server.url)).subject).toBe("alice");
    expect(server.stats().dpopNonceChallenges).toBe(1);
    const outcome = await drain(grpcWebTicks(client, server.url, { count: 2 }));
    expect(outcome.ticks).toEqual([1, 2]);
    expect(server.stats().dpopNonceChallenges).toBe(1);
    expect(server.stats().tokenRequests).toBe(1);
  });

  it("replays a stream refused by a nonce challenge once", async () => {
    const { server, client } = await makeWorld();
    await grpcWebWhoAmI(client, server.url);
    server.dpop.setRequireNonces(true);
    const outcome = await drain(grpcWebTicks(client, server.url, { count: 2 }));
    expect(outcome.ticks).toEqual([1, 2]);
    expect(terminals(outcome)).toEqual(["end"]);
    expect(server.stats().dpopNonceChallenges).toBe(1);
  });
});
