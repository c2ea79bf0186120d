/**
 * Calls per second in headless Chromium, through the gRPC-Web transport: bare vs intercepted, then
 * Bearer vs DPoP (both intercepted); and one DPoP proof against one bare signature.
 */
import { mkdir, readFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { chromium, type Page } from "@playwright/test";
import { build } from "esbuild";
import { CHROMIUM_ARGS, findChromium, SYSTEM_CHROMIUM_PATHS } from "../scripts/find-browser.mjs";
import { DEMO_USER, startBenchServer } from "./backend.js";
import type { BrowserBench, BrowserBenchOptions, ProofCostOptions } from "./browser-entry.js";
import type { Overhead, OverheadOptions } from "./compare-clients.js";
import type { Comparison } from "./measure.js";

const TMP = fileURLToPath(new URL(".tmp/", import.meta.url));
const BUNDLE = `${TMP}browser-bench.js`;
/** The most the page may take for all its rounds before the browser bench counts as failed. */
const PAGE_TIMEOUT_MS = 180_000;
const PAGE =
  '<!doctype html><meta charset="utf-8"><title>bench</title><script src="/bench.js"></script>';

/** Bearer vs DPoP in the page, or why it did not run. */
export type DpopResult = ({ status: "ran" } & Overhead) | { status: "failed"; reason: string };

/** One DPoP proof against one bare `crypto.subtle.sign` (proof / sign), or why it did not run. */
export type ProofCostResult =
  | ({ status: "ran" } & Comparison)
  | { status: "failed"; reason: string };

/** The browser's figures, or why there are none. */
export type BrowserResult =
  | ({
      status: "ran";
      browser: string;
      executable: string;
      dpop: DpopResult;
      proof: ProofCostResult;
    } & Overhead)
  | { status: "skipped" | "failed"; reason: string };

/** The proof's cost alone ({@link runProofBench}), or why there is none. */
export type ProofBenchResult =
  | { status: "ran"; browser: string; proof: ProofCostResult }
  | { status: "skipped" | "failed"; reason: string };

type Bench = { grpcWebAuthBench?: BrowserBench };

/**
 * Bare vs intercepted and Bearer vs DPoP against the demo backend (which allows the bench page as
 * a CORS origin), then the proof's cost, in Chromium. No Chromium: "skipped".
 */
export async function runBrowserBench(
  options: OverheadOptions,
  proofOptions: ProofCostOptions,
): Promise<BrowserResult> {
  return inBenchPage(async (tab, page) => {
    const server = await startBenchServer({
      allowedOrigins: [page.origin],
      tokenTtlSeconds: 3_600,
    });
    try {
      const benchOptions: BrowserBenchOptions = {
        ...options,
        baseUrl: server.url,
        tokenUrl: server.tokenUrl,
        credentials: DEMO_USER,
      };
      const overhead = await withTimeout(
        tab.evaluate((opts) => (globalThis as Bench).grpcWebAuthBench?.run(opts), benchOptions),
        PAGE_TIMEOUT_MS,
      );
      if (overhead === undefined) throw new Error("the bench page did not load its script");
      // Its own timeout and failure: the bare-vs-intercepted figures stand without it.
      let dpop: DpopResult;
      try {
        const dpopOverhead = await withTimeout(
          tab.evaluate(
            (opts) => (globalThis as Bench).grpcWebAuthBench?.runDpop(opts),
            benchOptions,
          ),
          PAGE_TIMEOUT_MS,
        );
        if (dpopOverhead === undefined) throw new Error("the bench page lost its script");
        dpop = { status: "ran", ...dpopOverhead };
      } catch (error) {
        dpop = { status: "failed", reason: messageOf(error) };
      }
      const proof = await proofCost(tab, proofOptions);
      return { status: "ran", ...overhead, dpop, proof };
    } finally {
      await server.close();
    }
  });
}

/**
 * Only the proof's cost in Chromium (`npx tsx bench/proof-cost.ts`): N DPoP proofs of the library's
 * signer against N bare `crypto.subtle.sign` with the same key, no backend.
 */
export async function runProofBench(options: ProofCostOptions): Promise<ProofBenchResult> {
  return inBenchPage(async (tab) => ({ status: "ran", proof: await proofCost(tab, options) }));
}

/** Proof / sign in the page, with its own timeout and failure. */
async function proofCost(tab: Page, options: ProofCostOptions): Promise<ProofCostResult> {
  try {
    const comparison = await withTimeout(
      tab.evaluate((opts) => (globalThis as Bench).grpcWebAuthBench?.runProofCost(opts), options),
      PAGE_TIMEOUT_MS,
    );
    if (comparison === undefined) throw new Error("the bench page lost its script");
    return { status: "ran", ...comparison };
  } catch (error) {
    return { status: "failed", reason: messageOf(error) };
  }
}

/**
 * Bundles bench/browser-entry.ts into bench/.tmp/, serves it from a loopback page, opens it in
 * Chromium and runs `bench` there; the result gains the browser's name and executable. No
 * Chromium: "skipped"; any failure: "failed" with its reason.
 */
async function inBenchPage<T extends { status: "ran" }>(
  bench: (tab: Page, page: { origin: string }) => Promise<T>,
): Promise<
  (T & { browser: string; executable: string }) | { status: "skipped" | "failed"; reason: string }
> {
  let executable: string;
  try {
    const found = findChromium();
    if (found === undefined) {
      return {
        status: "skipped",
        reason: `no Chromium found: searched $CHROMIUM_PATH, Playwright's download, ${SYSTEM_CHROMIUM_PATHS.join(", ")}`,
      };
    }
    executable = found.path;
  } catch (error) {
    return { status: "skipped", reason: `no Chromium found: ${messageOf(error)}` };
  }

  await mkdir(TMP, { recursive: true });
  await build({
    entryPoints: [fileURLToPath(new URL("browser-entry.ts", import.meta.url))],
    outfile: BUNDLE,
    bundle: true,
    format: "iife",
    platform: "browser",
    target: "es2022",
    logLevel: "silent",
  });

  const page = await servePage();
  try {
    const browser = await chromium.launch({
      executablePath: executable,
      args: CHROMIUM_ARGS,
      timeout: 60_000,
    });
    try {
      const tab = await browser.newPage();
      await tab.goto(`${page.origin}/`);
      const result = await bench(tab, page);
      return { ...result, browser: `Chromium ${browser.version()}`, executable };
    } finally {
      await browser.close();
    }
  } catch (error) {
    return { status: "failed", reason: messageOf(error) };
  } finally {
    await page.close();
  }
}

/** A loopback server for the bench page and its script. */
async function servePage(): Promise<{ origin: string; close(): Promise<void> }> {
  const script = await readFile(BUNDLE);
  const server: Server = createServer((req, res) => {
    if (req.url === "/") {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(PAGE);
    } else if (req.url === "/bench.js") {
      res.writeHead(200, { "content-type": "text/javascript" }).end(script);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** `promise`, or a rejection after `ms`: a stuck page must not hold up the whole bench. */
async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the page took longer than ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function messageOf(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n")[0] ?? "";
}
