/** Usage (c): usage (b), with the token shared across the tabs of the origin. */
import {
  createAuthInterceptor,
  createTokenSource,
  passwordGrant,
  shareAcrossTabs,
} from "../../src/index.js";
import { signInForm } from "./sign-in-form.js";

export const tokens = createTokenSource({
  fetchToken: passwordGrant({ endpoint: "/auth/token", credentials: signInForm }),
  crossTab: shareAcrossTabs("app"),
});

export const interceptors = [createAuthInterceptor(tokens)];
