import { inspect } from "node:util";
import { afterAll, afterEach, beforeAll, expect, type MockInstance, vi } from "vitest";
import { sleep } from "./wait.js";

/** The console methods a library could print through. */
const CONSOLE_METHODS = ["log", "info", "warn", "error", "debug", "trace"] as const;

/** What went wrong outside the promises a test awaits. */
export interface ProcessWatch {
  /** Reasons of unhandled rejections, in order. */
  readonly unhandledRejections: unknown[];
  /** Errors that reached `uncaughtException`, in order. */
  readonly uncaughtExceptions: unknown[];
  /** Everything printed through `console`, as `[method, ...args]`. */
  consoleCalls(): unknown[][];
  /** Forgets what was recorded so far (between tests). */
  reset(): void;
  /** Stops listening and restores the console. */
  stop(): void;
}

/**
 * Records unhandled rejections, uncaught exceptions and console output from now
 * on. The console still prints: the spies only listen.
 */
export function watchProcess(): ProcessWatch {
  const unhandledRejections: unknown[] = [];
  const uncaughtExceptions: unknown[] = [];
  const onRejection = (reason: unknown) => unhandledRejections.push(reason);
  const onException = (error: unknown) => uncaughtExceptions.push(error);
  process.on("unhandledRejection", onRejection);
  process.on("uncaughtException", onException);
  const spies: [string, MockInstance][] = CONSOLE_METHODS.map((method) => [
    method,
    vi.spyOn(console, method),
  ]);
  return {
    unhandledRejections,
    uncaughtExceptions,
    consoleCalls: () =>
      spies.flatMap(([method, spy]) => spy.mock.calls.map((args) => [method, ...args])),
    reset() {
      unhandledRejections.length = 0;
      uncaughtExceptions.length = 0;
      for (const [, spy] of spies) spy.mockClear();
    },
    stop() {
      process.off("unhandledRejection", onRejection);
      process.off("uncaughtException", onException);
      for (const [, spy] of spies) spy.mockRestore();
    },
  };
}

/**
 * For a test file whose tests must leave nothing behind: watches the process from the first test
 * to the last and, after each test, runs `cleanUp`, waits a beat for late rejections, then fails
 * the test on an unhandled rejection, an uncaught exception or console output. Returns the watch,
 * which exists once the first test has started.
 */
export function useQuietProcess(cleanUp: () => Promise<void>): () => ProcessWatch {
  let watch: ProcessWatch | undefined;
  const current = () => {
    if (watch === undefined) throw new Error("the process watch starts with the first test");
    return watch;
  };
  beforeAll(() => {
    watch = watchProcess();
  });
  afterEach(async () => {
    await cleanUp();
    // A beat for late rejections: what is checked is that none comes.
    await sleep(20);
    const w = current();
    expect(w.unhandledRejections).toEqual([]);
    expect(w.uncaughtExceptions).toEqual([]);
    expect(w.consoleCalls()).toEqual([]);
    w.reset();
  });
  afterAll(() => current().stop());
  return current;
}

/**
 * The ways a secret may show up in text: as is, escaped inside a JSON string
 * (how an endpoint echoes a JSON request body), as `util.inspect` prints it,
 * and URL-encoded.
 */
export function secretForms(secret: string): string[] {
  const forms = [
    secret,
    JSON.stringify(secret).slice(1, -1),
    inspect(secret).slice(1, -1),
    encodeURIComponent(secret),
  ];
  return [...new Set(forms)].filter((form) => form.length >= 4);
}

/** A compact JWS: what a leaked bearer token most often looks like. */
const JWT_SHAPE = /eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\./;

/** Every way `value` can end up in a log: `String()`, `util.inspect` to depth 10, and JSON. */
export function renderForLogs(value: unknown): string {
  let json = "";
  try {
    json = JSON.stringify(value) ?? "";
  } catch {
    // Cycles and the like: the other renderings still count.
  }
  let text: string;
  try {
    text = String(value);
  } catch {
    text = "";
  }
  return `${text}\n${inspect(value, { depth: 10 })}\n${json}`;
}

/**
 * The names of the secrets (and "a JWT", for anything shaped like one) that
 * appear in any rendering of any of `values`. Empty when nothing leaked.
 */
export function findLeaks(values: readonly unknown[], secrets: Record<string, string>): string[] {
  const text = values.map(renderForLogs).join("\n");
  const found = Object.entries(secrets)
    .filter(([, secret]) => secretForms(secret).some((form) => text.includes(form)))
    .map(([name]) => name);
  if (JWT_SHAPE.test(text)) found.push("a JWT");
  return found;
}
