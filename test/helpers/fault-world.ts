import { startWorld, type World } from "./world.js";

/** A world whose client goes over the in-memory router transport (see World). */
export type FaultWorld = World;

export interface FaultWorldOptions {
  /** The token source's `timeoutMs`. Default: 3 000. */
  timeoutMs?: number;
  /** How long the healthy endpoint takes to mint a token. Default: 0. */
  delayMs?: number;
  /** Puts something in front of the endpoint: gets its URL, returns the URL the source uses. */
  via?: (endpointUrl: string) => Promise<string> | string;
}

/** The shared world with a 3 s fetch bound; closed when the test finishes, or by `close()`. */
export function startFaultWorld(options: FaultWorldOptions = {}): Promise<FaultWorld> {
  return startWorld({
    ...(options.delayMs === undefined ? {} : { delayMs: options.delayMs }),
    ...(options.via === undefined ? {} : { via: options.via }),
    source: { timeoutMs: options.timeoutMs ?? 3_000 },
  });
}

/** Reads a whole server stream of ticks into their numbers. */
export async function collectTicks(stream: AsyncIterable<{ n: number }>): Promise<number[]> {
  const ns: number[] = [];
  for await (const tick of stream) ns.push(tick.n);
  return ns;
}

/** Runs `start` and settles what it returns into its value or its error, and how long that took. */
export async function settle<T>(
  start: () => Promise<T>,
): Promise<{ value?: T; error?: unknown; ms: number }> {
  const started = performance.now();
  try {
    const value = await start();
    return { value, ms: performance.now() - started };
  } catch (error) {
    return { error, ms: performance.now() - started };
  }
}
