/** Usage (e): usage (b), with DPoP proofs: tokens bound to a key the page holds. */
import {
  createAuthInterceptor,
  createTokenSource,
  dpopProofs,
  passwordGrant,
} from "../../src/index.js";
import { signInForm } from "./sign-in-form.js";

export const tokens = createTokenSource({
  fetchToken: passwordGrant({ endpoint: "/auth/token", credentials: signInForm }),
  dpop: dpopProofs(),
});

export const interceptors = [createAuthInterceptor(tokens)];
