/** What the demo server counted since it started or since the last reset. */
export interface DemoStats {
  /** Requests that reached `/auth/token`, whatever their grant or outcome (faults included). */
  tokenRequests: number;
  /** Access tokens actually issued by `/auth/token` (sign-ins and refreshes). */
  tokensIssued: number;
  /** Unauthenticated answers: rejected tokens plus `fail_after` stream failures. */
  unauthenticated: number;
  /**
   * RPCs received per method name (for example `WhoAmI`), authenticated or not. Health checks
   * (`grpc.health.v1.Health`) are not counted.
   */
  calls: Record<string, number>;
  /** Successful password sign-ins (each starts a refresh-token family). */
  passwordSignIns: number;
  /** Well-formed `grant_type=refresh_token` requests, whatever their outcome. */
  refreshRequests: number;
  /** Refresh requests answered with a new access token and a new refresh token. */
  rotations: number;
  /** Spent refresh tokens presented again; each revoked its family. */
  reuseDetections: number;
  /** Passwords checked at `/auth/token` (right or wrong); a throttled sign-in is not checked. */
  passwordChecks: number;
  /** Sign-ins answered 429 without their password being checked: the account must wait. */
  throttledSignIns: number;
  /** `400 {"error": "invalid_grant"}` answers (unknown, expired, revoked, reused, wrong key). */
  invalidGrants: number;
  /** Requests that reached `/auth/revoke`, whatever their outcome. */
  revokeRequests: number;
  /** Refresh-token families (or access tokens) that `/auth/revoke` found and revoked. */
  revocations: number;
  /** Access tokens issued bound to a DPoP key (`token_type: "DPoP"`). */
  dpopTokensIssued: number;
  /** RPCs that passed DPoP verification. */
  dpopCalls: number;
  /** `use_dpop_nonce` challenges, at the token endpoint and on RPCs. */
  dpopNonceChallenges: number;
  /** DPoP proofs refused for any other reason, at the token endpoint and on RPCs. */
  invalidDpopProofs: number;
  /** How many distinct DPoP keys made successful RPCs: `dpopThumbprints.length`. */
  dpopKeys: number;
  /** RFC 7638 thumbprints (`jkt`) of those keys, sorted. Public values, safe to expose. */
  dpopThumbprints: string[];
}

/** The plain counters of {@link DemoStats} that {@link StatsRecorder.count} increments. */
export type Counter =
  | "passwordSignIns"
  | "passwordChecks"
  | "throttledSignIns"
  | "refreshRequests"
  | "rotations"
  | "reuseDetections"
  | "invalidGrants"
  | "revokeRequests"
  | "revocations"
  | "dpopTokensIssued"
  | "dpopNonceChallenges"
  | "invalidDpopProofs";

/** Mutable counters behind {@link DemoStats}; one instance per server. */
export interface StatsRecorder {
  tokenRequest(): void;
  tokenIssued(): void;
  unauthenticated(): void;
  call(method: string): void;
  count(counter: Counter): void;
  /** A successful DPoP-verified RPC with the key of thumbprint `jkt`. */
  dpopCall(jkt: string): void;
  /** A copy that later counting does not change. */
  snapshot(): DemoStats;
  reset(): void;
}

/** Creates zeroed counters. */
export function createStatsRecorder(): StatsRecorder {
  let stats = empty();
  let thumbprints = new Set<string>();
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
    count: (counter) => {
      stats[counter]++;
    },
    dpopCall: (jkt) => {
      stats.dpopCalls++;
      thumbprints.add(jkt);
    },
    snapshot: () => {
      const dpopThumbprints = [...thumbprints].sort();
      return {
        ...stats,
        calls: { ...stats.calls },
        dpopKeys: dpopThumbprints.length,
        dpopThumbprints,
      };
    },
    reset: () => {
      stats = empty();
      thumbprints = new Set();
    },
  };
}

function empty(): DemoStats {
  return {
    tokenRequests: 0,
    tokensIssued: 0,
    unauthenticated: 0,
    calls: {},
    passwordSignIns: 0,
    passwordChecks: 0,
    throttledSignIns: 0,
    refreshRequests: 0,
    rotations: 0,
    reuseDetections: 0,
    invalidGrants: 0,
    revokeRequests: 0,
    revocations: 0,
    dpopTokensIssued: 0,
    dpopCalls: 0,
    dpopNonceChallenges: 0,
    invalidDpopProofs: 0,
    dpopKeys: 0,
    dpopThumbprints: [],
  };
}
