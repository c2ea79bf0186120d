import { inspect } from "node:util";
import ky, { type KyInstance } from "ky";
import { expect, onTestFinished, vi } from "vitest";
import type { TokenEvent, TokenSource } from "../../src/index.js";

/** The console methods a library could print through. */
const CONSOLE_METHODS = ["log", "info", "warn", "error", "debug"] as const;

/** Everything every watch of this test file saw, for a check across tests. */
export const seenInFile = { secrets: new Set<string>(), texts: [] as string[] };

/** Watches what the library says and which secrets the token endpoint handed out. */
export interface SecretWatch {
  /**
   * A ky instance for a grant's `http`: records every `refresh_token` and access token the token
   * endpoint answers with, in order.
   */
  http: KyInstance;
  /** Refresh tokens the token endpoint answered with, through {@link http}, in order. */
  refreshTokens: string[];
  /** Access tokens the token endpoint answered with, through {@link http}, in order. */
  accessTokens: string[];
  /** Events of every source watched, in order. */
  events: TokenEvent[];
  /** What was printed on the console since the watch started (it prints nothing itself). */
  consoleCalls(): unknown[][];
  /** Adds a secret the test got elsewhere (a password, a refresh token from a plain fetch). */
  secret(value: string): void;
  /** Records the events of `source`. */
  watch(source: TokenSource): void;
  /** Records an error a test caught: message, excerpt, causes, everything `inspect` shows. */
  error(error: unknown): unknown;
  /** Fails unless no recorded error, event or console line holds a secret. */
  expectNoSecrets(): void;
}

/** Starts watching; the console is restored when the current test finishes. */
export function watchSecrets(password: string): SecretWatch {
  const secrets = new Set<string>([password]);
  const texts: string[] = [];
  const refreshTokens: string[] = [];
  const accessTokens: string[] = [];
  const events: TokenEvent[] = [];
  const spies = CONSOLE_METHODS.map((method) =>
    vi.spyOn(console, method).mockImplementation(() => {}),
  );
  onTestFinished(() => {
    for (const spy of spies) spy.mockRestore();
  });
  const secret = (value: string) => {
    secrets.add(value);
    seenInFile.secrets.add(value);
  };
  secret(password);
  const consoleCalls = () => spies.flatMap((spy) => spy.mock.calls as unknown[][]);

  const http = ky.create({
    hooks: {
      afterResponse: [
        async ({ response }) => {
          if (!response.ok) return;
          const body = (await response.clone().json()) as Record<string, unknown>;
          for (const key of ["token", "access_token"]) {
            const value = body[key];
            if (typeof value === "string" && !accessTokens.includes(value)) {
              accessTokens.push(value);
              secret(value);
            }
          }
          if (typeof body.refresh_token === "string") {
            refreshTokens.push(body.refresh_token);
            secret(body.refresh_token);
          }
        },
      ],
    },
  });

  const record = (text: string) => {
    texts.push(text);
    seenInFile.texts.push(text);
  };
  const recordError = (error: unknown) => {
    record(inspect(error, { depth: 8 }));
    for (let e: unknown = error, depth = 0; e instanceof Error && depth < 8; depth++) {
      record(e.message);
      const excerpt = (e as { bodyExcerpt?: unknown }).bodyExcerpt;
      if (typeof excerpt === "string") record(excerpt);
      e = e.cause;
    }
    return error;
  };

  return {
    http,
    refreshTokens,
    accessTokens,
    events,
    consoleCalls,
    secret,
    watch(source) {
      source.subscribe((event) => {
        events.push(event);
        record(JSON.stringify(event));
        if (event.type === "error") recordError(event.error);
      });
    },
    error: recordError,
    expectNoSecrets() {
      for (const call of consoleCalls()) {
        for (const arg of call) record(typeof arg === "string" ? arg : inspect(arg, { depth: 8 }));
      }
      for (const text of texts) {
        for (const value of secrets) expect(text.includes(value), text).toBe(false);
      }
    },
  };
}
