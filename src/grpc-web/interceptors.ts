import type { RpcError, StreamInterceptor, UnaryInterceptor, UnaryResponse } from "grpc-web";
import type { TokenSource } from "../core/token-source.js";
import { type AuthOptions, createReplayRules, type ReplayRules } from "../replay/auth-options.js";
import { type CallReplay, type CallTarget, startCall } from "../replay/call.js";
import { awaitToken } from "../replay/token-failure.js";
import { ReplayingStream } from "./replaying-stream.js";
import {
  type AnyRequest,
  deadlineOf,
  failureOf,
  methodName,
  toRpcError,
  withHeaders,
} from "./request.js";

/** Options for {@link createGrpcWebInterceptors}: the Connect interceptor's, for `RpcError`s. */
export interface GrpcWebInterceptorOptions extends AuthOptions<RpcError> {
  /**
   * The hostname the grpc-web client was made with (`new GrpcWebClientBase(…)`'s calls go to
   * `<baseUrl>/<package.Service>/<Method>`). Only a DPoP source needs it: a proof names the call's
   * URL, and grpc-web's interceptors are not told it. Default: the page's origin.
   */
  baseUrl?: string | undefined;
}

/** Spread into `GrpcWebClientBase` options (or a generated client's `options`). */
export interface GrpcWebInterceptors {
  unaryInterceptors: UnaryInterceptor<unknown, unknown>[];
  streamInterceptors: StreamInterceptor<unknown, unknown>[];
}

/**
 * Creates interceptors for clients built on Google's grpc-web runtime, with the
 * same contract as `createAuthInterceptor`: every call carries the token
 * from the shared `TokenSource`; on Unauthenticated (16) before any message,
 * the token is refreshed and the call replayed exactly once.
 *
 * `unaryCall` goes through `unaryInterceptors`; `serverStreaming` and the
 * callback-style `rpcCall` go through `streamInterceptors`. The caller's
 * metadata object is never changed: each attempt gets a copy with the header.
 *
 * @example
 * ```ts
 * import { GrpcWebClientBase } from "grpc-web";
 * import { createGrpcWebInterceptors } from "grpc-web-auth/grpc-web";
 *
 * const client = new GrpcWebClientBase({ format: "binary", ...createGrpcWebInterceptors(tokens) });
 * ```
 */
export function createGrpcWebInterceptors(
  source: TokenSource,
  options: GrpcWebInterceptorOptions = {},
): GrpcWebInterceptors {
  const rules = createReplayRules("createGrpcWebInterceptors", source, options, ["baseUrl"]);
  const { baseUrl } = options;
  if (baseUrl !== undefined && typeof baseUrl !== "string") {
    throw new TypeError("createGrpcWebInterceptors: baseUrl must be a string");
  }
  const targetOf = (request: AnyRequest): CallTarget => ({
    url: `${(baseUrl ?? globalThis.location?.origin ?? "").replace(/\/$/, "")}${request.getMethodDescriptor().getName()}`,
    method: methodName(request),
    deadline: deadlineOf(request),
  });
  /** Public methods (`skip`): `/acme.v1.UserService/GetPublicInfo` → service and method. */
  const skipped = (request: AnyRequest) => {
    const match = /^\/?(.+)\/([^/]+)$/.exec(request.getMethodDescriptor().getName());
    return match !== null && rules.skips?.(match[1] as string, match[2] as string) === true;
  };
  const begin = (request: AnyRequest) => beginCall(rules, targetOf(request));

  const unary: UnaryInterceptor<unknown, unknown> = {
    async intercept(request, invoker): Promise<UnaryResponse<unknown, unknown>> {
      if (skipped(request)) return invoker(request);
      const call = await begin(request);
      for (;;) {
        try {
          const response = await invoker(await prepared(rules, call, request));
          call.succeeded();
          return response;
        } catch (error) {
          const replay = call.replay(failureOf(error));
          if (replay === undefined) throw error;
          await replay.catch((failure: unknown) => Promise.reject(toRpcError(failure)));
        }
      }
    },
  };

  const stream: StreamInterceptor<unknown, unknown> = {
    intercept(request, invoker) {
      if (skipped(request)) return invoker(request);
      return new ReplayingStream({
        source: rules.source,
        begin: () => begin(request),
        invoke: async (call) => invoker(await prepared(rules, call, request)),
      });
    },
  };

  return { unaryInterceptors: [unary], streamInterceptors: [stream] };
}

/** The call's rules with its first token; a token failure rejects with an RpcError. */
async function beginCall(rules: ReplayRules, target: CallTarget): Promise<CallReplay> {
  const { source } = rules;
  const cached = source.current?.();
  if (cached !== undefined) return startCall(rules, target, { token: cached, proven: true });
  try {
    const token = await awaitToken(source.getToken(), undefined, target.deadline);
    return startCall(rules, target, { token, proven: false });
  } catch (error) {
    throw toRpcError(error);
  }
}

/** The request for the call's current attempt: its token, and a fresh proof for DPoP. */
async function prepared(
  rules: ReplayRules,
  call: CallReplay,
  request: AnyRequest,
): Promise<AnyRequest> {
  const proof = await call.prove();
  return withHeaders(request, { [rules.headerName]: call.header(), ...proof?.headers });
}
