import type { BrowserContext, Page } from "@playwright/test";
import type { ClientKind } from "../../demo/web/lib/clients.js";
import { TokenFetchCode } from "../../src/index.js";
import { MAX_TOKEN_CHARS, PROTOCOL } from "../../src/tabs/channel.js";
import { expect, type HarnessDriver, ok, openHarness, test } from "./fixtures.js";
import { API_URL, WEB_URL } from "./servers.js";

// Two app pages share a session (shareAcrossTabs) while a stranger of the same origin, a page under
// another path, listens and posts on their channel: it hears no refresh token in what the tabs
// announce, and its old-version, oversize and forged messages change nothing in the app.
// Sharing does not depend on the client kind, so these run in one project only.
test.skip(({ clientKind }) => clientKind !== "grpc-web", "cross-tab runs in the grpc-web project");

const CHANNEL = "app";
/** The text a forged failure carries: it must reach no page. */
const FORGED_TEXT = "Session locked. Call +1-555-0100";
/** The version before this one: its tokens carried the refresh token as `state`. */
const OLD = PROTOCOL - 1;
/** An hour ahead: a token announced with it would be taken as fresh. */
const inAnHour = () => Date.now() + 3_600_000;

/** What the intruder page keeps on `window`. */
type IntruderWindow = Window & {
  intruder: { channel: BroadcastChannel; heard: Record<string, unknown>[] };
};

/** A page of the app's origin, under another path, with its own end of the tabs' channel. */
interface Intruder {
  page: Page;
  post(message: Record<string, unknown>): Promise<void>;
  /** Every message it heard on the channel, in order. */
  heard(): Promise<Record<string, unknown>[]>;
  /**
   * Asks the tabs what they hold (a query, holding `token`) and resolves with the `tabs` answers:
   * each tab answers after it handled everything the intruder posted before (one sender's
   * messages arrive in order), and after everything it posted before itself. Also asks in the
   * previous version, whose tabs answer with a token message, so the spec says what an old tab
   * took rather than time out.
   */
  ask(token: string | null, tabs: number): Promise<Record<string, unknown>[]>;
}

async function openIntruder(context: BrowserContext): Promise<Intruder> {
  const page = await context.newPage();
  const url = `${WEB_URL}/intruder/`;
  await page.route(url, (route) =>
    route.fulfill({ contentType: "text/html", body: "<!doctype html><title>intruder</title>" }),
  );
  await page.goto(url);
  await page.evaluate((name) => {
    const channel = new BroadcastChannel(name);
    const heard: Record<string, unknown>[] = [];
    channel.onmessage = (event: MessageEvent) => heard.push(event.data);
    (window as unknown as IntruderWindow).intruder = { channel, heard };
  }, `grpc-web-auth:${CHANNEL}`);
  return {
    page,
    post: (message) =>
      page.evaluate(
        (m) => (window as unknown as IntruderWindow).intruder.channel.postMessage(m),
        message,
      ),
    heard: () => page.evaluate(() => (window as unknown as IntruderWindow).intruder.heard),
    ask: (token, tabs) =>
      page.evaluate(
        ([held, expected, old, current]) => {
          const { channel } = (window as unknown as IntruderWindow).intruder;
          const id = `intruder-${Math.random().toString(36).slice(2)}`;
          const answers: Record<string, unknown>[] = [];
          return new Promise<Record<string, unknown>[]>((resolve, reject) => {
            const timer = setTimeout(() => {
              channel.removeEventListener("message", listen);
              reject(new Error(`waited 5000 ms for ${expected} answers; got ${answers.length}`));
            }, 5_000);
            const listen = (event: MessageEvent) => {
              const data = event.data as Record<string, unknown>;
              const answer =
                (data.v === current && data.type === "answer" && data.to === id) ||
                (data.v === old && data.type === "token");
              if (answer) answers.push(data);
              if (answers.length < expected) return;
              clearTimeout(timer);
              channel.removeEventListener("message", listen);
              resolve(answers);
            };
            channel.addEventListener("message", listen);
            channel.postMessage({ v: old, type: "query" });
            channel.postMessage({ v: current, type: "query", id, token: held });
          });
        },
        [token, tabs, OLD, PROTOCOL] as const,
      ),
  };
}

/** The tokens the backend issued, as its token endpoint's answers crossed the wire. */
interface Issued {
  access: string[];
  refresh: string[];
  /** The access tokens' `jti`: what WhoAmI echoes as `tokenId`. */
  ids: string[];
}

