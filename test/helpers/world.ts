import { type Client, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { GrpcWebClientBase } from "grpc-web";
import { onTestFinished } from "vitest";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";
import { createGrpcWebInterceptors, type GrpcWebInterceptorOptions } from "../../src/grpc-web.js";
import {
  type AuthInterceptorOptions,
  createAuthInterceptor,
  createTokenSource,
  type PasswordGrantOptions,
  passwordGrant,
  type ReplayEvent,
  type TokenEvent,
  type TokenSource,
  type TokenSourceOptions,
} from "../../src/index.js";
import { type Authority, createAuthority } from "./authority.js";
import { type Backend, type EdgeRejection, startBackend, type TransportKind } from "./backend.js";
import { startTokenEndpoint, TEST_USER, type TokenEndpoint } from "./token-endpoint.js";

/** What a world needs of the service it starts: transports to it, its URL, a way to stop it. */
export interface ServiceLike {
  transport(kind: TransportKind, interceptors: Interceptor[]): Transport;
  url: string;
  close(): Promise<void>;
}

export interface WorldOptions<B extends ServiceLike> {
  /** Lifetime of the tokens the authority mints, in seconds. Default: 300. */
  ttlSeconds?: number;
  /** Whether the token endpoint answers `expires_in`. Default: false. */
  expiresIn?: boolean;
  /** How long the token endpoint takes to mint a token, in ms. Default: 0. */
  delayMs?: number;
  /** Puts something in front of the endpoint: gets its URL, returns the URL the source uses. */
  via?: (endpointUrl: string) => Promise<string> | string;
  /** How the default service rejects a bad token at its edge. Default: it does not. */
  edge?: EdgeRejection;
  /** Starts another service (a gated one) for the authority. Default: startBackend with `edge`. */
  backend?: (authority: Authority) => Promise<B>;
  /** What the password grant sends (a function is read at each fetch). Default: TEST_USER. */
  credentials?: PasswordGrantOptions["credentials"];
  /** The token source's other options (timeoutMs, refreshMarginMs …). Default: none. */
  source?: Omit<Partial<TokenSourceOptions>, "fetchToken">;
  /** The transport `client` goes through. Default: "router". */
  transport?: TransportKind;
  /** The Connect interceptor's options; `onReplay` is called after the world records the event. */
  interceptor?: AuthInterceptorOptions;
  /** Interceptors `client` runs before the auth interceptor. Default: none. */
  outer?: Interceptor[];
  /** Interceptors `client` runs after the auth interceptor. Default: none. */
  inner?: Interceptor[];
  /** The grpc-web interceptors' options; `onReplay` as for `interceptor`. */
  grpcWeb?: GrpcWebInterceptorOptions;
}

/**
 * A token endpoint minting from an authority, the DemoService checking its tokens, one token
 * source, and clients wired through the library as an app wires them.
 */
export interface World<B extends ServiceLike = Backend> {
  authority: Authority;
  endpoint: TokenEndpoint;
  backend: B;
  /** The service's loopback URL, for Google's grpc-web runtime. */
  url: string;
  /** The token source under test, talking to `endpoint` (or to what `via` put in front of it). */
  tokens: TokenSource;
  /** Everything `tokens.subscribe()` delivered. */
  events: TokenEvent[];
  /** Every replay either adapter announced. */
  replays: ReplayEvent[];
  /** A DemoService client over `transport`: `outer`, the auth interceptor, then `inner`. */
  client: Client<typeof DemoService>;
  /**
   * A client of Google's grpc-web runtime with the same source, for `url` (the test file installs
   * an XMLHttpRequest: see useXmlHttpRequest).
   */
  grpcWeb: GrpcWebClientBase;
  /** Another DemoService client on the same source, over `kind` through `interceptors`. */
  connect(kind: TransportKind, interceptors: Interceptor[]): Client<typeof DemoService>;
  /** Signs out and stops the servers; also done when the test finishes. Safe to call twice. */
  close(): Promise<void>;
}

/** Starts a world; it is closed when the current test finishes (or earlier by `close()`). */
export async function startWorld<B extends ServiceLike = Backend>(
  options: WorldOptions<B> = {},
): Promise<World<B>> {
  const authority = createAuthority({ ttlSeconds: options.ttlSeconds ?? 300 });
  const endpoint = await startTokenEndpoint(authority, {
    ...(options.expiresIn === undefined ? {} : { expiresIn: options.expiresIn }),
    ...(options.delayMs === undefined ? {} : { delayMs: options.delayMs }),
  });
  let closing: Promise<void> | undefined;
  let backend: B | undefined;
  let tokens: TokenSource | undefined;
  const close = () => {
    closing ??= (async () => {
      tokens?.clear();
      await endpoint.close();
      await backend?.close();
    })();
    return closing;
  };
  onTestFinished(close);
  backend =
    options.backend === undefined
      ? ((await startBackend(
          authority,
          options.edge === undefined ? {} : { edge: options.edge },
        )) as ServiceLike as B)
      : await options.backend(authority);
  const url = options.via === undefined ? endpoint.url : await options.via(endpoint.url);
  tokens = createTokenSource({
    fetchToken: passwordGrant({ endpoint: url, credentials: options.credentials ?? TEST_USER }),
    ...options.source,
  });
  const events: TokenEvent[] = [];
  tokens.subscribe((event) => events.push(event));
  const replays: ReplayEvent[] = [];
  const auth = createAuthInterceptor(tokens, {
    ...options.interceptor,
    onReplay: (event) => {
      replays.push(event);
      options.interceptor?.onReplay?.(event);
    },
  });
  const service = backend;
  const connect = (kind: TransportKind, interceptors: Interceptor[]) =>
    createClient(DemoService, service.transport(kind, interceptors));
  return {
    authority,
    endpoint,
    backend,
    url: backend.url,
    tokens,
    events,
    replays,
    client: connect(options.transport ?? "router", [
      ...(options.outer ?? []),
      auth,
      ...(options.inner ?? []),
    ]),
    grpcWeb: new GrpcWebClientBase({
      format: "binary",
      ...createGrpcWebInterceptors(tokens, {
        ...options.grpcWeb,
        onReplay: (event) => {
          replays.push(event);
          options.grpcWeb?.onReplay?.(event);
        },
      }),
    }),
    connect,
    close,
  };
}
