import { Code } from "@connectrpc/connect";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createTokenSource, passwordGrant, TokenFetchError } from "../../src/index.js";
import { createAuthority } from "../helpers/authority.js";
import { settle } from "../helpers/fault-world.js";
import { closed, type DripStats, dripBody } from "../helpers/hostile-endpoint.js";
import { findLeaks, type ProcessWatch, watchProcess } from "../helpers/leak-watch.js";
import {
  type Behaviour,
  startTokenEndpoint,
  TEST_USER,
  type TokenEndpoint,
} from "../helpers/token-endpoint.js";
import { sleep } from "../helpers/wait.js";

// What a hostile endpoint puts in its error bodies: the credentials it was sent, echoed in
// whatever encoding, and bodies far larger than any token answer.

const MB = 1024 * 1024;

let watch: ProcessWatch;
const cleanups: (() => Promise<void>)[] = [];
beforeAll(() => {
  watch = watchProcess();
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
  // A beat for late rejections: what is checked is that none comes.
  await sleep(20);
  expect(watch.unhandledRejections).toEqual([]);
  expect(watch.consoleCalls()).toEqual([]);
  watch.reset();
});
afterAll(() => watch.stop());

async function endpointAnswering(behaviour: Behaviour): Promise<TokenEndpoint> {
  const endpoint = await startTokenEndpoint(createAuthority());
  cleanups.push(() => endpoint.close());
  endpoint.behave(behaviour);
  return endpoint;
}

/** Echoes the request body back inside a JSON error document, as many frameworks do. */
function echoAsJson(status: number, contentType: string): Behaviour {
  return (_req, res, body) => {
    res
      .writeHead(status, { "content-type": contentType })
      .end(JSON.stringify({ error: "invalid_grant", request: JSON.parse(body) }));
  };
}

/** Escapes what `pattern` matches as \\uXXXX, as some JSON encoders do. */
function escapeWith(pattern: RegExp): (json: string) => string {
  return (json) =>
    json.replace(pattern, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

describe("error bodies from a hostile token endpoint", () => {
  for (const contentType of ["application/json", "text/plain"]) {
    it(`redacts a password with quotes and backslashes that a ${contentType} error body echoes back as JSON`, async () => {
      const password = 'correct "horse" \\ battery';
      const endpoint = await endpointAnswering(echoAsJson(401, contentType));
      const tokens = createTokenSource({
        fetchToken: passwordGrant({
          endpoint: endpoint.url,
          credentials: { username: "alice", password },
        }),
      });

      const error = (await tokens.getToken().catch((e: unknown) => e)) as TokenFetchError;

      expect(error).toBeInstanceOf(TokenFetchError);
      expect(error.code).toBe(Code.Unauthenticated);
      // The echo holds the password JSON-escaped (\" and \\): that is the password too.
      expect(findLeaks([error, error.bodyExcerpt], { "the password": password })).toEqual([]);
      expect(error.bodyExcerpt).toContain("[redacted]");
    });
  }

  // Servers that write JSON with their own escaping, sent as text (Go's http.Error, a Flask view
  // returning json.dumps, PHP's json_encode): the password is in the body, escaped differently.
  const foreignEscapes: [string, string, (json: string) => string][] = [
    ["Go escapes <, > and & as \\u003c", "s3cret<pa55>&word", escapeWith(/[<>&]/g)],
    ["Python escapes non-ASCII as \\u00e4", "pässwörd-1234", escapeWith(/[\u00a0-\uffff]/g)],
    ["PHP escapes / as \\/", "pass/word/1234", (json) => json.replace(/\//g, "\\/")],
  ];
  for (const [how, password, encode] of foreignEscapes) {
    it(`redacts a password echoed in a text/plain JSON body when ${how}`, async () => {
      const endpoint = await endpointAnswering((_req, res, body) => {
        const echo = JSON.stringify({ error: "invalid_grant", request: JSON.parse(body) });
        res.writeHead(401, { "content-type": "text/plain" }).end(encode(echo));
      });
      const tokens = createTokenSource({
        fetchToken: passwordGrant({
          endpoint: endpoint.url,
          credentials: { username: "alice", password },
        }),
      });

      const error = (await tokens.getToken().catch((e: unknown) => e)) as TokenFetchError;

      expect(error.code).toBe(Code.Unauthenticated);
      expect(error.bodyExcerpt).not.toContain(encode(JSON.stringify(password)).slice(1, -1));
      expect(error.bodyExcerpt).toContain("[redacted]");
    });
  }

  it("answers a 401 whose error body stalls with Unauthenticated, without waiting out the timeout", async () => {
    const endpoint = await endpointAnswering(async (_req, res) => {
      res.writeHead(401, { "content-type": "text/plain" });
      res.write("bad credentials, and then noth");
      await closed(res);
    });
    const tokens = createTokenSource({
      fetchToken: passwordGrant({ endpoint: endpoint.url, credentials: TEST_USER }),
      timeoutMs: 5_000,
    });

    const { error, ms } = await settle(() => tokens.getToken());

    // The status line said 401: the excerpt is only a diagnosis, not worth the whole budget.
    expect(error).toMatchObject({ code: Code.Unauthenticated, status: 401 });
    expect(ms).toBeLessThan(3_000);
  });

  it("keeps the excerpt to 120 characters, whitespace collapsed, the password redacted even at the cut", async () => {
    const filler = "x".repeat(100);
    const endpoint = await endpointAnswering((_req, res) => {
      res
        .writeHead(403, { "content-type": "text/plain" })
        .end(`${filler}\n\n\t ${TEST_USER.password} ${"y".repeat(500)}`);
    });
    const tokens = createTokenSource({
      fetchToken: passwordGrant({ endpoint: endpoint.url, credentials: TEST_USER }),
    });

    const error = (await tokens.getToken().catch((e: unknown) => e)) as TokenFetchError;

    expect(error.code).toBe(Code.Unauthenticated);
    expect(error.bodyExcerpt).toBe(`${filler} [redacted] ${"y".repeat(8)}…`);
    expect(findLeaks([error], { "the password": TEST_USER.password })).toEqual([]);
  });

  for (const [status, code] of [
    [401, Code.Unauthenticated],
    [503, Code.Unavailable],
  ] as const) {
    it(`reads no more than 64 KiB of a 10 MB error answer with status ${status}`, async () => {
      const stats: DripStats = { written: 0, finished: 0, cutShort: 0 };
      const endpoint = await endpointAnswering(dripBody(status, 10 * MB, stats));
      const tokens = createTokenSource({
        fetchToken: passwordGrant({ endpoint: endpoint.url, credentials: TEST_USER }),
        timeoutMs: 20_000,
      });

      const { error, ms } = await settle(() => tokens.getToken());

      expect((error as TokenFetchError).code).toBe(code);
      // Only an excerpt is kept, so there is no reason to download the rest.
      expect(stats.finished).toBe(0);
      expect(stats.written).toBeLessThan(2 * MB);
      expect(ms).toBeLessThan(5_000);
    });
  }
});
