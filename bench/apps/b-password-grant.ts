/** Usage (b): `passwordGrant` (and with it ky) and the Connect interceptor. */
import { createAuthInterceptor, createTokenSource, passwordGrant } from "../../src/index.js";
import { signInForm } from "./sign-in-form.js";

export const tokens = createTokenSource({
  fetchToken: passwordGrant({ endpoint: "/auth/token", credentials: signInForm }),
});

export const interceptors = [createAuthInterceptor(tokens)];
