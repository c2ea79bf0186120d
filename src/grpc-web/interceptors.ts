import {
  type Metadata,
  type Request,
  RpcError,
  type StatusCode,
  type StreamInterceptor,
  type UnaryInterceptor,
  type UnaryResponse,
} from "grpc-web";
import type { ProofScheme } from "../core/proof-scheme.js";
import { TokenFetchError } from "../core/token-fetch-error.js";
import type { TokenSource } from "../core/token-source.js";
import {
  type AuthOptions,
  type ResolvedAuthOptions,
  resolveAuthOptions,
} from "../replay/auth-options.js";
import { internalsOf } from "../source/token-source.js";
import { ReplayingStream } from "./replaying-stream.js";

/** Options for {@link createGrpcWebInterceptors}: the same as the Connect interceptor's. */
export interface GrpcWebInterceptorOptions extends AuthOptions {
  /**
   * Which failures get the refresh and the one replay. It gets the `RpcError` (its `code`,
   * `message` and `metadata`). It decides only whether to refresh and replay: one replay per
   * call at most, and the token source's bounds hold whatever it says. One that throws counts as
   * `false`. Default: `error.code === 16` (Unauthenticated).
   */
  isAuthError?: ((error: RpcError) => boolean) | undefined;
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
  const { baseUrl } = options;
  if (baseUrl !== undefined && typeof baseUrl !== "string") {
    throw new TypeError("createGrpcWebInterceptors: baseUrl must be a string");
  }
  const hooks = internalsOf(source);
  const kit: GrpcWebKit = {
    source,
    auth,
    isAuthError: (error) => auth.isAuthError(error as never),
    proofs: hooks?.proofs,
    urlOf: (request) =>
      `${(baseUrl ?? globalThis.location?.origin ?? "").replace(/\/$/, "")}${request.getMethodDescriptor().getName()}`,
  };
  const proven = (token: string) => hooks?.proven(token);
  const prepare = (request: Request<unknown, unknown>, token: string) =>
    prepared(kit, request, token);
  const replayPlan = (request: Request<unknown, unknown>, deadline: number | undefined) =>
    plan(kit, request, deadline);
  const isAuthError = kit.isAuthError;
  /** Public methods (`skip`): `/acme.v1.UserService/GetPublicInfo` → service and method. */
  const skipped = (request: Request<unknown, unknown>) => {
    const match = /^\/?(.+)\/([^/]+)$/.exec(request.getMethodDescriptor().getName());
    return match !== null && auth.skips?.(match[1] as string, match[2] as string) === true;
  };

  const unary: UnaryInterceptor<unknown, unknown> = {
    async intercept(request, invoker): Promise<UnaryResponse<unknown, unknown>> {
      if (skipped(request)) return invoker(request);
      const deadline = deadlineOf(request);
      const plan = replayPlan(request, deadline);
      let token = await rpcToken(source.getToken(), deadline);
      for (;;) {
        try {
          const response = await invoker(await prepare(request, token));
          proven(token);
          return response;
        } catch (error) {
          const replay = plan.retry(error, token);
          if (replay === undefined) throw error;
          token = await rpcToken(replay, undefined);
        }
      }
    },
  };

  const stream: StreamInterceptor<unknown, unknown> = {
    intercept(request, invoker) {
      if (skipped(request)) return invoker(request);
      const deadline = deadlineOf(request);
      const plan = replayPlan(request, deadline);
      return new ReplayingStream({
        isAuthError,
        proven,
        invoke: async (token) => invoker(await prepare(request, token)),
        getToken: () => withDeadline(source.getToken(), deadline),
        retry: plan.retry,
        canRetry: plan.canRetry,
        rejected: (token) => source.invalidate(token),
        toRpcError,
      });
    },
  };

  return { unaryInterceptors: [unary], streamInterceptors: [stream] };
}

/** What the grpc-web interceptors' calls share. */
interface GrpcWebKit {
  source: TokenSource;
  auth: ResolvedAuthOptions;
  isAuthError(error: unknown): boolean;
  /** A sender-constrained source's proofs (DPoP), if any. */
  proofs: ProofScheme | undefined;
  /** The call's URL, which a proof names. */
  urlOf(request: Request<unknown, unknown>): string;
}

/** The request for one attempt with `token`: `<scheme> <token>`, and a fresh proof for DPoP. */
async function prepared(kit: GrpcWebKit, request: Request<unknown, unknown>, token: string) {
  const { auth, proofs } = kit;
  if (proofs === undefined) return withToken(request, auth.headerName, auth.headerValue(token));
  const extra = await proofs.headers(kit.urlOf(request), token);
  return withToken(request, auth.headerName, `${proofs.scheme} ${token}`, extra);
}

/**
 * What follows a failed attempt, per call: at most one replay for a DPoP nonce challenge and one
 * with a refreshed token. `retry` resolves to the token to replay with, or is undefined: no
 * replay (a refused token is then told to the source).
 */
function plan(kit: GrpcWebKit, request: Request<unknown, unknown>, deadline: number | undefined) {
  const { source, proofs } = kit;
  let refreshed = false;
  let nonced = false;
  return {
    canRetry: () => !refreshed || (proofs !== undefined && !nonced),
    retry(error: unknown, token: string): Promise<string> | undefined {
      const metadata = (error as { metadata?: Record<string, string> }).metadata;
      if (!nonced && proofs?.challenge(kit.urlOf(request), codeOf(error), metadata)) {
        nonced = true;
        return Promise.resolve(token);
      }
      // Asked once per failure: the app's predicate may be costly, or throw.
      const refused = kit.isAuthError(error);
      if (refreshed || !refused) {
        if (refused) source.invalidate(token);
        return undefined;
      }
      refreshed = true;
      return withDeadline(source.refresh(token), deadline).then((fresh) => {
        kit.auth.notifyReplay(methodName(request));
        return fresh;
      });
    },
  };
}

/**
 * A request like `request` whose metadata is a copy with the auth header set.
 * grpc-web's Request class is not exported, so this mirrors its accessors.
 */
function withToken(
  request: Request<unknown, unknown>,
  headerName: string,
  headerValue: string,
  extra: Record<string, string> = {},
): Request<unknown, unknown> {
  const metadata: Metadata = {};
  for (const [key, value] of Object.entries(request.getMetadata() ?? {})) {
    // Drop a differently-cased copy, or the browser would join both values.
    const name = key.toLowerCase();
    if (name !== headerName && !(name in extra)) metadata[key] = value;
  }
  metadata[headerName] = headerValue;
  Object.assign(metadata, extra);
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

/** grpc-web rejects with RpcError, or with a plain `{ code, message }` for status errors. */
function codeOf(error: unknown): number | undefined {
  return typeof error === "object" && error !== null && "code" in error
    ? Number((error as { code: unknown }).code)
    : undefined;
}

function methodName(request: Request<unknown, unknown>): string {
  return request.getMethodDescriptor().getName().replace(/^\//, "");
}
