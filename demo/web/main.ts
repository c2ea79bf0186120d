/**
 * The demo page: sign in, call WhoAmI and Ticks through the auth interceptor, and watch the token
 * source fetch, refresh (rotating the refresh token) and replay. Signing out revokes the refresh
 * token. The tokens and the password are never shown or logged.
 */
import {
  type Credentials,
  createTokenSource,
  dpopProofs,
  passwordGrant,
  type SessionEndReason,
  type TokenSource,
} from "../../src/index.js";
import {
  DEFAULT_API_URL,
  probeBackend,
  revokeAllTokens,
  revokeEndpoint,
  tokenEndpoint,
} from "./lib/backend.js";
import { type ClientKind, clientKinds, type DemoClient, isClientKind } from "./lib/clients.js";
import { describeError, type ErrorInfo, formatError } from "./lib/describe-error.js";

const MAX_LOG_ENTRIES = 50;
const apiUrl = DEFAULT_API_URL;

const ui = {
  form: element<HTMLFormElement>("sign-in-form"),
  username: element<HTMLInputElement>("username"),
  password: element<HTMLInputElement>("password"),
  dpop: element<HTMLInputElement>("dpop"),
  signOut: element<HTMLButtonElement>("sign-out"),
  subject: element("subject"),
  lifetime: element("token-lifetime"),
  binding: element("token-binding"),
  tokensFetched: element("tokens-fetched"),
  rotations: element("rotations"),
  replays: element("replays"),
  protocol: element<HTMLFieldSetElement>("protocol"),
  whoAmI: element<HTMLButtonElement>("who-am-i"),
  ticks: element<HTMLButtonElement>("ticks"),
  revoke: element<HTMLButtonElement>("revoke"),
  revokeNote: element("revoke-note"),
  log: element<HTMLOListElement>("log"),
  logEmpty: element("log-empty"),
  clearLog: element<HTMLButtonElement>("clear-log"),
  apiUrl: element("api-url"),
};

/** Whether the user signed in and has not signed out, nor been signed out by the server. */
let signedIn = false;
/**
 * The credentials typed at sign-in, kept only until the first token arrives: after that the
 * grant refreshes with the server's refresh token, and the page holds no password.
 */
let pendingSignIn: Credentials | undefined;
/** Whether a token arrived since the last sign-in: a session the server can end. */
let hadToken = false;
let tokensFetched = 0;
/** Refreshes since the last sign-in: the backend answers each with a new refresh token. */
let rotations = 0;
let replays = 0;
/** Calls under way, oldest first, so that a replay shows on the call it belongs to. */
const underway: Array<{ method: string; replayed: boolean }> = [];

/**
 * One token source for the whole app, shared by every client: one fetch serves every call. With
 * `dpop`, its tokens are bound to a key pair made in this page (DPoP): a stolen token is useless
 * without the key, which cannot be read out of the browser.
 */
function createSource(dpop: boolean): TokenSource {
  const source = createTokenSource({
    fetchToken: passwordGrant({
      endpoint: tokenEndpoint(apiUrl),
      // undefined once signed in: a fetch that cannot refresh then ends the session.
      credentials: () => pendingSignIn,
      // Signing out (clear()) revokes the refresh token at the server, not only here.
      revokeEndpoint: revokeEndpoint(apiUrl),
    }),
    dpop: dpop ? dpopProofs() : undefined,
  });
  source.subscribe((event) => {
    if (event.type === "token") {
      tokensFetched++;
      ui.tokensFetched.textContent = String(tokensFetched);
      // A token after the sign-in's came from the refresh token, which the backend rotated.
      if (hadToken) rotations++;
      ui.rotations.textContent = String(rotations);
      // Signed in: from now on the grant refreshes without the password.
      pendingSignIn = undefined;
      ui.password.value = "";
      hadToken = true;
    } else if (event.type === "session-ended") {
      sessionEnded(event.reason);
    }
  });
  return source;
}

let dpop = ui.dpop.checked;
let tokens = createSource(dpop);
let kind: ClientKind = "grpc-web";
let client = createDemoClient(kind);

