/**
 * Usage (a): the app brings its own `fetchToken` and uses the Connect interceptor. The least an
 * app pays for the library: no grant, no tab sharing, no ky.
 */
import { createAuthInterceptor, createTokenSource } from "../../src/index.js";

export const tokens = createTokenSource({
  fetchToken: async ({ signal }) => {
    const res = await fetch("/auth/token", { method: "POST", credentials: "include", signal });
    if (!res.ok) throw new Error(`the token endpoint answered ${res.status}`);
    return ((await res.json()) as { token: string }).token;
  },
});

export const interceptors = [createAuthInterceptor(tokens)];
