/**
 * The "Sign in with OpenID" page: `authorizationCodeGrant` against the demo identity provider
 * (`demo/idp/main.ts`), a DPoP source shared across tabs, and a Connect client of the API that
 * accepts the provider's tokens. `window.signInPage` lets the browser tests drive it.
 */
import { type Client, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";
import {
  authorizationCodeGrant,
  createAuthInterceptor,
  createTokenSource,
  type DpopKeyHandle,
  dpopProofs,
  shareAcrossTabs,
  type TokenEvent,
} from "../../src/index.js";
import { describeError, formatError } from "./lib/describe-error.js";

const trim = (url: string) => url.replace(/\/+$/, "");
const IDP_URL = trim(import.meta.env.VITE_IDP_URL || "http://127.0.0.1:9090");
const API_URL = trim(import.meta.env.VITE_IDP_API_URL || "http://127.0.0.1:9091");

const signIn = authorizationCodeGrant({
  issuer: IDP_URL,
  clientId: "spa",
  redirectUri: `${location.origin}${location.pathname}`,
  scope: "openid offline_access api",
  resource: "urn:grpc-web-auth:api",
});
// The source hands its grant its DPoP key (the grant contract's attach hook): kept here too, so
// the tests can compare a token's cnf.jkt with the key's thumbprint.
let key: DpopKeyHandle | undefined;
const attach = signIn.attach;
signIn.attach = (source) => {
  key = source.dpop;
  attach?.(source);
};
const dpop = dpopProofs();
const tokens = createTokenSource({
  fetchToken: signIn,
  crossTab: shareAcrossTabs("sign-in-demo"),
  dpop,
});
const client: Client<typeof DemoService> = createClient(
  DemoService,
  createConnectTransport({ baseUrl: API_URL, interceptors: [createAuthInterceptor(tokens)] }),
);

const events: TokenEvent[] = [];
tokens.subscribe((event) => events.push(event));

const $ = (id: string) => document.querySelector(`[data-testid="${id}"]`) as HTMLElement;
const show = (subject: string | undefined, error?: unknown) => {
  if (subject !== undefined) $("oidc-subject").textContent = subject;
  if (error !== undefined) {
    $("oidc-error").textContent =
      typeof error === "string" ? error : formatError(describeError(error));
  }
};

/** What a test reads back; a call's outcome as plain data. */
type Outcome<T> = { ok: true; value: T } | { ok: false; error: string; code?: number | undefined };
const outcome = async <T>(work: () => Promise<T>): Promise<Outcome<T>> => {
  try {
    return { ok: true, value: await work() };
  } catch (error) {
    const { code, reason } = error as { code?: number; reason?: string };
    return { ok: false, error: `${reason ?? ""} ${String(error)}`.trim(), code };
  }
};

const whoAmI = () =>
  outcome(async () => {
    const { subject } = await client.whoAmI({});
    show(subject);
    return subject;
  });

/** Resolves once the page has read its URL: the provider's answer, or not. */
const callback: Promise<Outcome<boolean>> = outcome(() => signIn.handleCallback()).then(
  async (result) => {
    if (!result.ok) show(undefined, result.error);
    else if (result.value) await whoAmI();
    return result;
  },
);

const page = {
  callback,
  signIn: () => signIn.signIn(),
  whoAmI,
  token: () => outcome(() => tokens.getToken()),
  clear: () => tokens.clear(),
  events: () => events.map((event) => ({ ...event, error: undefined })),
  /** The source's DPoP key thumbprint: what `cnf.jkt` of its tokens must be. */
  thumbprint: () => key?.thumbprint(),
};
declare global {
  interface Window {
    signInPage: typeof page;
  }
}
window.signInPage = page;

$("oidc-sign-in").addEventListener(
  "click",
  () => void signIn.signIn().catch((e) => show(undefined, e)),
);
$("oidc-call").addEventListener("click", () => void whoAmI());
$("oidc-sign-out").addEventListener("click", () => {
  tokens.clear();
  show("not signed in");
});
tokens.subscribe((event) => {
  if (event.type === "cleared" || event.type === "session-ended") show("not signed in");
});
if (new URLSearchParams(location.search).has("start")) void signIn.signIn();
