import { create } from "@bufbuild/protobuf";
import { GrpcWebClientBase, type RpcError } from "grpc-web";
import { TicksRequestSchema, WhoAmIRequestSchema } from "../../../gen/demo/v1/demo_pb.js";
// An app writes `from "grpc-web-auth/grpc-web"`.
import { createGrpcWebInterceptors } from "../../../src/grpc-web.js";
import { demoMethods } from "../../shared/grpc-web-methods.js";
import type { ClientOptions, DemoClient } from "./clients.js";

/** A DemoClient on Google's grpc-web runtime, with the token from the app's one token source. */
export function grpcWebRuntimeClient(options: ClientOptions): DemoClient {
  const client = new GrpcWebClientBase({
    // connect-node serves grpc-web binary; grpc-web-text needs Envoy.
    format: "binary",
    // baseUrl: grpc-web's interceptors are not told the call's URL, which a DPoP proof names.
    ...createGrpcWebInterceptors(options.tokens, {
      onReplay: options.onReplay,
      baseUrl: options.apiUrl,
    }),
  });
  const url = (method: string) => `${options.apiUrl}/demo.v1.DemoService/${method}`;
  return {
    async whoAmI() {
      const res = await client.unaryCall(
        url("WhoAmI"),
        create(WhoAmIRequestSchema),
        {},
        demoMethods.whoAmI,
      );
      return {
        subject: res.subject,
        tokenId: res.tokenId,
        expiresAtUnix: Number(res.expiresAtUnix),
      };
    },
    ticks(request, onTick, signal) {
      return new Promise<void>((resolve, reject) => {
        const stream = client.serverStreaming(
          url("Ticks"),
          create(TicksRequestSchema, {
            count: request.count ?? 0,
            intervalMs: request.intervalMs ?? 0,
            failAfter: request.failAfter ?? 0,
          }),
          {},
          demoMethods.ticks,
        );
        // grpc-web-auth's stream delivers exactly one of error or end.
        stream.on("data", (tick) => onTick({ n: tick.n, subject: tick.subject }));
        stream.on("error", (error: RpcError) => reject(error));
        stream.on("end", () => resolve());
        signal?.addEventListener("abort", () => {
          stream.cancel();
          reject(Object.assign(new Error("cancelled by the caller"), { code: 1 }));
        });
      });
    },
  };
}