/** Records every token the backend issues to the pages of `context` from now on. */
function recordIssued(context: BrowserContext): () => Promise<Issued> {
  const answers: Promise<{ access_token?: string; refresh_token?: string } | undefined>[] = [];
  context.on("response", (response) => {
    const request = response.request();
    if (request.method() !== "POST" || request.url() !== `${API_URL}/auth/token`) return;
    if (response.status() === 200) answers.push(response.json().catch(() => undefined));
  });
  return async () => {
    const bodies = (await Promise.all(answers)).filter((body) => body !== undefined);
    const access = bodies.flatMap((body) => body.access_token ?? []);
    const ids = access.map((jwt) => {
      const payload = JSON.parse(Buffer.from(jwt.split(".")[1] ?? "", "base64url").toString());
      return String(payload.jti);
    });
    return { access, refresh: bodies.flatMap((body) => body.refresh_token ?? []), ids };
  };
}

/** Two app pages signed in to one session, the intruder, and the tokens the backend issued. */
async function openScene(context: BrowserContext, clientKind: ClientKind) {
  const issued = recordIssued(context);
  const tabs = await Promise.all(
    [0, 1].map(() => openHarness(context, clientKind, { crossTab: CHANNEL })),
  );
  const [a, b] = tabs as [HarnessDriver, HarnessDriver];
  const intruder = await openIntruder(context);
  ok(await a.whoAmI());
  ok(await b.whoAmI());
  return { a, b, tabs, intruder, issued };
}

/** `tokensShared` summed over the pages: tokens taken from the channel. */
async function taken(tabs: HarnessDriver[]): Promise<number> {
  const all = await Promise.all(tabs.map((tab) => tab.stats()));
  return all.reduce((sum, stats) => sum + stats.tokensShared, 0);
}

/** What the pages recorded that could show a failure: token errors, session ends, failed calls. */
async function troubles(tabs: HarnessDriver[]) {
  return Promise.all(
    tabs.map(async (tab) => {
      const { tokenErrors, sessionEnded, errors } = await tab.stats();
      return { tokenErrors, sessionEnded, errors, log: await tab.log.allTextContents() };
    }),
  );
}

const untroubled = (n: number) =>
  Array.from({ length: n }, () => ({
    tokenErrors: 0,
    sessionEnded: [],
    errors: 0,
    log: expect.not.arrayContaining([expect.stringMatching(/555-0100|Session locked/)]),
  }));

const contains = (message: unknown, value: string) => JSON.stringify(message).includes(value);

test("a listener hears no refresh token in the tokens announced over four refreshes in two pages, only in answers to a query", async ({
  context,
  clientKind,
  backend,
}) => {
  const { a, b, tabs, intruder, issued } = await openScene(context, clientKind);

  // Each round revokes the access token: the calling page is refused, refreshes, and announces.
  for (const tab of [a, b, a, b]) {
    await backend.revoke();
    ok(await tab.whoAmI());
  }
  // Once both pages answered the intruder, it has heard everything they said before.
  const answers = await intruder.ask(null, 2);
  const heard = await intruder.heard();
  const { refresh } = await issued();

  expect(await backend.stats()).toMatchObject({
    passwordSignIns: 1,
    rotations: 4,
    reuseDetections: 0,
    invalidGrants: 0,
  });
  expect(refresh).toHaveLength(5);
  // What the pages said among themselves: all but their answers to the intruder.
  const before = heard.filter((m) => !String(m.to).startsWith("intruder-"));
  const announced = before.filter((m) => m.type === "token");
  const carrying = before.filter((m) => refresh.some((rt) => contains(m, rt)));
  // The sign-in and the four refreshes were announced, none with its refresh token.
  expect(announced.filter((m) => refresh.some((rt) => contains(m, rt)))).toHaveLength(0);
  expect(announced).toHaveLength(5);
  // Refresh tokens travelled only in answers to a page's query made before (a waiting page asks).
  const queries = new Set(before.filter((m) => m.type === "query").map((m) => m.id));
  expect(carrying.filter((m) => m.type !== "answer" || !queries.has(m.to))).toEqual([]);
  test.info().annotations.push({
    type: "counts",
    description: `heard ${before.length} messages: ${announced.length} token announcements with a refresh token: 0; answers to the pages' queries carrying one: ${carrying.length}`,
  });
  // Asking is what hands it over: the page holding the newest refresh token answers with it.
  const newest = refresh.at(-1) ?? "";
  expect(answers.filter((m) => contains(m, newest))).toHaveLength(1);
  expect(await troubles(tabs)).toEqual(untroubled(2));
});

test("a token in the previous protocol version is taken by no page", async ({
  context,
  clientKind,
  backend,
}) => {
  const { a, b, tabs, intruder, issued } = await openScene(context, clientKind);
  const takenBefore = await taken(tabs);

  await intruder.post({
    v: OLD,
    type: "token",
    token: "forged-old-version",
    expiresAt: inAnHour(),
    state: "forged-refresh-token",
    bound: false,
  });
  const answers = await intruder.ask(null, 2);

  const { access, ids } = await issued();
  // Both pages still hold the token the backend issued, and took nothing.
  expect(answers.map((m) => m.token)).toEqual([access[0], access[0]]);
  expect(await taken(tabs)).toBe(takenBefore);
  for (const tab of [a, b]) expect(ids).toContain(ok(await tab.whoAmI()).tokenId);
  expect(await backend.stats()).toMatchObject({ tokenRequests: 1, unauthenticated: 0 });
  expect(await troubles(tabs)).toEqual(untroubled(2));
});

