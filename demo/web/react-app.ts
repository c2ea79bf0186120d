/**
 * The README's React recipe, in StrictMode (which runs every effect twice in development): the
 * effect that creates the token source disposes of it in its cleanup, so the second run's source
 * takes the channel (and the session) of the first. Written without JSX.
 */
import { createElement as h, StrictMode, useEffect, useState } from "react";
import { createRoot } from "react-dom/client";
import {
  createTokenSource,
  type DisposableTokenSource,
  passwordGrant,
  shareAcrossTabs,
} from "../../src/index.js";
import { DEFAULT_API_URL, tokenEndpoint } from "./lib/backend.js";
import { clientKinds } from "./lib/clients.js";
import { describeError } from "./lib/describe-error.js";

/** One token source for as long as the component is mounted. */
function useTokenSource(): DisposableTokenSource | undefined {
  const [tokens, setTokens] = useState<DisposableTokenSource>();
  useEffect(() => {
    const source = createTokenSource({
      fetchToken: passwordGrant({
        endpoint: tokenEndpoint(DEFAULT_API_URL),
        credentials: () => ({ username: "alice", password: "wonderland" }),
      }),
      crossTab: shareAcrossTabs("react-app"),
    });
    setTokens(source);
    return () => source.dispose();
  }, []);
  return tokens;
}

function App() {
  const tokens = useTokenSource();
  const [status, setStatus] = useState("starting");
  useEffect(() => {
    if (tokens === undefined) return;
    let live = true;
    const client = clientKinds.connect.create({ apiUrl: DEFAULT_API_URL, tokens, onReplay() {} });
    client.whoAmI().then(
      (who) => live && setStatus(`signed in as ${who.subject}`),
      (error: unknown) => live && setStatus(`error: ${describeError(error).message}`),
    );
    return () => {
      live = false;
    };
  }, [tokens]);
  return h("p", { "data-testid": "react-status" }, status);
}

const root = document.getElementById("root");
if (root === null) throw new Error("react.html has no #root");
createRoot(root).render(h(StrictMode, null, h(App)));
