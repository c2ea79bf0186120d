/**
 * The demo page: sign in, call WhoAmI and Ticks through the auth interceptor, and watch the token
 * source fetch, refresh and replay. The token and the password are never shown or logged.
 */
import { type Credentials, createTokenSource } from "../../src/index.js";
import { DEFAULT_API_URL, probeBackend, revokeAllTokens, tokenEndpoint } from "./lib/backend.js";
import { type ClientKind, clientKinds, type DemoClient, isClientKind } from "./lib/clients.js";
import { describeError, type ErrorInfo, formatError } from "./lib/describe-error.js";

const MAX_LOG_ENTRIES = 50;
const apiUrl = DEFAULT_API_URL;

const ui = {
  form: element<HTMLFormElement>("sign-in-form"),
  username: element<HTMLInputElement>("username"),
  password: element<HTMLInputElement>("password"),
  signOut: element<HTMLButtonElement>("sign-out"),
  subject: element("subject"),
  lifetime: element("token-lifetime"),
  tokensFetched: element("tokens-fetched"),
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

/** The credentials taken from the form at sign-in; undefined when signed out. */
let session: Credentials | undefined;
let tokensFetched = 0;
let replays = 0;
/** Calls under way, oldest first, so that a replay shows on the call it belongs to. */
const underway: Array<{ method: string; replayed: boolean }> = [];

// One token source for the whole app, shared by every client: one fetch serves every call.
const tokens = createTokenSource({
  endpoint: tokenEndpoint(apiUrl),
  credentials: () => {
    if (session === undefined) throw new Error("not signed in");
    return session;
  },
});
tokens.subscribe((event) => {
  if (event.type !== "token") return;
  tokensFetched++;
  ui.tokensFetched.textContent = String(tokensFetched);
});

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
  session = { username: ui.username.value.trim(), password: ui.password.value };
  // A new identity needs a new token.
  tokens.clear();
  ui.subject.textContent = "signing in…";
  renderSignedIn();
  void callWhoAmI();
});

ui.signOut.addEventListener("click", () => {
  session = undefined;
  tokens.clear();
  ui.password.value = "";
  ui.subject.textContent = "not signed in";
  renderSignedIn();
  addLogEntry("Sign out").done("info", "the token source was cleared");
});

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
    const error = describeError(e);
    if (error.tokenFetch !== undefined && error.code === "Unauthenticated") {
      ui.subject.textContent = "not signed in (credentials refused)";
    }
    entry.failed(error);
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
  const signedIn = session !== undefined;
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
