/**
 * The gRPC status codes this library decides on or answers with. Connect's `Code` and grpc-web's
 * `StatusCode` use the same numbers; plain numbers keep either runtime out of the other's bundle.
 */
export const GrpcCode = {
  Canceled: 1,
  Unknown: 2,
  DeadlineExceeded: 4,
  Internal: 13,
  Unavailable: 14,
  Unauthenticated: 16,
} as const;
