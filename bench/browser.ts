/**
 * Calls per second in headless Chromium, through the gRPC-Web transport: bare vs intercepted, then
 * Bearer vs DPoP (both intercepted).
 */
import { mkdir, readFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { chromium } from "@playwright/test";
import { build } from "esbuild";
import { CHROMIUM_ARGS, findChromium, SYSTEM_CHROMIUM_PATHS } from "../scripts/find-browser.mjs";
import { DEMO_USER, startBenchServer } from "./backend.js";
import type { BrowserBench, BrowserBenchOptions } from "./browser-entry.js";
import type { Overhead, OverheadOptions } from "./compare-clients.js";

const TMP = fileURLToPath(new URL(".tmp/", import.meta.url));
const BUNDLE = `${TMP}browser-bench.js`;
/** The most the page may take for all its rounds before the browser bench counts as failed. */
const PAGE_TIMEOUT_MS = 180_000;
const PAGE =
  '<!doctype html><meta charset="utf-8"><title>bench</title><script src="/bench.js"></script>';

/** Bearer vs DPoP in the page, or why it did not run. */
export type DpopResult = ({ status: "ran" } & Overhead) | { status: "failed"; reason: string };

/** The browser's figures, or why there are none. */
export type BrowserResult =
  | ({ status: "ran"; browser: string; executable: string; dpop: DpopResult } & Overhead)
  | { status: "skipped" | "failed"; reason: string };

/**
 * Bundles bench/browser-entry.ts into bench/.tmp/, serves it from a loopback page that the demo
 * backend allows as a CORS origin, and runs the comparison in Chromium. No Chromium: "skipped".
 */
export async function runBrowserBench(options: OverheadOptions): Promise<BrowserResult> {
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
  const server = await startBenchServer({ allowedOrigins: [page.origin], tokenTtlSeconds: 3_600 });
  try {
    const browser = await chromium.launch({
      executablePath: executable,
      args: CHROMIUM_ARGS,
      timeout: 60_000,
    });
    try {
      const tab = await browser.newPage();
      await tab.goto(`${page.origin}/`);
      const benchOptions: BrowserBenchOptions = {
        ...options,
        baseUrl: server.url,
        tokenUrl: server.tokenUrl,
        credentials: DEMO_USER,
      };
      const overhead = await withTimeout(
        tab.evaluate(
          (opts) => (globalThis as { grpcWebAuthBench?: BrowserBench }).grpcWebAuthBench?.run(opts),
          benchOptions,
        ),
        PAGE_TIMEOUT_MS,
      );
      if (overhead === undefined) throw new Error("the bench page did not load its script");
      // Its own timeout and failure: the bare-vs-intercepted figures stand without it.
      let dpop: DpopResult;
      try {
        const dpopOverhead = await withTimeout(
          tab.evaluate(
            (opts) =>
              (globalThis as { grpcWebAuthBench?: BrowserBench }).grpcWebAuthBench?.runDpop(opts),
            benchOptions,
          ),
          PAGE_TIMEOUT_MS,
        );
        if (dpopOverhead === undefined) throw new Error("the bench page lost its script");
        dpop = { status: "ran", ...dpopOverhead };
      } catch (error) {
        dpop = { status: "failed", reason: messageOf(error) };
      }
      return {
        status: "ran",
        browser: `Chromium ${browser.version()}`,
        executable,
        ...overhead,
        dpop,
      };
    } finally {
      await browser.close();
    }
  } catch (error) {
    return { status: "failed", reason: messageOf(error) };
  } finally {
    await server.close();
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
