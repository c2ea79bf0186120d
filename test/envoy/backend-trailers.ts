import { connect } from "node:http2";
import { parseConfig } from "../../demo/server/config.js";
import { startDemoServer } from "../../demo/server/server.js";
import { makeDpopKey } from "../server/dpop-key.js";

/** The header and trailer names of one native gRPC answer, as Envoy receives it from a backend. */
export interface GrpcAnswerNames {
  headers: string[];
  trailers: string[];
}

/**
 * Starts the demo backend as `npm run server -- --behind-envoy --dpop-nonces` does, signs in with
 * a DPoP key, then calls WhoAmI over h2c, as Envoy forwards a call, with a proof that lacks the
 * server nonce: the backend's `use_dpop_nonce` refusal. Returns which names came in the headers
 * and which in the trailers, and stops the backend.
 */
export async function dpopNonceRefusalNames(): Promise<GrpcAnswerNames> {
  const cli = parseConfig(
    ["--behind-envoy", "--grpc-port", "0", "--token-port", "0", "--dpop-nonces"],
    {},
  );
  if (cli.help) throw new Error("unexpected --help");
  const demo = await startDemoServer(cli.options);
  try {
    const key = await makeDpopKey();
    const tokenUrl = `${demo.url}/auth/token`;
    const signIn = async (nonce?: string) =>
      fetch(tokenUrl, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          dpop: await key.proof(tokenUrl, nonce === undefined ? {} : { nonce }),
        },
        body: JSON.stringify({ username: "alice", password: "wonderland" }),
      });
    // The first answer is the token endpoint's own use_dpop_nonce challenge.
    const nonce = (await signIn()).headers.get("dpop-nonce") ?? undefined;
    const answer = await signIn(nonce);
    if (answer.status !== 200) throw new Error(`sign-in failed: ${answer.status}`);
    const { token } = (await answer.json()) as { token: string };

    const grpcUrl = demo.grpcUrl ?? "";
    const path = "/demo.v1.DemoService/WhoAmI";
    const session = connect(grpcUrl);
    try {
      const stream = session.request({
        ":method": "POST",
        ":path": path,
        "content-type": "application/grpc",
        te: "trailers",
        authorization: `DPoP ${token}`,
        // No nonce: the backend answers with a nonce challenge.
        dpop: await key.proof(`${grpcUrl}${path}`, { accessToken: token }),
      });
      stream.end(new Uint8Array(5));
      return await new Promise<GrpcAnswerNames>((resolve, reject) => {
        const names: GrpcAnswerNames = { headers: [], trailers: [] };
        stream.on("response", (headers) => {
          names.headers = Object.keys(headers);
        });
        stream.on("trailers", (trailers) => {
          names.trailers = Object.keys(trailers);
        });
        stream.on("data", () => {});
        stream.on("error", reject);
        stream.on("close", () => resolve(names));
      });
    } finally {
      session.close();
    }
  } finally {
    await demo.close();
  }
}
