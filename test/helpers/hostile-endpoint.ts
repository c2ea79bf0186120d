import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Authority } from "./authority.js";
import { type Behaviour, TEST_USER } from "./token-endpoint.js";
import { sleep } from "./wait.js";

// Ways a token endpoint misbehaves, as `Behaviour`s for `TokenEndpoint.behave()`.

/** Resolves once the client has gone away (or the answer is done). */
export function closed(res: ServerResponse): Promise<void> {
  if (res.closed) return Promise.resolve();
  return new Promise((resolve) => res.once("close", () => resolve()));
}

/**
 * Answers `status` with a body that echoes the request, credentials included,
 * as a careless error page does.
 */
export function echoStatus(status: number, headers: Record<string, string> = {}): Behaviour {
  return (_req, res, body) => {
    res.writeHead(status, { "content-type": "text/plain", ...headers }).end(`rejected: ${body}`);
  };
}

/** Answers 200 with `body` as it is. */
export function answer200(body: string, contentType = "application/json"): Behaviour {
  return (_req, res) => {
    res.writeHead(200, { "content-type": contentType }).end(body);
  };
}

/** Never answers; the handler ends when the client gives up. */
export const hang: Behaviour = (_req, res) => closed(res);

/** Answers as `then` does, but only after `ms`, if the client is still there. */
export function answerAfter(ms: number, then: Behaviour): Behaviour {
  return async (req, res, body) => {
    await Promise.race([sleep(ms), closed(res)]);
    if (!res.closed) await then(req, res, body);
  };
}

/** Drops the connection without answering. */
export const resetBeforeAnswer: Behaviour = (req) => {
  req.socket.destroy();
};

/**
 * Sends the status line and headers of a 200 (and `bodyStart`, if any), then
 * drops the connection.
 */
export function resetAfter(bodyStart = ""): Behaviour {
  return async (_req, res) => {
    res.writeHead(200, { "content-type": "application/json", "content-length": "4096" });
    if (bodyStart === "") res.flushHeaders();
    else res.write(bodyStart);
    // Let the client read what was sent before the connection goes.
    await sleep(30);
    res.socket?.destroy();
  };
}

/** Sends the headers and the start of a 200 body, then nothing more until the client leaves. */
export const stallBody: Behaviour = async (_req, res) => {
  res.writeHead(200, { "content-type": "application/json" });
  res.write('{"token":"');
  await closed(res);
};

/** Answers a redirect to `location`. */
export function redirectTo(status: number, location: string): Behaviour {
  return (_req, res) => {
    res.writeHead(status, { location, "content-type": "text/plain" }).end("moved");
  };
}

/** What a {@link dripBody} endpoint managed to send. */
export interface DripStats {
  /** Bytes the server wrote, over all requests. */
  written: number;
  /** Answers the server sent in full. */
  finished: number;
  /** Answers the client cut short by closing the connection. */
  cutShort: number;
}

/**
 * Answers `status` with a body of `totalBytes`, written 16 KiB at a time with a
 * pause between chunks and respecting backpressure, so what the server managed
 * to write shows how much the client read. With `contentLength`, the size is
 * announced up front.
 */
export function dripBody(
  status: number,
  totalBytes: number,
  stats: DripStats,
  options: { contentLength?: boolean; pauseMs?: number } = {},
): Behaviour {
  const chunk = Buffer.alloc(16 * 1024, "x");
  return async (_req, res) => {
    const headers: Record<string, string> = { "content-type": "text/plain" };
    if (options.contentLength) headers["content-length"] = String(totalBytes);
    res.writeHead(status, headers);
    const gone = closed(res);
    let sent = 0;
    while (sent < totalBytes && !res.closed) {
      const piece = chunk.subarray(0, Math.min(chunk.length, totalBytes - sent));
      const flushed = res.write(piece);
      sent += piece.length;
      stats.written += piece.length;
      if (!flushed) await Promise.race([new Promise((r) => res.once("drain", r)), gone]);
      await sleep(options.pauseMs ?? 2);
    }
    if (res.closed) {
      stats.cutShort++;
      return;
    }
    res.end();
    stats.finished++;
  };
}

/** A server on another origin that counts what reaches it. */
export interface OtherOrigin {
  url: string;
  requests: number;
  close(): Promise<void>;
}

/** Starts a server on another loopback port that would happily take a password. */
export async function startOtherOrigin(): Promise<OtherOrigin> {
  const server = createServer((req, res) => {
    other.requests++;
    req.resume();
    res.writeHead(200, { "content-type": "application/json" }).end('{"token":"stolen"}');
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const other: OtherOrigin = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/steal`,
    requests: 0,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return other;
}

/** Mints a token from `authority`, like the endpoint's default, for composing with others. */
export function mintFrom(authority: Authority): Behaviour {
  return (_req, res) => {
    res
      .writeHead(200, { "content-type": "application/json" })
      .end(JSON.stringify({ token: authority.mint(TEST_USER.username) }));
  };
}
