import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import {
  Code,
  ConnectError,
  type ConnectRouter,
  createContextKey,
  type Interceptor,
  type Transport,
} from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";
import type { Authority } from "./authority.js";
import { closeServer, type TransportKind, transportsTo } from "./backend.js";

const subjectKey = createContextKey<string>("anonymous");

/** One call as the service saw it. */
export interface SeenCall {
  /** The proto method name, e.g. `"WhoAmI"`. */
  method: string;
  /** The `authorization` header; `undefined` when the call had none. */
  authorization: string | undefined;
  /** The client's `x-call-id` header, so a test can count the attempts of each call. */
  callId: string | undefined;
}

export interface GatedBackendOptions {
  /** Proto method names the service answers without a token. Default: none. */
  publicMethods?: readonly string[];
}

export interface GatedBackend {
  /** A transport of the given kind with the given client interceptors. */
  transport(kind: TransportKind, interceptors: Interceptor[]): Transport;
  /** The loopback URL of the HTTP server (gRPC-Web and Connect on one port). */
  url: string;
  /** Every call that reached the service, in order. */
  readonly calls: SeenCall[];
  /**
   * The error a missing, expired or revoked token gets: a server's own way of saying so.
   * Default: Unauthenticated.
   */
  refuse: () => ConnectError;
  /** Fails the next `count` calls with `error()` before the token is looked at (an overload). */
  failNext(count: number, error: () => ConnectError): void;
  close(): Promise<void>;
}

/**
 * Starts the DemoService behind a bearer-token check against `authority` whose refusal the test
 * chooses (PermissionDenied, an ErrorInfo detail, a metadata header …), in memory (Connect's
 * router transport) and on a loopback HTTP server.
 */
export async function startGatedBackend(
  authority: Authority,
  options: GatedBackendOptions = {},
): Promise<GatedBackend> {
  const publicMethods = new Set(options.publicMethods ?? []);
  const failures: (() => ConnectError)[] = [];
  const verify: Interceptor = (next) => async (req) => {
    const authorization = req.header.get("authorization") ?? undefined;
    backend.calls.push({
      method: req.method.name,
      authorization,
      callId: req.header.get("x-call-id") ?? undefined,
    });
    const failure = failures.shift();
    if (failure !== undefined) throw failure();
    const token = authorization?.startsWith("Bearer ")
      ? authorization.slice("Bearer ".length)
      : undefined;
    if (token !== undefined && authority.accepts(token)) {
      req.contextValues.set(subjectKey, "alice");
    } else if (!publicMethods.has(req.method.name)) {
      authority.unauthenticated++;
      throw backend.refuse();
    }
    return next(req);
  };
  const routes = (router: ConnectRouter) =>
    router.service(DemoService, {
      whoAmI(_req, ctx) {
        return { subject: ctx.values.get(subjectKey) };
      },
      async *ticks(req, ctx) {
        const count = req.count || 3;
        for (let n = 1; n <= count; n++) yield { n, subject: ctx.values.get(subjectKey) };
      },
    });
  const adapter = connectNodeAdapter({ routes, interceptors: [verify] });
  const server = createServer(adapter);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const backend: GatedBackend = {
    url,
    calls: [],
    refuse: () => new ConnectError("token missing, expired or revoked", Code.Unauthenticated),
    failNext(count, error) {
      for (let i = 0; i < count; i++) failures.push(error);
    },
    transport: transportsTo(routes, verify, url),
    close: () => closeServer(server),
  };
  return backend;
}
