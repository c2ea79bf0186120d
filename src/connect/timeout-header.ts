const GRPC_UNITS: Record<string, number> = {
  H: 3_600_000,
  M: 60_000,
  S: 1_000,
  m: 1,
  u: 1e-3,
  n: 1e-6,
};

/**
 * Rewrites the timeout header Connect set when the call started (`grpc-timeout` for gRPC and
 * gRPC-Web, `connect-timeout-ms` for Connect) to what is left of the deadline after `elapsedMs`,
 * so a replay does not hand the server more time than the caller will wait.
 */
export function shortenTimeout(header: Headers, elapsedMs: number): void {
  const grpc = header.get("grpc-timeout");
  const match = grpc === null ? null : /^(\d{1,8})([HMSmun])$/.exec(grpc);
  if (match !== null) {
    const left = leftOf(Number(match[1]) * (GRPC_UNITS[match[2] as string] as number), elapsedMs);
    // Eight digits at most: beyond about 27 hours of milliseconds, count seconds.
    header.set("grpc-timeout", left > 99_999_999 ? `${Math.ceil(left / 1000)}S` : `${left}m`);
  }
  const connect = header.get("connect-timeout-ms");
  if (connect !== null && /^\d{1,10}$/.test(connect)) {
    header.set("connect-timeout-ms", String(leftOf(Number(connect), elapsedMs)));
  }
}

/** Whole milliseconds left, at least 1: the client's own deadline ends the call when it is up. */
function leftOf(timeoutMs: number, elapsedMs: number): number {
  return Math.max(1, Math.ceil(timeoutMs - elapsedMs));
}
