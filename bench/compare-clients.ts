/**
 * Bare vs authenticated DemoService clients, compared call for call. No Node APIs here:
 * bench/browser-entry.ts bundles this file for Chromium.
 */
import type { Client, Interceptor } from "@connectrpc/connect";
import type { DemoService } from "../gen/demo/v1/demo_pb.js";
import { type Comparison, compareInterleaved, drain, sequential } from "./measure.js";

/** A Connect client of the DemoService. */
export type DemoClient = Client<typeof DemoService>;

/** Messages per server-streaming call. */
export const STREAM_MESSAGES = 10;

/** How much to measure: rounds × calls per side per round. */
export interface OverheadOptions {
  rounds: number;
  unaryCallsPerRound: number;
  streamCallsPerRound: number;
}

/** The interceptor's cost on unary and server-streaming calls: intercepted / bare. */
export interface Overhead {
  unary: Comparison;
  streaming: Comparison;
}

/** An interceptor that sets a fixed bearer header: the least any authenticated client does. */
export function staticBearer(token: string): Interceptor {
  const value = `Bearer ${token}`;
  return (next) => (req) => {
    req.header.set("authorization", value);
    return next(req);
  };
}

/** Times unary WhoAmI calls, then server-streaming Ticks calls, `bare` against `auth`. */
export async function compareClients(
  bare: DemoClient,
  auth: DemoClient,
  options: OverheadOptions,
): Promise<Overhead> {
  const unaryCall = (client: DemoClient) => sequential(() => client.whoAmI({}));
  const streamCall = (client: DemoClient) =>
    sequential(() => drain(client.ticks({ count: STREAM_MESSAGES })));
  const unary = await compareInterleaved(unaryCall(bare), unaryCall(auth), {
    rounds: options.rounds,
    callsPerRound: options.unaryCallsPerRound,
  });
  const streaming = await compareInterleaved(streamCall(bare), streamCall(auth), {
    rounds: options.rounds,
    callsPerRound: options.streamCallsPerRound,
  });
  return { unary, streaming };
}