function createDemoClient(clientKind: ClientKind): DemoClient {
  return clientKinds[clientKind].create({
    apiUrl,
    tokens,
    onReplay: ({ method }) => {
      replays++;
      ui.replays.textContent = String(replays);
      const call = underway.find((c) => !c.replayed && method.endsWith(`/${c.method}`));
      if (call !== undefined) call.replayed = true;
    },
  });
}

// The protocol toggle: one radio per client kind.
for (const [id, info] of Object.entries(clientKinds)) {
  const label = document.createElement("label");
  const radio = document.createElement("input");
  radio.type = "radio";
  radio.name = "protocol";
  radio.value = id;
  radio.checked = id === kind;
  radio.dataset.testid = `protocol-${id}`;
  label.append(radio, ` ${info.label}`);
  ui.protocol.append(label);
}
ui.protocol.addEventListener("change", (event) => {
  const value = (event.target as HTMLInputElement).value;
  if (!isClientKind(value) || value === kind) return;
  kind = value;
  client = createDemoClient(kind);
});

ui.form.addEventListener("submit", (event) => {
  event.preventDefault();
  // A new identity needs a new token: drop the old session first.
  tokens.clear();
  if (ui.dpop.checked !== dpop) {
    // DPoP is the source's choice, made when it is created: a new source and client.
    dpop = ui.dpop.checked;
    tokens = createSource(dpop);
    client = createDemoClient(kind);
  }
  ui.binding.textContent = dpop ? "DPoP (bound to this page's key)" : "Bearer";
  pendingSignIn = { username: ui.username.value.trim(), password: ui.password.value };
  hadToken = false;
  rotations = 0;
  ui.rotations.textContent = "0";
  signedIn = true;
  ui.subject.textContent = "signing in…";
  renderSignedIn();
  void callWhoAmI();
});

ui.signOut.addEventListener("click", () => {
  signOut();
  tokens.clear();
  ui.subject.textContent = "not signed in";
  addLogEntry("Sign out").done(
    "info",
    "the token source was cleared and the refresh token revoked at the server",
  );
});

/** The source says new tokens will not help: the user has to sign in again. */
function sessionEnded(reason: SessionEndReason): void {
  // Refused at sign-in: the user never was signed in.
  const wasSignedIn = hadToken;
  signOut();
  ui.subject.textContent = wasSignedIn
    ? "signed out — sign in again"
    : "not signed in (credentials refused)";
  ui.subject.title = SESSION_END_TEXT[reason];
}

const SESSION_END_TEXT: Record<SessionEndReason, string> = {
  "credentials-refused": "the token endpoint refused the credentials",
  "token-refused": "the server refused a token fetched to replace a refused one",
  "refresh-token-refused": "the token endpoint refused the refresh token",
  "sign-in-required": "there is no session: sign in",
};

function signOut(): void {
  signedIn = false;
  pendingSignIn = undefined;
  hadToken = false;
  ui.password.value = "";
  ui.subject.title = "";
  renderSignedIn();
}

ui.whoAmI.addEventListener("click", () => void callWhoAmI());
ui.ticks.addEventListener("click", () => void streamTicks());
ui.revoke.addEventListener("click", () => void revoke());
ui.clearLog.addEventListener("click", () => {
  ui.log.replaceChildren();
  ui.logEmpty.hidden = false;
});

async function callWhoAmI(): Promise<void> {
  const entry = addLogEntry("WhoAmI");
  try {
    const me = await client.whoAmI();
    ui.subject.textContent = me.subject;
    entry.done("OK", `${me.subject} · token id ${me.tokenId.slice(0, 8)}`);
  } catch (e) {
    entry.failed(describeError(e));
  }
}

async function streamTicks(): Promise<void> {
  const entry = addLogEntry("Ticks");
  const seen: number[] = [];
  try {
    await client.ticks({ count: 5, intervalMs: 250 }, (tick) => {
      seen.push(tick.n);
      entry.progress(`ticks: ${seen.join(" ")}`);
    });
    entry.done("OK", `${seen.length} ticks: ${seen.join(" ")}`);
  } catch (e) {
    entry.failed(describeError(e), seen.length > 0 ? `after ${seen.length} ticks: ` : "");
  }
}

