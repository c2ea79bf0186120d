/**
 * The page behind test/browser/signals.spec.ts: sign-out ending server streams, and the README's
 * TanStack Query recipe in React, driven through `window.signals` with plain JSON answers.
 */
import { QueryClient, QueryClientProvider, useQuery } from "@tanstack/react-query";
import { createElement } from "react";
import { createRoot, type Root } from "react-dom/client";
import { createTokenSource, passwordGrant, type TokenSource } from "../../src/index.js";
import { DEFAULT_API_URL, tokenEndpoint } from "./lib/backend.js";
import {
  type ClientKind,
  clientKinds,
  type DemoClient,
  type TicksParams,
  type WhoAmI,
} from "./lib/clients.js";
import { describeError, type ErrorInfo } from "./lib/describe-error.js";
import { connectQueries } from "./lib/query-recipe.js";

/** What a stream delivered before and after `clear()`, and how it ended. */
export interface ClearedStream {
  /** Ticks that arrived before `clear()`. */
  before: number;
  /** Ticks that arrived after it. */
  after: number;
  /** The error the stream ended with; none when it ran to its end. */
  error?: ErrorInfo | undefined;
}

/** `window.signals`. */
export interface Signals {
  /** A fresh token source and client of `kind`, signing in with `password` (default the right one). */
  setup(kind: ClientKind, password?: string): void;
  /** Streams `params`, calls `clear()` once `after` ticks arrived, and waits for the stream's end. */
  clearDuring(params: TicksParams, after: number): Promise<ClearedStream>;
  /** One `WhoAmI` call on the client. */
  whoAmI(): Promise<{ ok: true; value: WhoAmI } | { ok: false; error: ErrorInfo }>;
  /** Renders a React component with a `WhoAmI` query under the recipe, shown in `#query`. */
  mountQuery(): void;
  /** The session-ended reasons the recipe sent the app to sign-in with. */
  signIns: string[];
}

declare global {
  interface Window {
    signals: Signals;
  }
}

let tokens: TokenSource | undefined;
let client: DemoClient | undefined;
let root: Root | undefined;

const ready = () => {
  if (tokens === undefined || client === undefined) throw new Error("call setup() first");
  return { tokens, client };
};

/** The query, rendered as `status fetchStatus subject errorCode` for the test to wait on. */
function WhoAmIQuery({ demo }: { demo: DemoClient }) {
  const query = useQuery({ queryKey: ["whoAmI"], queryFn: () => demo.whoAmI() });
  const error = query.error === null ? "-" : describeError(query.error).code;
  return createElement(
    "output",
    { "data-testid": "query" },
    `${query.status} ${query.fetchStatus} ${query.data?.subject ?? "-"} ${error}`,
  );
}

const signals: Signals = {
  signIns: [],
  setup(kind, password = "wonderland") {
    tokens?.clear();
    root?.unmount();
    root = undefined;
    signals.signIns = [];
    const apiUrl = DEFAULT_API_URL;
    tokens = createTokenSource({
      fetchToken: passwordGrant({
        endpoint: tokenEndpoint(apiUrl),
        credentials: () => ({ username: "alice", password }),
      }),
    });
    client = clientKinds[kind].create({ apiUrl, tokens, onReplay: () => {} });
  },
  async clearDuring(params, after) {
    const { tokens, client } = ready();
    let before = 0;
    let afterClear = 0;
    let cleared = false;
    const end = await client
      .ticks(params, () => {
        if (cleared) {
          afterClear++;
          return;
        }
        before++;
        if (before === after) {
          cleared = true;
          tokens.clear();
        }
      })
      .then(
        () => undefined,
        (error: unknown) => describeError(error),
      );
    return { before, after: afterClear, error: end };
  },
  async whoAmI() {
    try {
      return { ok: true, value: await ready().client.whoAmI() };
    } catch (error) {
      return { ok: false, error: describeError(error) };
    }
  },
  mountQuery() {
    const { tokens, client } = ready();
    const queryClient = new QueryClient();
    connectQueries(tokens, queryClient, (reason) => signals.signIns.push(reason));
    const element = document.getElementById("query");
    if (element === null) throw new Error("no #query element");
    root = createRoot(element);
    root.render(
      createElement(
        QueryClientProvider,
        { client: queryClient },
        createElement(WhoAmIQuery, { demo: client }),
      ),
    );
  },
};

window.signals = signals;
