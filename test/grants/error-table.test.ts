import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { inspect } from "node:util";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { describe, expect, it, onTestFinished } from "vitest";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";
import {
  createAuthInterceptor,
  createTokenSource,
  passwordGrant,
  TokenFetchError,
} from "../../src/index.js";
import { createAuthority } from "../helpers/authority.js";
import { startBackend } from "../helpers/backend.js";
import { type Behaviour, startTokenEndpoint, TEST_USER } from "../helpers/token-endpoint.js";

/** Makes one call through the interceptor with the endpoint answering as `behaviour`. */
async function callWith(behaviour: Behaviour, options: { timeoutMs?: number } = {}) {
  const authority = createAuthority();
  const endpoint = await startTokenEndpoint(authority);
  const backend = await startBackend(authority);
  onTestFinished(() => endpoint.close());
  onTestFinished(() => backend.close());
  endpoint.behave(behaviour);
  const tokens = createTokenSource({
    fetchToken: passwordGrant({ endpoint: endpoint.url, credentials: TEST_USER }),
    timeoutMs: options.timeoutMs ?? 5_000,
  });
  const client = createClient(
    DemoService,
    backend.transport("router", [createAuthInterceptor(tokens)]),
  );
  const started = Date.now();
  const error = await client.whoAmI({}).then(
    () => undefined,
    (e: unknown) => e,
  );
  return { error, endpoint, tokens, client, authority, elapsed: Date.now() - started };
}

function expectSafe(error: unknown) {
  const text = `${String(error)} ${inspect(error, { depth: 10 })}`;
  expect(text).not.toContain(TEST_USER.password);
  expect(text).not.toMatch(/ey[A-Za-z0-9_-]{10,}\.ey/);
}

const status =
  (code: number, body = "", headers: Record<string, string> = {}): Behaviour =>
  (_req, res) => {
    res.writeHead(code, { "content-type": "text/plain", ...headers }).end(body);
  };
const json =
  (body: string, contentType = "application/json"): Behaviour =>
  (_req, res) => {
    res.writeHead(200, { "content-type": contentType }).end(body);
  };

