import {
  type Metadata,
  type Request,
  RpcError,
  type StatusCode,
  type StreamInterceptor,
  type UnaryInterceptor,
  type UnaryResponse,
} from "grpc-web";
import { type AuthOptions, type ResolvedAuthOptions, resolveAuthOptions } from "./auth-options.js";
import { ReplayingStream } from "./grpc-web-stream.js";
import { TokenFetchError } from "./token-fetch-error.js";
import { internalsOf, type TokenSource } from "./token-source.js";

/** Options for {@link createGrpcWebInterceptors}: the same as the Connect interceptor's. */
export interface GrpcWebInterceptorOptions extends AuthOptions {
  /**
   * Which failures get the refresh and the one replay. It gets the `RpcError` (its `code`,
   * `message` and `metadata`). It decides only whether to refresh and replay: one replay per
   * call at most, and the token source's bounds hold whatever it says. One that throws counts as
   * `false`. Default: `error.code === 16` (Unauthenticated).
   */
  isAuthError?: ((error: RpcError) => boolean) | undefined;
}

/** Spread into `GrpcWebClientBase` options (or a generated client's `options`). */
export interface GrpcWebInterceptors {
  unaryInterceptors: UnaryInterceptor<unknown, unknown>[];
  streamInterceptors: StreamInterceptor<unknown, unknown>[];
}

const DEADLINE_EXCEEDED = 4;

/**
 * Creates interceptors for clients built on Google's grpc-web runtime, with the
 * same contract as {@link createAuthInterceptor}: every call carries the token
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
  const auth = resolveAuthOptions("createGrpcWebInterceptors", source, options);
  const isAuthError = (error: unknown) => auth.isAuthError(error as never);
  const proven = (token: string) => internalsOf(source)?.proven(token);
  /** Public methods (`skip`): `/acme.v1.UserService/GetPublicInfo` → service and method. */
  const skipped = (request: Request<unknown, unknown>) => {
    const match = /^\/?(.+)\/([^/]+)$/.exec(request.getMethodDescriptor().getName());
    return match !== null && auth.skips?.(match[1] as string, match[2] as string) === true;
  };

  const unary: UnaryInterceptor<unknown, unknown> = {
    async intercept(request, invoker): Promise<UnaryResponse<unknown, unknown>> {
      if (skipped(request)) return invoker(request);
      const deadline = deadlineOf(request);
      const token = await rpcToken(source.getToken(), deadline);
      let attempt = token;
      try {
        const response = await invoker(withToken(request, auth, token));
        proven(token);
        return response;
      } catch (error) {
        if (!isAuthError(error)) throw error;
        const fresh = await rpcToken(source.refresh(token), deadline);
        auth.notifyReplay(methodName(request));
        attempt = fresh;
        try {
          const response = await invoker(withToken(request, auth, fresh));
          proven(fresh);
          return response;
        } catch (again) {
          if (isAuthError(again)) source.invalidate(attempt);
          throw again;
        }
      }
    },
  };

  const stream: StreamInterceptor<unknown, unknown> = {
    intercept(request, invoker) {
      if (skipped(request)) return invoker(request);
      const deadline = deadlineOf(request);
      return new ReplayingStream({
        isAuthError,
        proven,
        invoke: (token) => invoker(withToken(request, auth, token)),
        getToken: () => withDeadline(source.getToken(), deadline),
        refresh: async (rejected) => {
          const fresh = await withDeadline(source.refresh(rejected), deadline);
          auth.notifyReplay(methodName(request));
          return fresh;
        },
        rejected: (token) => source.invalidate(token),
        toRpcError,
      });
    },
  };

  return { unaryInterceptors: [unary], streamInterceptors: [stream] };
}

/**
 * A request like `request` whose metadata is a copy with the auth header set.
 * grpc-web's Request class is not exported, so this mirrors its accessors.
 */
function withToken(
  request: Request<unknown, unknown>,
  auth: ResolvedAuthOptions,
  token: string,
): Request<unknown, unknown> {
  const metadata: Metadata = {};
  for (const [key, value] of Object.entries(request.getMetadata() ?? {})) {
    // Drop a differently-cased copy, or the browser would join both values.
    if (key.toLowerCase() !== auth.headerName) metadata[key] = value;
  }
  metadata[auth.headerName] = auth.headerValue(token);
  const original = request as Request<unknown, unknown> & { getCallOptions?: () => unknown };
  return {
    getRequestMessage: () => request.getRequestMessage(),
    getMethodDescriptor: () => request.getMethodDescriptor(),
    getMetadata: () => metadata,
    getCallOptions: () => original.getCallOptions?.(),
  } as Request<unknown, unknown>;
}

/** grpc-web carries a call's deadline as metadata `deadline`: ms since the epoch. */
function deadlineOf(request: Request<unknown, unknown>): number | undefined {
  const deadline = Number(request.getMetadata()?.deadline);
  return Number.isFinite(deadline) && deadline > 0 ? deadline : undefined;
}

/** Waits for a token, failing with DEADLINE_EXCEEDED once the call's deadline passes. */
function withDeadline(token: Promise<string>, deadline: number | undefined): Promise<string> {
  if (deadline === undefined) return token;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(rpcError(DEADLINE_EXCEEDED, "the deadline passed while waiting for a token")),
      Math.max(0, deadline - Date.now()),
    );
    token.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

async function rpcToken(token: Promise<string>, deadline: number | undefined): Promise<string> {
  try {
    return await withDeadline(token, deadline);
  } catch (error) {
    throw toRpcError(error);
  }
}

/** Token failures become RpcErrors with the code from the error table (16, 14, 13, 1, 4). */
function toRpcError(error: unknown): RpcError {
  if (error instanceof RpcError) return error;
  if (error instanceof TokenFetchError) return rpcError(error.code, error.message, error);
  return rpcError(14, "could not obtain a token", error);
}

function rpcError(code: number, message: string, cause?: unknown): RpcError {
  const error = new RpcError(code as StatusCode, message, {});
  if (cause !== undefined) Object.defineProperty(error, "cause", { value: cause });
  return error;
}

function methodName(request: Request<unknown, unknown>): string {
  return request.getMethodDescriptor().getName().replace(/^\//, "");
}
