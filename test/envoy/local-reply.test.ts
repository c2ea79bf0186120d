import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type ServerResponse,
} from "node:http";
import type { AddressInfo } from "node:net";
import { create } from "@bufbuild/protobuf";
import { Code, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import {
  type ClientReadableStream,
  GrpcWebClientBase,
  type GrpcWebClientBaseOptions,
  type RpcError,
} from "grpc-web";
import { errors, jwtVerify } from "jose";
import { describe, expect, it, onTestFinished } from "vitest";
import { DEFAULT_USERS } from "../../demo/server/credentials.js";
import { type DemoServer, startDemoServer } from "../../demo/server/server.js";
import { demoMethods } from "../../demo/shared/grpc-web-methods.js";
import {
  DemoService,
  type Tick,
  TicksRequestSchema,
  WhoAmIRequestSchema,
} from "../../gen/demo/v1/demo_pb.js";
import { createGrpcWebInterceptors } from "../../src/grpc-web.js";
import { createAuthInterceptor, createTokenSource } from "../../src/index.js";
import { useXmlHttpRequest } from "../helpers/xhr.js";
import { codeOf } from "../server/fixtures.js";
import {
  arr,
  at,
  hcmOf,
  httpFilterConfig,
  type JsonObject,
  loadEnvoyConfig,
  obj,
  str,
} from "./envoy-yaml.js";
import { localReplyFor } from "./local-reply.js";
import { passwordTokens } from "./password-tokens.js";

// Without an Envoy binary, this suite checks the other half of the local_reply_config contract:
// it answers rejected calls exactly as envoy.yaml's mappers shape jwt_authn's local replies
// (local-reply.ts models Envoy's rewrite) and shows what real clients make of that answer.

// The real grpc-web runtime in Node needs an XMLHttpRequest; xhr2 provides one (test-only global).
useXmlHttpRequest();

const shipped = loadEnvoyConfig();
const [USERNAME, PASSWORD] = Object.entries(DEFAULT_USERS)[0] ?? ["", ""];

/**
 * A stand-in for Envoy in front of the combined demo server: jwt_authn's decision (401 without a
 * valid token, 403 for another audience) answered as `config`'s local_reply_config shapes it;
 * accepted calls are proxied unchanged.
 */
async function startEdge(config: JsonObject, demo: DemoServer): Promise<string> {
  const provider = obj(
    at(httpFilterConfig(config, "envoy.filters.http.jwt_authn"), "providers", "demo"),
    "jwt_authn provider demo",
  );
  const issuer = str(provider.issuer, "provider issuer");
  const audiences = arr(provider.audiences, "provider audiences").map((a) => str(a, "audience"));

  /** jwt_authn's verdict: undefined to let the call through, else its status and details. */
  async function verdict(req: IncomingMessage) {
    const match = /^Bearer (.+)$/.exec(req.headers.authorization ?? "");
    if (!match?.[1]) return { status: 401, body: "Jwt is missing" };
    try {
      await jwtVerify(match[1], demo.issuer.publicKey, { issuer, audience: audiences });
      return undefined;
    } catch (e) {
      if (e instanceof errors.JWTClaimValidationFailed && e.claim === "aud") {
        return { status: 403, body: "Audiences in Jwt are not allowed" };
      }
      return { status: 401, body: "Jwt verification fails" };
    }
  }

  const target = new URL(demo.url);
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    void verdict(req).then(
      (rejected) => {
        if (rejected) {
          const reply = localReplyFor(config, {
            ...rejected,
            requestContentType: req.headers["content-type"],
            headers: { "www-authenticate": 'Bearer realm="edge"' },
          });
          res.writeHead(reply.status, reply.headers).end(reply.body);
          return;
        }
        const upstream = httpRequest(
          { host: target.hostname, port: target.port, path: req.url, method: req.method },
          (answer) => {
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(res);
          },
        );
        for (const [name, value] of Object.entries(req.headers)) {
          if (value !== undefined && name !== "host") upstream.setHeader(name, value);
        }
        req.pipe(upstream);
      },
      (e: unknown) => {
        // A modelling error (see local-reply.ts) must fail the test, not hang it.
        res.writeHead(500, { "content-type": "text/plain" }).end(String(e));
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  onTestFinished(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** The demo backend (combined mode) for the current test, closed when it finishes. */
async function startDemo(options: { jwtAudience?: string } = {}): Promise<DemoServer> {
  const demo = await startDemoServer({ port: 0, ...options });
  onTestFinished(() => demo.close());
  return demo;
}

/** A token source whose first token the edge rejects; later ones come from the demo. */
function tokensStartingWithABadOne(demo: DemoServer) {
  const real = passwordTokens(demo.tokenUrl, USERNAME, PASSWORD);
  let fetches = 0;
  const tokens = createTokenSource({
    fetchToken: async () => (fetches++ === 0 ? "not.a-valid.jwt" : real.getToken()),
  });
  return { tokens, fetches: () => fetches };
}

function grpcWebClient(options: GrpcWebClientBaseOptions = {}) {
  return new GrpcWebClientBase({ format: "binary", ...options });
}

function whoAmI(client: GrpcWebClientBase, url: string) {
  return client.unaryCall(
    `${url}/demo.v1.DemoService/WhoAmI`,
    create(WhoAmIRequestSchema),
    {},
    demoMethods.whoAmI,
  );
}

/** The ticks of a grpc-web server stream, or the error that ended it. */
function ticks(client: GrpcWebClientBase, url: string, count: number) {
  const stream: ClientReadableStream<Tick> = client.serverStreaming(
    `${url}/demo.v1.DemoService/Ticks`,
    create(TicksRequestSchema, { count }),
    {},
    demoMethods.ticks,
  );
  return new Promise<number[]>((resolve, reject) => {
    const seen: number[] = [];
    stream.on("data", (tick) => seen.push(tick.n));
    stream.on("error", reject);
    stream.on("end", () => resolve(seen));
  });
}

function connectClient(
  transport: typeof createGrpcWebTransport | typeof createConnectTransport,
  baseUrl: string,
  interceptors: Interceptor[] = [],
) {
  return createClient(DemoService, transport({ baseUrl, interceptors }));
}

describe("an edge rejection shaped by envoy.yaml's local_reply_config", () => {
  it("answers a gRPC-Web call without a token with HTTP 200, grpc-status 16 and no body", async () => {
    const edge = await startEdge(shipped, await startDemo());
    const res = await fetch(`${edge}/demo.v1.DemoService/WhoAmI`, {
      method: "POST",
      headers: { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" },
      body: new Uint8Array(5),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("grpc-status")).toBe("16");
    expect(res.headers.get("grpc-message")).toBeTruthy();
    expect(await res.text()).toBe("");
  });

  it("reaches Google's grpc-web runtime as code 16, not Unknown", async () => {
    const edge = await startEdge(shipped, await startDemo());
    const error = (await whoAmI(grpcWebClient(), edge).catch((e: RpcError) => e)) as RpcError;
    expect(error.code).toBe(16);
  });

  it("lets grpc-web-auth replay a grpc-web unaryCall once with a fresh token", async () => {
    const demo = await startDemo();
    const edge = await startEdge(shipped, demo);
    const { tokens, fetches } = tokensStartingWithABadOne(demo);
    let replays = 0;
    const client = grpcWebClient(createGrpcWebInterceptors(tokens, { onReplay: () => replays++ }));
    expect((await whoAmI(client, edge)).subject).toBe(USERNAME);
    expect(replays).toBe(1);
    expect(fetches()).toBe(2);
  });

  it("lets grpc-web-auth replay a grpc-web server stream once with a fresh token", async () => {
    const demo = await startDemo();
    const edge = await startEdge(shipped, demo);
    const { tokens } = tokensStartingWithABadOne(demo);
    let replays = 0;
    const client = grpcWebClient(createGrpcWebInterceptors(tokens, { onReplay: () => replays++ }));
    expect(await ticks(client, edge, 3)).toEqual([1, 2, 3]);
    expect(replays).toBe(1);
  });

  it("reaches Connect's gRPC-Web transport as Unauthenticated, and grpc-web-auth replays once", async () => {
    const demo = await startDemo();
    const edge = await startEdge(shipped, demo);
    expect(await codeOf(connectClient(createGrpcWebTransport, edge).whoAmI({}))).toBe(
      Code.Unauthenticated,
    );
    const { tokens } = tokensStartingWithABadOne(demo);
    let replays = 0;
    const client = connectClient(createGrpcWebTransport, edge, [
      createAuthInterceptor(tokens, { onReplay: () => replays++ }),
    ]);
    expect((await client.whoAmI({})).subject).toBe(USERNAME);
    expect(replays).toBe(1);
  });

  it("leaves the plain HTTP 401 for the Connect protocol, which Connect reads as Unauthenticated", async () => {
    const demo = await startDemo();
    const edge = await startEdge(shipped, demo);
    const res = await fetch(`${edge}/demo.v1.DemoService/WhoAmI`, {
      method: "POST",
      headers: { "content-type": "application/json", "connect-protocol-version": "1" },
      body: "{}",
    });
    expect(res.status).toBe(401);
    expect(res.headers.get("grpc-status")).toBeNull();
    const { tokens } = tokensStartingWithABadOne(demo);
    let replays = 0;
    const client = connectClient(createConnectTransport, edge, [
      createAuthInterceptor(tokens, { onReplay: () => replays++ }),
    ]);
    expect((await client.whoAmI({})).subject).toBe(USERNAME);
    expect(replays).toBe(1);
  });

  it("reaches both gRPC-Web clients as PermissionDenied (7) for a token of another audience, without a replay", async () => {
    const demo = await startDemo({ jwtAudience: "some-other-api" });
    const edge = await startEdge(shipped, demo);
    const tokens = passwordTokens(demo.tokenUrl, USERNAME, PASSWORD);
    let replays = 0;
    const onReplay = () => replays++;
    const runtime = grpcWebClient(createGrpcWebInterceptors(tokens, { onReplay }));
    const error = (await whoAmI(runtime, edge).catch((e: RpcError) => e)) as RpcError;
    expect(error.code).toBe(7);
    const connect = connectClient(createGrpcWebTransport, edge, [
      createAuthInterceptor(tokens, { onReplay }),
    ]);
    expect(await codeOf(connect.whoAmI({}))).toBe(Code.PermissionDenied);
    expect(replays).toBe(0);
  });

  it("is needed: with jwt_authn's plain 401, the runtime's unaryCall fails with Unknown (2) and is not replayed", async () => {
    const bare = structuredClone(shipped);
    delete hcmOf(bare).local_reply_config;
    const demo = await startDemo();
    const edge = await startEdge(bare, demo);
    const { tokens } = tokensStartingWithABadOne(demo);
    let replays = 0;
    const client = grpcWebClient(createGrpcWebInterceptors(tokens, { onReplay: () => replays++ }));
    const error = (await whoAmI(client, edge).catch((e: RpcError) => e)) as RpcError;
    expect(error.code).toBe(2);
    expect(replays).toBe(0);
  });
});