test("messages with fields over the caps are ignored: an oversize token, epoch, sign-out and query id", async ({
  context,
  clientKind,
  backend,
}) => {
  const { a, b, tabs, intruder, issued } = await openScene(context, clientKind);
  const held = (await issued()).access[0] ?? "";
  const takenBefore = await taken(tabs);
  // Header-safe, so only its length stands in the way.
  const huge = "x".repeat(MAX_TOKEN_CHARS + 1);
  const hugeId = "q".repeat(65);

  for (const v of [PROTOCOL, OLD]) {
    await intruder.post({
      v,
      type: "token",
      token: huge,
      expiresAt: inAnHour(),
      bound: false,
      epoch: 7,
    });
  }
  // An epoch past the safe integers would spend every page's refresh token.
  await intruder.post({
    v: PROTOCOL,
    type: "token",
    token: "forged-epoch",
    expiresAt: inAnHour(),
    bound: false,
    epoch: 2 ** 53,
  });
  // A sign-out naming an oversize token would sign every page out.
  await intruder.post({ v: PROTOCOL, type: "cleared", token: huge, revoked: true });
  await intruder.post({ v: PROTOCOL, type: "query", id: hugeId, token: null });
  // Asked with their token, pages signed out would still answer: that they were.
  const answers = await intruder.ask(held, 2);

  const { ids } = await issued();
  expect(answers).toMatchObject([
    { token: held, retired: false },
    { token: held, retired: false },
  ]);
  // No page answered the oversize query (its answer would have come before the one to ours).
  expect((await intruder.heard()).filter((m) => m.to === hugeId)).toEqual([]);
  expect(await taken(tabs)).toBe(takenBefore);
  for (const tab of [a, b]) {
    expect(await tab.peek()).toMatchObject({ fresh: true });
    expect(ids).toContain(ok(await tab.whoAmI()).tokenId);
  }
  expect(await backend.stats()).toMatchObject({ tokenRequests: 1, unauthenticated: 0 });
  expect(await troubles(tabs)).toEqual(untroubled(2));
});

test("a forged failure while no page waits reaches no page: no error, no session end, no backoff, and its text nowhere", async ({
  context,
  clientKind,
  backend,
}) => {
  const { a, tabs, intruder } = await openScene(context, clientKind);

  for (const v of [PROTOCOL, OLD]) {
    // Its own text (the old version showed it to the app), and a backoff of ten minutes.
    const failure = { v, type: "failed", message: FORGED_TEXT, reason: null };
    await intruder.post({
      ...failure,
      code: TokenFetchCode.Unavailable,
      status: 503,
      until: Date.now() + 600_000,
    });
    await intruder.post({
      ...failure,
      code: TokenFetchCode.Unauthenticated,
      status: 401,
      reason: "refresh-token-refused",
      until: null,
    });
  }
  await intruder.ask(null, 2);
  expect(await troubles(tabs)).toEqual(untroubled(2));

  // A refused token makes the page refresh now: no backoff stands in the way.
  await backend.revoke();
  expect(ok(await a.whoAmI()).subject).toBe("alice");

  expect(await backend.stats()).toMatchObject({ rotations: 1, invalidGrants: 0 });
  expect(await troubles(tabs)).toEqual(untroubled(2));
});

test("after a sign-out a token announced by a stranger is taken by no page; the next call signs in", async ({
  context,
  clientKind,
  backend,
}) => {
  const { a, b, tabs, intruder, issued } = await openScene(context, clientKind);
  const signedOut = (await issued()).access[0] ?? "";
  await a.clear();
  await expect.poll(async () => [await a.peek(), await b.peek()]).toEqual([null, null]);
  const takenBefore = await taken(tabs);

  for (const v of [PROTOCOL, OLD]) {
    await intruder.post({
      v,
      type: "token",
      token: `forged-after-sign-out-${v}`,
      expiresAt: inAnHour(),
      bound: false,
      epoch: 99,
    });
  }
  // Asked about the signed-out token, each page answers that it was signed out, and nothing else.
  const answers = await intruder.ask(signedOut, 2);

  expect(answers).toMatchObject([
    { retired: true, token: null, state: null },
    { retired: true, token: null, state: null },
  ]);
  expect([await a.peek(), await b.peek()]).toEqual([null, null]);
  expect(await taken(tabs)).toBe(takenBefore);
  const after = ok(await b.whoAmI());
  expect((await issued()).ids).toContain(after.tokenId);
  expect(await backend.stats()).toMatchObject({ passwordSignIns: 2, unauthenticated: 0 });
  expect(await troubles(tabs)).toEqual(untroubled(2));
});
