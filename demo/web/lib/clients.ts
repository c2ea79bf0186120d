import { createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { DemoService } from "../../../gen/demo/v1/demo_pb.js";
// An app writes `from "grpc-web-auth"`; the demo bundles the library from this repository's src/.
import { createAuthInterceptor, type ReplayEvent, type TokenSource } from "../../../src/index.js";
import { grpcWebRuntimeClient } from "./grpc-web-client.js";

/**
 * The DemoService calls the demo page and the test harness make, whatever client runtime is
 * underneath. Each client kind (a transport, or another runtime such as grpc-web's) implements it.
 */
export interface DemoClient {
  /** Calls `WhoAmI`; rejects with the call's error. */
  whoAmI(): Promise<WhoAmI>;
  /** Streams `Ticks`, calling `onTick` per message; rejects with the stream's error. */
  ticks(
    request: TicksParams,
    onTick: (tick: TickInfo) => void,
    signal?: AbortSignal,
  ): Promise<void>;
}

/** What `WhoAmI` answered, as plain JSON. */
export interface WhoAmI {
  subject: string;
  tokenId: string;
  expiresAtUnix: number;
}

/** The `TicksRequest` fields; 0 or absent means the server's default. */
export interface TicksParams {
  count?: number | undefined;
  intervalMs?: number | undefined;
  /** Test mode only: the server fails the stream with Unauthenticated after this many ticks. */
  failAfter?: number | undefined;
}

/** One `Tick`. */
export interface TickInfo {
  n: number;
  subject: string;
}

/** What a client kind is built from. */
export interface ClientOptions {
  /** Base URL of the backend. */
  apiUrl: string;
  /** The app's one token source, shared by every client. */
  tokens: TokenSource;
  /** Passed to the auth interceptor's `onReplay`. */
  onReplay: (event: ReplayEvent) => void;
}

/** A way to call the DemoService from the browser. */
export interface ClientKindInfo {
  /** Shown on the demo page's protocol toggle. */
  label: string;
  create(options: ClientOptions): DemoClient;
}

/**
 * Every client kind the demo page offers and the browser tests run over. To add one, add an entry
 * here (the harness and the page pick it up) and to `test/browser/clients.ts`.
 */
export const clientKinds = {
  "grpc-web": {
    label: "gRPC-Web",
    create: (options) =>
      connectClient(createGrpcWebTransport({ baseUrl: options.apiUrl, ...auth(options) })),
  },
  connect: {
    label: "Connect",
    create: (options) =>
      connectClient(createConnectTransport({ baseUrl: options.apiUrl, ...auth(options) })),
  },
  "grpc-web-runtime": {
    label: "grpc-web (Google's runtime)",
    create: grpcWebRuntimeClient,
  },
} satisfies Record<string, ClientKindInfo>;

/** The id of a client kind, e.g. `"grpc-web"`. */
export type ClientKind = keyof typeof clientKinds;

/** Whether `value` names a client kind. */
export function isClientKind(value: unknown): value is ClientKind {
  return typeof value === "string" && Object.hasOwn(clientKinds, value);
}

function auth(options: ClientOptions) {
  return { interceptors: [createAuthInterceptor(options.tokens, { onReplay: options.onReplay })] };
}

/** A DemoClient over a Connect transport (`@connectrpc/connect-web`). */
function connectClient(transport: Transport): DemoClient {
  const client = createClient(DemoService, transport);
  return {
    async whoAmI() {
      const res = await client.whoAmI({});
      return {
        subject: res.subject,
        tokenId: res.tokenId,
        expiresAtUnix: Number(res.expiresAtUnix),
      };
    },
    async ticks(request, onTick, signal) {
      const stream = client.ticks(
        {
          count: request.count ?? 0,
          intervalMs: request.intervalMs ?? 0,
          failAfter: request.failAfter ?? 0,
        },
        signal === undefined ? {} : { signal },
      );
      for await (const tick of stream) onTick({ n: tick.n, subject: tick.subject });
    },
  };
}
