import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createServer, type ViteDevServer } from "vite";
import { expect, test } from "./fixtures.js";

// The README's Vite recipe through a real hot update: Vite's dev server (on an ephemeral port)
// serves a page whose module creates a token source on a channel; the module is edited, Vite
// replaces it, and the new module's source takes the channel and the session from the old one.
test.skip(({ clientKind }) => clientKind !== "grpc-web", "the recipe runs in the grpc-web project");

const library = fileURLToPath(new URL("../../src/index.ts", import.meta.url));
const repository = fileURLToPath(new URL("../..", import.meta.url));

/** tokens.ts as the app writes it, at `version`. */
const tokensModule = (version: number) => `
import { createTokenSource, shareAcrossTabs } from "grpc-web-auth";

export const version = ${version};
let fetched = 0;
export const tokens = createTokenSource({
  fetchToken: async () => \`token-\${++fetched}-from-version-${version}\`,
  crossTab: shareAcrossTabs("hot"),
});
// The recipe: a replaced module disposes of its source, so the new one can take the channel.
import.meta.hot?.dispose(() => tokens.dispose());
`;

const mainModule = `
import { tokens, version } from "./tokens.ts";

const out = document.getElementById("out");
window.loads = (window.loads ?? 0) + 1;
const show = (source, v) =>
  source.getToken().then((token) => { out.textContent = v + ":" + token; }, (e) => { out.textContent = "error: " + e.message; });
show(tokens, version);
import.meta.hot?.accept("./tokens.ts", (next) => { if (next) show(next.tokens, next.version); });
`;

let dir: string | undefined;
let server: ViteDevServer | undefined;

test.beforeEach(async () => {
  const made = await mkdtemp(join(tmpdir(), "grpc-web-auth-hot-"));
  dir = made;
  await writeFile(
    join(made, "index.html"),
    '<link rel="icon" href="data:,"><p id="out">loading</p><script type="module" src="./main.js"></script>',
  );
  await writeFile(join(made, "main.js"), mainModule);
  await writeFile(join(made, "tokens.ts"), tokensModule(1));
  server = await createServer({
    root: made,
    configFile: false,
    logLevel: "silent",
    resolve: { alias: { "grpc-web-auth": library } },
    server: { host: "127.0.0.1", port: 0, fs: { allow: [made, repository] } },
  });
  await server.listen();
});

// Runs after a skipped test too (other projects), where nothing was made.
test.afterEach(async () => {
  await server?.close();
  server = undefined;
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

test("a hot update of the module that creates the source replaces it in place, keeping the session", async ({
  page,
}) => {
  const errors: string[] = [];
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(message.text());
  });
  const url = server?.resolvedUrls?.local[0];
  if (url === undefined) throw new Error("the dev server has no URL");
  await page.goto(url);
  await expect(page.locator("#out")).toHaveText("1:token-1-from-version-1");

  await writeFile(join(dir as string, "tokens.ts"), tokensModule(2));

  // The new module's source joined the old one's session: no fetch, no reload, no error.
  await expect(page.locator("#out")).toHaveText("2:token-1-from-version-1");
  expect(await page.evaluate(() => (window as { loads?: number }).loads)).toBe(1);
  expect(errors).toEqual([]);
});
