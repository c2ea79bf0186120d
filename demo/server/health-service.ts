import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import {
  type Health,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from "../../gen/grpc/health/v1/health_pb.js";

/**
 * Creates the standard `grpc.health.v1.Health` service, reporting SERVING for the server as a
 * whole (`""`) and for each of `services`. Mount it without the verify interceptor: health
 * checkers (Envoy's `grpc_health_check`, Kubernetes probes) carry no token.
 *
 * As the protocol specifies, `Check` on an unknown service fails with `Code.NotFound`, while
 * `Watch` reports it as SERVICE_UNKNOWN; `Watch` then stays open until the client cancels or the
 * server shuts down (the demo's status never changes, so no further message is sent).
 *
 * @example
 * router.service(Health, createHealthService([DemoService.typeName]));
 */
export function createHealthService(services: readonly string[]): ServiceImpl<typeof Health> {
  const known = new Set(["", ...services]);
  const status = (service: string) =>
    create(HealthCheckResponseSchema, {
      status: known.has(service) ? ServingStatus.SERVING : ServingStatus.SERVICE_UNKNOWN,
    });
  return {
    check(req) {
      if (!known.has(req.service)) {
        throw new ConnectError(`unknown service "${req.service}"`, Code.NotFound);
      }
      return status(req.service);
    },
    async *watch(req, ctx) {
      yield status(req.service);
      // ctx.signal aborts when the client cancels, the deadline passes or the server shuts down.
      await new Promise<void>((resolve) => {
        if (ctx.signal.aborted) resolve();
        else ctx.signal.addEventListener("abort", () => resolve(), { once: true });
      });
      // End with the reason it stopped (Canceled, DeadlineExceeded), never as a clean end.
      ctx.signal.throwIfAborted();
    },
  };
}
