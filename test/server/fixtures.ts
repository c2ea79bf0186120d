import {
  type Client,
  type Code,
  ConnectError,
  createClient,
  type Interceptor,
  type Transport,
} from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { onTestFinished } from "vitest";
import {
  type DemoServer,
  type DemoServerOptions,
  startDemoServer,
} from "../../demo/server/server.js";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";

/** Starts a demo server on free loopback ports; it is closed when the current test finishes. */
export async function startTestServer(options: DemoServerOptions = {}): Promise<DemoServer> {
  const server = await startDemoServer({ port: 0, grpcPort: 0, tokenPort: 0, ...options });
  onTestFinished(() => server.close());
  return server;
}

/** POSTs `body` as JSON (or as-is when it is already a string). */
export function postJson(url: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

/** Fetches a token for a demo user; fails the test if the server does not issue one. */
export async function fetchToken(
  server: DemoServer,
  username = "alice",
  password = "wonderland",
): Promise<string> {
  const res = await postJson(server.tokenUrl, { username, password });
  if (res.status !== 200) throw new Error(`token request answered ${res.status}`);
  const { token } = (await res.json()) as { token: string };
  return token;
}

/** The body of a successful `POST /auth/token` answer. */
export interface TokenAnswer {
  token: string;
  access_token: string;
  token_type: "Bearer" | "DPoP";
  expires_in: number;
  refresh_token: string;
}

/** Signs a demo user in; fails the test unless the server answers 200. */
export async function signIn(
  server: DemoServer,
  username = "alice",
  password = "wonderland",
  headers: Record<string, string> = {},
): Promise<TokenAnswer> {
  const res = await postJson(server.tokenUrl, { username, password }, headers);
  if (res.status !== 200) throw new Error(`sign-in answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as TokenAnswer;
}

/** Sends a refresh grant; returns the raw response. */
export function refresh(server: DemoServer, refreshToken: string, headers = {}) {
  return postJson(
    server.tokenUrl,
    { grant_type: "refresh_token", refresh_token: refreshToken },
    headers,
  );
}

/** POSTs a form body to `POST /auth/revoke`. */
export function revoke(server: DemoServer, params: Record<string, string>) {
  return fetch(server.revokeUrl, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(params),
  });
}

/** The smallest auth interceptor: sets `authorization: Bearer <token>` when there is a token. */
export function bearer(token: string | undefined): Interceptor {
  return (next) => (req) => {
    if (token !== undefined) req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
}

/** The two browser transports, by name, for `describe.each`. */
export const browserTransports = [
  { name: "Connect", create: createConnectTransport },
  { name: "gRPC-Web", create: createGrpcWebTransport },
] as const;

/** A DemoService client over `transport` that sends `token` (none when undefined). */
export function createDemoClient(
  create: (options: { baseUrl: string; interceptors: Interceptor[] }) => Transport,
  baseUrl: string,
  token: string | undefined,
): Client<typeof DemoService> {
  return createClient(DemoService, create({ baseUrl, interceptors: [bearer(token)] }));
}

/** Collects a server stream, returning the messages received and the error that ended it. */
export async function drain<T>(stream: AsyncIterable<T>): Promise<{ items: T[]; error?: unknown }> {
  const items: T[] = [];
  try {
    for await (const item of stream) items.push(item);
    return { items };
  } catch (error) {
    return { items, error };
  }
}

/** The code a call failed with, or "ok". */
export async function codeOf(call: Promise<unknown>): Promise<Code | "ok"> {
  try {
    await call;
    return "ok";
  } catch (e) {
    return ConnectError.from(e).code;
  }
}
