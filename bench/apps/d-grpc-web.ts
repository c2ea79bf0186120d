/**
 * Usage (d): Google's grpc-web runtime (`grpc-web-auth/grpc-web`) with the app's own
 * `fetchToken`, as in usage (a).
 */
import { createGrpcWebInterceptors } from "../../src/grpc-web.js";
import { createTokenSource } from "../../src/index.js";

export const tokens = createTokenSource({
  fetchToken: async ({ signal }) => {
    const res = await fetch("/auth/token", { method: "POST", credentials: "include", signal });
    if (!res.ok) throw new Error(`the token endpoint answered ${res.status}`);
    return ((await res.json()) as { token: string }).token;
  },
});

/** Spread into `new GrpcWebClientBase({ format: "binary", ...clientOptions })`. */
export const clientOptions = createGrpcWebInterceptors(tokens);
