import { GrpcCode } from "../core/codes.js";
import { callApp } from "../core/report-error.js";
import { TokenFetchError } from "../core/token-fetch-error.js";

/**
 * For query layers that retry failed calls on their own (TanStack Query's `retry`, Connect-Query
 * through it): whether another try of a failed call can help. No for an auth failure (the
 * interceptor already refreshed the token and replayed the call once), for a call that failed
 * because no token could be had (the token source backs off and repeats the failure without a
 * request, and a refused sign-in needs the user), and for a cancelled call. Yes for anything
 * else, such as the server being unavailable.
 *
 * Takes a `ConnectError` or grpc-web's `RpcError` (anything with a numeric `code`); `isAuthError`,
 * typed for the error your query layer holds (`E`), is the one the interceptor was given.
 *
 * @example
 * ```ts
 * const queryClient = new QueryClient({
 *   defaultOptions: { queries: { retry: (count, error) => count < 3 && isRetryableError(error) } },
 * });
 * ```
 */
export function isRetryableError<E = unknown>(
  error: unknown,
  options: { isAuthError?: ((error: E) => boolean) | undefined } = {},
): boolean {
  if (typeof error !== "object" || error === null) return true;
  const { code, cause } = error as { code?: unknown; cause?: unknown };
  if (cause instanceof TokenFetchError) return false;
  if (code === GrpcCode.Unauthenticated || code === GrpcCode.Canceled) return false;
  // A predicate that throws is reported, and the failure counts as retryable.
  const { isAuthError } = options;
  return isAuthError === undefined || !callApp(() => isAuthError(error as E) === true, false);
}
