/**
 * `grpc-web-auth/grpc-web`: the interceptors for clients built on Google's grpc-web runtime. Token
 * sources, grants and the rest come from the main entry, `grpc-web-auth`.
 */
export type { GrpcWebInterceptorOptions, GrpcWebInterceptors } from "./grpc-web/interceptors.js";
export { createGrpcWebInterceptors } from "./grpc-web/interceptors.js";
