import { create } from "@bufbuild/protobuf";
import type { ClientReadableStream, GrpcWebClientBase, Metadata, RpcError, Status } from "grpc-web";
import { demoMethods } from "../../demo/shared/grpc-web-methods.js";
import { type Tick, TicksRequestSchema, WhoAmIRequestSchema } from "../../gen/demo/v1/demo_pb.js";

/** WhoAmI through Google's grpc-web runtime, as a promise. */
export function grpcWebWhoAmI(client: GrpcWebClientBase, baseUrl: string, metadata: Metadata = {}) {
  return client.unaryCall(
    `${baseUrl}/demo.v1.DemoService/WhoAmI`,
    create(WhoAmIRequestSchema),
    metadata,
    demoMethods.whoAmI,
  );
}

/** Starts a Ticks stream through Google's grpc-web runtime. */
export function grpcWebTicks(
  client: GrpcWebClientBase,
  baseUrl: string,
  request: { count?: number; failAfter?: number; intervalMs?: number },
  metadata: Metadata = {},
): ClientReadableStream<Tick> {
  return client.serverStreaming(
    `${baseUrl}/demo.v1.DemoService/Ticks`,
    create(TicksRequestSchema, request),
    metadata,
    demoMethods.ticks,
  );
}

/** Everything a grpc-web stream emitted, in order. */
export interface StreamOutcome {
  ticks: number[];
  events: string[];
  error?: RpcError;
}

/** Collects a stream's events until its terminal event (plus a beat for stragglers). */
export function drain(stream: ClientReadableStream<Tick>): Promise<StreamOutcome> {
  return new Promise((resolve) => {
    const outcome: StreamOutcome = { ticks: [], events: [] };
    const finish = () => setTimeout(() => resolve(outcome), 50);
    stream.on("data", (tick) => {
      outcome.ticks.push(tick.n);
      outcome.events.push("data");
    });
    stream.on("metadata", () => outcome.events.push("metadata"));
    stream.on("status", (status: Status) => outcome.events.push(`status:${status.code}`));
    stream.on("error", (error) => {
      outcome.error = error;
      outcome.events.push(`error:${error.code}`);
      finish();
    });
    stream.on("end", () => {
      outcome.events.push("end");
      finish();
    });
  });
}

/** The terminal events of a stream: exactly one, whatever happened. */
export const terminals = (o: StreamOutcome) =>
  o.events.filter((e) => e === "end" || e.startsWith("error"));
