import { createContextKey } from "@connectrpc/connect";

/**
 * Set on a call's context values to send it without a token: no header is set
 * and no token is fetched.
 *
 * @example
 * ```ts
 * import { createContextValues } from "@connectrpc/connect";
 * await client.getPublicInfo({}, { contextValues: createContextValues().set(skipAuth, true) });
 * ```
 */
export const skipAuth = createContextKey<boolean>(false, {
  description: "grpc-web-auth: skip auth",
});
