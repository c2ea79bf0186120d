import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Authority } from "./authority.js";

export const TEST_USER = { username: "alice", password: "s3cret-pa55word" };

/** How the endpoint answers one request; the default mints a token. */
export type Behaviour = (
  req: IncomingMessage,
  res: ServerResponse,
  body: string,
) => void | Promise<void>;

export interface TokenEndpoint {
  /** The endpoint's URL on loopback. */
  url: string;
  /** Requests received so far. */
  requests: number;
  /** Requests in progress now (the single-flight invariant: at most 1). */
  inFlight: number;
  maxInFlight: number;
  /** Replaces how requests are answered; `undefined` restores minting. */
  behave(behaviour: Behaviour | undefined): void;
  close(): Promise<void>;
}

/** Starts a real HTTP token endpoint on 127.0.0.1 that mints tokens from `authority`. */
export async function startTokenEndpoint(
  authority: Authority,
  options: { expiresIn?: boolean; delayMs?: number } = {},
): Promise<TokenEndpoint> {
  let behaviour: Behaviour | undefined;
  const mint: Behaviour = async (_req, res, body) => {
    if (options.delayMs) await new Promise((r) => setTimeout(r, options.delayMs));
    let parsed: { username?: unknown; password?: unknown };
    try {
      parsed = JSON.parse(body);
    } catch {
      res.writeHead(400, { "content-type": "text/plain" }).end("malformed body");
      return;
    }
    if (parsed.username !== TEST_USER.username || parsed.password !== TEST_USER.password) {
      res.writeHead(401, { "content-type": "text/plain" }).end("bad credentials");
      return;
    }
    const token = authority.mint(TEST_USER.username);
    const answer = options.expiresIn ? { token, expires_in: authority.ttlSeconds } : { token };
    // The Date header comes from the issuer's clock, as it would on a real token service.
    res.writeHead(200, {
      "content-type": "application/json",
      date: new Date(Date.now() + authority.issuerSkewMs).toUTCString(),
    });
    res.end(JSON.stringify(answer));
  };
  const endpoint: TokenEndpoint = {
    url: "",
    requests: 0,
    inFlight: 0,
    maxInFlight: 0,
    behave(next) {
      behaviour = next;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  const server = createServer(async (req, res) => {
    endpoint.requests++;
    endpoint.inFlight++;
    endpoint.maxInFlight = Math.max(endpoint.maxInFlight, endpoint.inFlight);
    try {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      await (behaviour ?? mint)(req, res, Buffer.concat(chunks).toString());
    } catch {
      if (!res.headersSent) res.writeHead(500).end();
    } finally {
      endpoint.inFlight--;
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  endpoint.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/auth/token`;
  return endpoint;
}
