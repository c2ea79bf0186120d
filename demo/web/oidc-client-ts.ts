/**
 * A page that signs in with oidc-client-ts (a real OIDC SDK) and calls the API through the
 * library with the README's oidc-client-ts recipe as `fetchToken`. `window.oidcPage` answers the
 * Playwright spec (test/browser/oidc-client-ts.spec.ts) in plain JSON.
 */
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { UserManager } from "oidc-client-ts";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";
import {
  createAuthInterceptor,
  createTokenSource,
  type SessionEndReason,
} from "../../src/index.js";
import type { CallResult } from "./harness.js";
import type { WhoAmI } from "./lib/clients.js";
import { describeError, formatError } from "./lib/describe-error.js";
import { oidcClientTsGrant } from "./lib/sdk-grants.js";

/** Where the page signs in and what it calls; from the query string, kept across the redirect. */
export interface OidcPageConfig {
  /** The provider's issuer URL (its discovery document is under it). */
  issuer: string;
  clientId: string;
  /** The API's resource indicator (RFC 8707), when the provider wants one. */
  resource?: string | undefined;
  /** Base URL of the DemoService. */
  apiUrl: string;
}

/** What the page counted since it loaded. */
export interface OidcPageStats {
  /** `onReplay` calls of the auth interceptor. */
  replays: number;
  /** `signinSilent()` calls the recipe made. */
  silentRenews: number;
  /** Tokens the source fetched (through the recipe). */
  tokensFetched: number;
  /** `session-ended` reasons, in order. */
  sessionEnded: SessionEndReason[];
}

/** `window.oidcPage`. */
export interface OidcPage {
  /** Resolves once the page has handled a redirect back, if it was one; the subject, if signed in. */
  ready: Promise<string | undefined>;
  signIn(): Promise<void>;
  whoAmI(): Promise<CallResult<WhoAmI>>;
  stats(): OidcPageStats;
  /** The access and refresh tokens oidc-client-ts holds: for the test to revoke them. */
  held(): Promise<{ accessToken?: string; refreshToken?: string }>;
}

declare global {
  interface Window {
    oidcPage: OidcPage;
  }
}

const STORAGE_KEY = "grpc-web-auth:oidc-client-ts-page";
const config = readConfig();
const status = element("status");
const log = element("log");
const signInButton = element("sign-in") as HTMLButtonElement;
const whoAmIButton = element("who-am-i") as HTMLButtonElement;

const manager = new UserManager({
  authority: config.issuer,
  client_id: config.clientId,
  redirect_uri: location.origin + location.pathname,
  response_type: "code",
  scope: "openid api",
  ...(config.resource !== undefined && { resource: config.resource }),
  // Renew only when the recipe asks: the test counts every renewal.
  automaticSilentRenew: false,
});

const stats: OidcPageStats = { replays: 0, silentRenews: 0, tokensFetched: 0, sessionEnded: [] };
const tokens = createTokenSource({
  fetchToken: oidcClientTsGrant({
    getUser: () => manager.getUser(),
    signinSilent: (args) => {
      stats.silentRenews++;
      return manager.signinSilent(args);
    },
  }),
});
tokens.subscribe((event) => {
  if (event.type === "token" && event.source === "fetch") stats.tokensFetched++;
  if (event.type === "session-ended") stats.sessionEnded.push(event.reason);
});
const client = createClient(
  DemoService,
  createConnectTransport({
    baseUrl: config.apiUrl,
    interceptors: [createAuthInterceptor(tokens, { onReplay: () => stats.replays++ })],
  }),
);

const ready = start();

window.oidcPage = {
  ready,
  signIn: () => manager.signinRedirect(),
  async whoAmI() {
    try {
      const res = await client.whoAmI({});
      const value = {
        subject: res.subject,
        tokenId: res.tokenId,
        expiresAtUnix: Number(res.expiresAtUnix),
      };
      show(`WhoAmI: ${value.subject}`);
      return { ok: true, value };
    } catch (e) {
      const error = describeError(e);
      show(`WhoAmI failed: ${formatError(error)}`);
      return { ok: false, error };
    }
  },
  stats: () => ({ ...stats, sessionEnded: [...stats.sessionEnded] }),
  async held() {
    const user = await manager.getUser();
    return {
      ...(user && { accessToken: user.access_token }),
      ...(user?.refresh_token !== undefined && { refreshToken: user.refresh_token }),
    };
  },
};

signInButton.addEventListener("click", () => void window.oidcPage.signIn());
whoAmIButton.addEventListener("click", () => void window.oidcPage.whoAmI());

/** Completes a redirect back from the provider, if this load is one; the subject, if signed in. */
async function start(): Promise<string | undefined> {
  const query = new URLSearchParams(location.search);
  if (query.has("code") || query.has("error")) {
    try {
      await manager.signinRedirectCallback();
    } finally {
      // The code is spent either way: keep it out of the address bar and the history.
      history.replaceState(null, "", location.pathname);
    }
  }
  const user = await manager.getUser();
  const subject = user?.profile.sub;
  status.textContent = subject === undefined ? "signed out" : `signed in as ${subject}`;
  signInButton.disabled = false;
  whoAmIButton.disabled = subject === undefined;
  return subject;
}

function readConfig(): OidcPageConfig {
  const query = new URLSearchParams(location.search);
  const issuer = query.get("issuer");
  const clientId = query.get("client_id");
  const apiUrl = query.get("api");
  if (issuer !== null && clientId !== null && apiUrl !== null) {
    const given: OidcPageConfig = {
      issuer,
      clientId,
      apiUrl,
      resource: query.get("resource") ?? undefined,
    };
    sessionStorage.setItem(STORAGE_KEY, JSON.stringify(given));
    return given;
  }
  const saved = sessionStorage.getItem(STORAGE_KEY);
  if (saved === null) {
    throw new Error("open this page with ?issuer=…&client_id=…&api=… (and &resource=…)");
  }
  return JSON.parse(saved) as OidcPageConfig;
}

function show(line: string): void {
  const item = document.createElement("li");
  item.textContent = line;
  log.append(item);
}

function element(testId: string): HTMLElement {
  const found = document.querySelector<HTMLElement>(`[data-testid="${testId}"]`);
  if (found === null) throw new Error(`oidc-client-ts.html has no [data-testid="${testId}"]`);
  return found;
}
