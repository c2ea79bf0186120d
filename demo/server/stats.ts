/** What the demo server counted since it started or since the last reset. */
export interface DemoStats {
  /** Requests that reached `/auth/token`, whatever their outcome (faults included). */
  tokenRequests: number;
  /** Tokens actually issued by `/auth/token`. */
  tokensIssued: number;
  /** Unauthenticated answers: rejected tokens plus `fail_after` stream failures. */
  unauthenticated: number;
  /**
   * RPCs received per method name (for example `WhoAmI`), authenticated or not. Health checks
   * (`grpc.health.v1.Health`) are not counted.
   */
  calls: Record<string, number>;
}

/** Mutable counters behind {@link DemoStats}; one instance per server. */
export interface StatsRecorder {
  tokenRequest(): void;
  tokenIssued(): void;
  unauthenticated(): void;
  call(method: string): void;
  /** A copy that later counting does not change. */
  snapshot(): DemoStats;
  reset(): void;
}

/** Creates zeroed counters. */
export function createStatsRecorder(): StatsRecorder {
  let stats = empty();
  return {
    tokenRequest: () => {
      stats.tokenRequests++;
    },
    tokenIssued: () => {
      stats.tokensIssued++;
    },
    unauthenticated: () => {
      stats.unauthenticated++;
    },
    call: (method) => {
      stats.calls[method] = (stats.calls[method] ?? 0) + 1;
    },
    snapshot: () => ({ ...stats, calls: { ...stats.calls } }),
    reset: () => {
      stats = empty();
    },
  };
}

function empty(): DemoStats {
  return { tokenRequests: 0, tokensIssued: 0, unauthenticated: 0, calls: {} };
}
