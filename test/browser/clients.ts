import type { ClientKind } from "../../demo/web/lib/clients.js";

// A Record, so that tsc fails here when demo/web/lib/clients.ts gains a kind the tests skip.
const runOver: Record<ClientKind, true> = {
  "grpc-web": true,
  connect: true,
  "grpc-web-runtime": true,
};

/** The client kinds every browser test runs over: one Playwright project each. */
export const CLIENT_KINDS = Object.keys(runOver) as ClientKind[];