describe("the error table: every token fetch failure ends the call with its code", () => {
  const rows: [
    string,
    Behaviour,
    Code,
    { status?: number; requests?: number; message?: RegExp },
  ][] = [
    ["400", status(400, "bad request"), Code.Unauthenticated, { status: 400, requests: 1 }],
    ["401", status(401, "bad credentials"), Code.Unauthenticated, { status: 401, requests: 1 }],
    ["403", status(403, "forbidden"), Code.Unauthenticated, { status: 403, requests: 1 }],
    ["404", status(404, "not found"), Code.Internal, { status: 404, requests: 1 }],
    [
      "429 with a short Retry-After, after retries",
      status(429, "slow down", { "retry-after": "0" }),
      Code.Unavailable,
      { status: 429, requests: 3 },
    ],
    [
      "429 with a Retry-After beyond the budget, without waiting",
      status(429, "slow down", { "retry-after": "120" }),
      Code.Unavailable,
      { status: 429, requests: 1 },
    ],
    ["500, after retries", status(500), Code.Unavailable, { status: 500, requests: 3 }],
    ["502, after retries", status(502), Code.Unavailable, { status: 502, requests: 3 }],
    ["503, after retries", status(503), Code.Unavailable, { status: 503, requests: 3 }],
    ["200 with HTML", json("<html>hi</html>", "text/html"), Code.Internal, { status: 200 }],
    ["200 with invalid JSON", json("{token:"), Code.Internal, { status: 200 }],
    ["200 with {}", json("{}"), Code.Internal, { status: 200 }],
    ['200 with {"token": 42}', json('{"token":42}'), Code.Internal, { status: 200 }],
    ['200 with {"token": ""}', json('{"token":""}'), Code.Internal, { status: 200 }],
    ["200 with a JSON array", json("[1]"), Code.Internal, { status: 200 }],
    [
      "200 with a token that cannot travel in a header",
      json('{"token":"line\\nbreak"}'),
      Code.Internal,
      {},
    ],
    [
      "200 with a JWT already expired by its own claims",
      json(JSON.stringify({ token: expiredJwt() })),
      Code.Internal,
      { message: /its claims say exp \d+ ≤ iat \d+/ },
    ],
    [
      "200 with expires_in 0",
      json(JSON.stringify({ access_token: "opaque", expires_in: 0 })),
      Code.Internal,
      { message: /expires_in is 0/ },
    ],
    [
      "200 with a negative expires_in",
      json(JSON.stringify({ access_token: "opaque", expires_in: -30 })),
      Code.Internal,
      { message: /expires_in is -30/ },
    ],
  ];
  for (const [name, behaviour, code, expected] of rows) {
    it(`${name} → ${Code[code]}`, async () => {
      const { error, endpoint } = await callWith(behaviour);
      expect(error).toBeInstanceOf(ConnectError);
      const connectError = error as ConnectError;
      expect(connectError.code).toBe(code);
      expect(connectError.cause).toBeInstanceOf(TokenFetchError);
      if ("status" in expected) {
        expect((connectError.cause as TokenFetchError).status).toBe(expected.status);
      }
      if (expected.requests !== undefined) expect(endpoint.requests).toBe(expected.requests);
      if (expected.message !== undefined) expect(connectError.message).toMatch(expected.message);
      expectSafe(error);
    });
  }

  it("a refused connection → Unavailable", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const tokens = createTokenSource({
      fetchToken: passwordGrant({
        endpoint: `http://127.0.0.1:${port}/auth/token`,
        credentials: TEST_USER,
      }),
    });
    const error = (await tokens.getToken().catch((e: unknown) => e)) as TokenFetchError;
    expect(error).toBeInstanceOf(TokenFetchError);
    expect(error.code).toBe(Code.Unavailable);
    expect(error.status).toBeUndefined();
    expectSafe(error);
  });

  it("an endpoint that never answers → Unavailable within timeoutMs", async () => {
    const { error, elapsed } = await callWith(() => new Promise(() => {}), { timeoutMs: 300 });
    expect(ConnectError.from(error).code).toBe(Code.Unavailable);
    expect(elapsed).toBeLessThan(3_000);
    expectSafe(error);
  });

  it("keeps a short, redacted excerpt of the error body and never the password", async () => {
    const echo: Behaviour = (_req, res, body) => {
      res
        .writeHead(401, { "content-type": "text/plain" })
        .end(`rejected ${body} ${"x".repeat(500)}`);
    };
    const { error } = await callWith(echo);
    const cause = (error as ConnectError).cause as TokenFetchError;
    expect(cause.bodyExcerpt).toContain("[redacted]");
    expect((cause.bodyExcerpt ?? "").length).toBeLessThanOrEqual(121);
    expectSafe(error);
  });

  it("refuses to follow a redirect, so credentials never reach another origin", async () => {
    let reachedOther = 0;
    const other = createServer((_req, res) => {
      reachedOther++;
      res.writeHead(200, { "content-type": "application/json" }).end('{"token":"stolen"}');
    });
    await new Promise<void>((resolve) => other.listen(0, "127.0.0.1", resolve));
    onTestFinished(() => new Promise((resolve) => other.close(() => resolve())));
    const location = `http://127.0.0.1:${(other.address() as AddressInfo).port}/steal`;
    const { error } = await callWith((_req, res) => {
      res.writeHead(307, { location }).end();
    });
    expect(ConnectError.from(error).code).toBe(Code.Internal);
    expect(String(error)).toMatch(/redirect/);
    expect(reachedOther).toBe(0);
  });

  it("fails fast during the backoff, then succeeds on the next call once the endpoint recovers", async () => {
    const { error, endpoint, client } = await callWith(status(503));
    expect(ConnectError.from(error).code).toBe(Code.Unavailable);
    endpoint.behave(undefined);
    const requests = endpoint.requests;
    // Within the first backoff (0.5–1 s) the failure is repeated without a request.
    const fast = await client.whoAmI({}).catch((e: unknown) => e);
    expect(ConnectError.from(fast).code).toBe(Code.Unavailable);
    expect((fast as ConnectError).cause).toMatchObject({ repeated: true, status: 503 });
    expect(endpoint.requests).toBe(requests);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect((await client.whoAmI({})).subject).toBe("alice");
    expect(endpoint.requests).toBe(requests + 1);
  });
});

function expiredJwt(): string {
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  // Expired by its own word: exp ≤ iat, whatever the clocks say.
  return `${encode({ alg: "ES256" })}.${encode({ sub: "a", iat: now, exp: now - 60 })}.c2ln`;
}
