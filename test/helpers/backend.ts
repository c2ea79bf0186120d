import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import {
  Code,
  ConnectError,
  type ConnectRouter,
  createContextKey,
  createRouterTransport,
  type Interceptor,
  type Transport,
} from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";
import type { Authority } from "./authority.js";

const subjectKey = createContextKey<string>("");

/**
 * How a proxy in front of the service rejects a bad token before the service
 * sees it, as Envoy's jwt_authn does: an HTTP 401, or a gRPC trailers-only
 * answer. Either way the client sees Unauthenticated from `next()`, not from
 * the first read of a stream.
 */
export type EdgeRejection = "http-401" | "trailers-only";

/** The transports a test can reach the service through. */
export type TransportKind = "router" | "grpc-web" | "connect";

export interface Backend {
  /** A transport of the given kind with the given client interceptors. */
  transport(kind: TransportKind, interceptors: Interceptor[]): Transport;
  /** The loopback URL of the HTTP server (gRPC-Web and Connect on one port). */
  url: string;
  close(): Promise<void>;
}

/**
 * Starts the DemoService behind a bearer-token check against `authority`, both
 * in memory (Connect's router transport) and on a loopback HTTP server.
 */
export async function startBackend(
  authority: Authority,
  options: { edge?: EdgeRejection } = {},
): Promise<Backend> {
  const verify: Interceptor = (next) => async (req) => {
    const header = req.header.get("authorization") ?? undefined;
    const token = header?.startsWith("Bearer ") ? header.slice("Bearer ".length) : undefined;
    authority.seen.push(token);
    if (token === undefined || !authority.accepts(token)) {
      authority.unauthenticated++;
      throw new ConnectError("token missing, expired or revoked", Code.Unauthenticated);
    }
    req.contextValues.set(subjectKey, "alice");
    return next(req);
  };
  const routes = (router: ConnectRouter) =>
    router.service(DemoService, {
      whoAmI(_req, ctx) {
        return { subject: ctx.values.get(subjectKey) };
      },
      async *ticks(req, ctx) {
        ctx.responseTrailer.set("x-ticks-served", "yes");
        const count = req.count || 5;
        for (let n = 1; n <= count; n++) {
          if (req.failAfter > 0 && n > req.failAfter) {
            authority.unauthenticated++;
            throw new ConnectError("token revoked mid-stream", Code.Unauthenticated);
          }
          if (req.intervalMs > 0) await new Promise((r) => setTimeout(r, req.intervalMs));
          yield { n, subject: ctx.values.get(subjectKey) };
        }
      },
    });
  const adapter = connectNodeAdapter({ routes, interceptors: [verify] });
  const server = createServer((req, res) => {
    const header = req.headers.authorization;
    const token = header?.startsWith("Bearer ") ? header.slice("Bearer ".length) : undefined;
    if (options.edge === undefined || (token !== undefined && authority.accepts(token))) {
      adapter(req, res);
      return;
    }
    authority.seen.push(token);
    authority.unauthenticated++;
    if (options.edge === "http-401") {
      res.writeHead(401, { "content-type": "text/plain", "www-authenticate": "Bearer" });
      res.end("Jwt is missing or invalid");
      return;
    }
    // Trailers-only: the status travels in the headers and the body is empty.
    const grpcWeb = req.headers["content-type"]?.startsWith("application/grpc-web") === true;
    res.writeHead(200, {
      "content-type": grpcWeb ? "application/grpc-web+proto" : "application/connect+proto",
      "grpc-status": "16",
      "grpc-message": "edge rejected the token",
    });
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, transport: transportsTo(routes, verify, url), close: () => closeServer(server) };
}

/**
 * The transports a test reaches `routes` through: Connect's router transport in memory, behind
 * the server interceptor `verify`, or gRPC-Web and Connect to the loopback server at `url`.
 */
export function transportsTo(
  routes: (router: ConnectRouter) => void,
  verify: Interceptor,
  url: string,
): Backend["transport"] {
  return (kind, interceptors) => {
    switch (kind) {
      case "router":
        return createRouterTransport(routes, {
          transport: { interceptors },
          router: { interceptors: [verify] },
        });
      case "grpc-web":
        return createGrpcWebTransport({ baseUrl: url, interceptors });
      case "connect":
        return createConnectTransport({ baseUrl: url, interceptors });
    }
  };
}

/** Stops a test server at once, open connections and streams included. */
export function closeServer(server: Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}