async function revoke(): Promise<void> {
  const entry = addLogEntry("Revoke");
  try {
    await revokeAllTokens(apiUrl);
    entry.done(
      "info",
      "the server revoked every token issued so far: the next call is rejected once, then replayed with a new token",
    );
  } catch (e) {
    entry.done("failed", e instanceof Error ? e.message : String(e));
  }
}

function renderSignedIn(): void {
  ui.signOut.disabled = !signedIn;
  ui.whoAmI.disabled = !signedIn;
  ui.ticks.disabled = !signedIn;
}

/** A line of the call log, newest first. */
function addLogEntry(method: string) {
  const item = document.createElement("li");
  item.dataset.testid = "log-entry";
  item.dataset.method = method;
  const cells = ["time", "protocol", "method", "outcome", "detail"].map((name) => {
    const cell = document.createElement("span");
    cell.className = name;
    cell.dataset.testid = `log-${name}`;
    return cell;
  });
  const [time, protocol, name, outcome, detail] = cells as [
    HTMLSpanElement,
    HTMLSpanElement,
    HTMLSpanElement,
    HTMLSpanElement,
    HTMLSpanElement,
  ];
  time.textContent = new Date().toLocaleTimeString([], { hour12: false });
  protocol.textContent = method === "WhoAmI" || method === "Ticks" ? clientKinds[kind].label : "";
  name.textContent = method;
  const call = { method, replayed: false };
  underway.push(call);
  const set = (state: string, text: string) => {
    item.dataset.outcome = state;
    outcome.textContent = state === "info" ? "done" : state;
    detail.textContent = text;
  };
  const end = (state: string, text: string) => {
    underway.splice(underway.indexOf(call), 1);
    item.dataset.replayed = String(call.replayed);
    set(state, call.replayed ? `${text} · replayed once with a new token` : text);
  };
  set("pending", "…");
  item.append(...cells);
  ui.log.prepend(item);
  ui.logEmpty.hidden = true;
  while (ui.log.children.length > MAX_LOG_ENTRIES) ui.log.lastElementChild?.remove();
  return {
    progress: (text: string) => set("pending", text),
    done: end,
    /** Shows the code name and the message the core's error table gives. */
    failed: (error: ErrorInfo, prefix = "") => end(error.code, prefix + formatError(error)),
  };
}

/** The token's remaining lifetime, from `tokens.peek()`; never the token itself. */
function renderLifetime(): void {
  const info = tokens.peek();
  if (info === undefined) {
    ui.lifetime.textContent = "none";
  } else if (info.expiresAt === undefined) {
    ui.lifetime.textContent = "no expiry known (opaque token)";
  } else {
    const left = info.expiresAt - Date.now();
    ui.lifetime.textContent =
      left <= 0
        ? "expired: a new one is fetched on the next call"
        : `${formatDuration(left)} left${info.fresh ? "" : " · refreshed on the next call"}`;
  }
}

function formatDuration(ms: number): string {
  const seconds = Math.ceil(ms / 1000);
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
}

async function showBackendMode(): Promise<void> {
  const mode = await probeBackend(apiUrl);
  ui.revoke.disabled = mode !== "test";
  ui.revokeNote.textContent = {
    test: "The backend runs in test mode, so you can revoke every token it issued and watch the next call get replayed.",
    normal:
      "Revoking needs the backend in test mode (npm start runs it so): the button is disabled.",
    unreachable: `The backend at ${apiUrl} does not answer: start it with npm start.`,
  }[mode];
}

function element<T extends HTMLElement = HTMLElement>(testId: string): T {
  const found = document.querySelector<T>(`[data-testid="${testId}"]`);
  if (found === null) throw new Error(`index.html has no [data-testid="${testId}"]`);
  return found;
}

ui.apiUrl.textContent = apiUrl;
ui.username.value = "alice";
renderSignedIn();
renderLifetime();
setInterval(renderLifetime, 250);
void showBackendMode();
