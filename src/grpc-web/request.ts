import { type Metadata, type Request, RpcError, type StatusCode } from "grpc-web";
import type { Failure } from "../replay/call.js";
import { tokenFailure } from "../replay/token-failure.js";

export type AnyRequest = Request<unknown, unknown>;

/**
 * A request like `request` whose metadata is a copy with the auth headers set: the caller's
 * metadata object is never changed. grpc-web's Request class is not exported, so this mirrors
 * its accessors.
 */
export function withHeaders(request: AnyRequest, headers: Record<string, string>): AnyRequest {
  const metadata: Metadata = {};
  for (const [key, value] of Object.entries(request.getMetadata() ?? {})) {
    // Drop a differently-cased copy, or the browser would join both values.
    if (!(key.toLowerCase() in headers)) metadata[key] = value;
  }
  Object.assign(metadata, headers);
  const original = request as AnyRequest & { getCallOptions?: () => unknown };
  return {
    getRequestMessage: () => request.getRequestMessage(),
    getMethodDescriptor: () => request.getMethodDescriptor(),
    getMetadata: () => metadata,
    getCallOptions: () => original.getCallOptions?.(),
  } as AnyRequest;
}

/** grpc-web carries a call's deadline as metadata `deadline`: ms since the epoch. */
export function deadlineOf(request: AnyRequest): number | undefined {
  const deadline = Number(request.getMetadata()?.deadline);
  return Number.isFinite(deadline) && deadline > 0 ? deadline : undefined;
}

/** `package.Service/Method`, from the descriptor's `/package.Service/Method`. */
export function methodName(request: AnyRequest): string {
  return request.getMethodDescriptor().getName().replace(/^\//, "");
}

/** A failed attempt as the replay rules read it; grpc-web rejects with RpcError or `{ code }`. */
export function failureOf(error: unknown): Failure {
  const { code, metadata } = (error ?? {}) as { code?: unknown; metadata?: Record<string, string> };
  return { error, code: typeof code === "number" ? code : Number(code), headers: metadata };
}

/** Token failures become RpcErrors with the code from the one table (`tokenFailure`). */
export function toRpcError(error: unknown): RpcError {
  if (error instanceof RpcError) return error;
  const { code, message, cause } = tokenFailure(error);
  const rpcError = new RpcError(code as StatusCode, message, {});
  if (cause !== undefined) Object.defineProperty(rpcError, "cause", { value: cause });
  return rpcError;
}
