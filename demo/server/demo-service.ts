import { setTimeout as sleep } from "node:timers/promises";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { type DemoService, TickSchema, WhoAmIResponseSchema } from "../../gen/demo/v1/demo_pb.js";
import { type AuthInfo, authKey } from "./auth-context.js";
import type { StatsRecorder } from "./stats.js";

/** Options for {@link createDemoService}. */
export interface DemoServiceOptions {
  /** Honour `TicksRequest.fail_after`. Default false: the field is ignored. */
  testMode?: boolean;
  /** Counts the Unauthenticated answers that `fail_after` produces. */
  stats: StatsRecorder;
}

const DEFAULT_TICKS = 5;
const MAX_TICKS = 1000;
const MAX_INTERVAL_MS = 5000;

/** Creates the DemoService implementation. It expects the verify interceptor in front of it. */
export function createDemoService(options: DemoServiceOptions): ServiceImpl<typeof DemoService> {
  const testMode = options.testMode ?? false;
  const { stats } = options;
  return {
    whoAmI(_req, ctx) {
      const auth = requireAuth(ctx);
      return create(WhoAmIResponseSchema, {
        subject: auth.subject,
        expiresAtUnix: BigInt(auth.expiresAtUnix),
        tokenId: auth.tokenId,
      });
    },
    async *ticks(req, ctx) {
      const auth = requireAuth(ctx);
      const count = req.count === 0 ? DEFAULT_TICKS : req.count;
      if (count > MAX_TICKS) {
        throw new ConnectError(`count must be at most ${MAX_TICKS}`, Code.InvalidArgument);
      }
      if (req.intervalMs > MAX_INTERVAL_MS) {
        throw new ConnectError(
          `interval_ms must be at most ${MAX_INTERVAL_MS}`,
          Code.InvalidArgument,
        );
      }
      const failAfter = testMode ? req.failAfter : 0;
      for (let n = 1; n <= count; n++) {
        if (n > 1 && req.intervalMs > 0)
          await sleep(req.intervalMs, undefined, { signal: ctx.signal });
        if (failAfter > 0 && n > failAfter) {
          stats.unauthenticated();
          throw new ConnectError("token rejected mid-stream (fail_after)", Code.Unauthenticated);
        }
        yield create(TickSchema, { n, subject: auth.subject });
      }
    },
  };
}

function requireAuth(ctx: HandlerContext): AuthInfo {
  const auth = ctx.values.get(authKey);
  if (!auth) throw new ConnectError("call was not verified", Code.Internal);
  return auth;
}
