import { create, createFileRegistry, fromBinary, type Message } from "@bufbuild/protobuf";
import type { GenMessage } from "@bufbuild/protobuf/codegenv2";
import { base64Decode } from "@bufbuild/protobuf/wire";
import {
  type Any,
  anyUnpack,
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorProtoSchema,
  file_google_protobuf_any,
} from "@bufbuild/protobuf/wkt";
import {
  Code,
  ConnectError,
  createClient,
  createContextValues,
  type Interceptor,
  type Transport,
} from "@connectrpc/connect";
import { GrpcWebClientBase, type Metadata, type RpcError } from "grpc-web";
import { describe, expect, it, onTestFinished, vi } from "vitest";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";
import { createGrpcWebInterceptors, type GrpcWebInterceptorOptions } from "../../src/grpc-web.js";
import {
  type AuthInterceptorOptions,
  type AuthOptions,
  createAuthInterceptor,
  createTokenSource,
  isRetryableError,
  skipAuth,
  type TokenEvent,
  type TokenSource,
} from "../../src/index.js";
import type { TransportKind } from "../helpers/backend.js";
import { type GatedBackend, startGatedBackend } from "../helpers/gated-backend.js";
import { drain, grpcWebTicks, grpcWebWhoAmI } from "../helpers/grpc-web-calls.js";
import { type World as SharedWorld, startWorld as startSharedWorld } from "../helpers/world.js";
import { useXmlHttpRequest } from "../helpers/xhr.js";

useXmlHttpRequest();

// google.rpc.ErrorInfo and google.rpc.Status are not generated in this repo: describe the
// fields a server sends (same names and numbers as googleapis' error_details.proto / status.proto).
const rpcTypes = createFileRegistry(
  create(FileDescriptorProtoSchema, {
    name: "google/rpc/error_info_subset.proto",
    package: "google.rpc",
    syntax: "proto3",
    dependency: ["google/protobuf/any.proto"],
    messageType: [
      {
        name: "ErrorInfo",
        field: [
          { name: "reason", number: 1, type: FieldDescriptorProto_Type.STRING, jsonName: "reason" },
          { name: "domain", number: 2, type: FieldDescriptorProto_Type.STRING, jsonName: "domain" },
        ],
      },
      {
        name: "Status",
        field: [
          { name: "code", number: 1, type: FieldDescriptorProto_Type.INT32, jsonName: "code" },
          {
            name: "message",
            number: 2,
            type: FieldDescriptorProto_Type.STRING,
            jsonName: "message",
          },
          {
            name: "details",
            number: 3,
            type: FieldDescriptorProto_Type.MESSAGE,
            label: FieldDescriptorProto_Label.REPEATED,
            typeName: ".google.protobuf.Any",
            jsonName: "details",
          },
        ],
      },
    ],
  }),
  (name) => (name === "google/protobuf/any.proto" ? file_google_protobuf_any : undefined),
);
type ErrorInfo = Message<"google.rpc.ErrorInfo"> & { reason: string; domain: string };
type RpcStatus = Message<"google.rpc.Status"> & { code: number; message: string; details: Any[] };
const ErrorInfoSchema = rpcTypes.getMessage("google.rpc.ErrorInfo") as GenMessage<ErrorInfo>;
const RpcStatusSchema = rpcTypes.getMessage("google.rpc.Status") as GenMessage<RpcStatus>;

/** The ErrorInfo details of an RpcError, from the `grpc-status-details-bin` trailer. */
function errorInfosOf(metadata: Metadata): ErrorInfo[] {
  const bin = metadata["grpc-status-details-bin"];
  if (bin === undefined) return [];
  const status = fromBinary(RpcStatusSchema, base64Decode(bin));
  return status.details.flatMap((any) => anyUnpack(any, ErrorInfoSchema) ?? []);
}

const tokenExpiredDetail = () =>
  new ConnectError("token expired", Code.PermissionDenied, undefined, [
    { desc: ErrorInfoSchema, value: { reason: "TOKEN_EXPIRED", domain: "demo.example" } },
  ]);
const tokenExpiredHeader = () =>
  new ConnectError("token expired", Code.PermissionDenied, { "x-auth-error": "token-expired" });
const permissionDenied = () => new ConnectError("not allowed", Code.PermissionDenied);

/** Connect's transports (through `createAuthInterceptor`) and Google's runtime (through ours). */
type Kind = TransportKind | "grpc-web runtime";
const kinds: Kind[] = ["router", "grpc-web", "connect", "grpc-web runtime"];

/** Options for each adapter: `isAuthError` gets a ConnectError in one, an RpcError in the other. */
interface AdapterOptions {
  connect?: AuthInterceptorOptions;
  grpcWeb?: GrpcWebInterceptorOptions;
}

/** The same options for both adapters, for predicates that read only the code. */
function both(options: AuthOptions<{ code: number }>): AdapterOptions {
  return { connect: options, grpcWeb: options };
}

/** A client of the demo service through one adapter; failures have a numeric `code`. */
interface Caller {
  /** WhoAmI's subject; `callId` travels as `x-call-id` so attempts can be counted per call. */
  whoAmI(callId?: string): Promise<string>;
  /** The tick numbers of a 3-tick stream. */
  ticks(): Promise<number[]>;
}

function makeCaller(
  kind: Kind,
  backend: { url: string; transport(kind: TransportKind, interceptors: Interceptor[]): Transport },
  tokens: TokenSource,
  options: AdapterOptions,
): Caller {
  if (kind === "grpc-web runtime") {
    const client = new GrpcWebClientBase({
      format: "binary",
      ...createGrpcWebInterceptors(tokens, options.grpcWeb),
    });
    return {
      whoAmI: async (callId) =>
        (await grpcWebWhoAmI(client, backend.url, callId ? { "x-call-id": callId } : {})).subject,
      async ticks() {
        const outcome = await drain(grpcWebTicks(client, backend.url, { count: 3 }));
        if (outcome.error !== undefined) throw outcome.error;
        return outcome.ticks;
      },
    };
  }
  const interceptor = createAuthInterceptor(tokens, options.connect);
  const client = createClient(DemoService, backend.transport(kind, [interceptor]));
  return {
    whoAmI: async (callId) =>
      (await client.whoAmI({}, callId ? { headers: { "x-call-id": callId } } : {})).subject,
    async ticks() {
      const ns: number[] = [];
      for await (const tick of client.ticks({ count: 3 })) ns.push(tick.n);
      return ns;
    },
  };
}

interface World extends Omit<SharedWorld<GatedBackend>, "replays"> {
  call: Caller;
  /** Methods replayed, as `onReplay` reported them. */
  replays: string[];
}

/** The shared world with a service that refuses bad tokens as the test chooses, and a caller. */
async function startWorld(
  kind: Kind,
  options: AdapterOptions = {},
  publicMethods: string[] = [],
): Promise<World> {
  const w = await startSharedWorld({
    backend: (authority) => startGatedBackend(authority, { publicMethods }),
  });
  const replays: string[] = [];
  const onReplay = ({ method }: { method: string }) => replays.push(method);
  const call = makeCaller(kind, w.backend, w.tokens, {
    connect: { onReplay, ...options.connect },
    grpcWeb: { onReplay, ...options.grpcWeb },
  });
  return { ...w, call, replays };
}

/** The error a call failed with (every adapter's errors carry a numeric `code`). */
async function failure(call: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await call;
  } catch (error) {
    return error as { code: number; message: string };
  }
  throw new Error("the call succeeded");
}

const sessionEnds = (events: TokenEvent[]) => events.filter((e) => e.type === "session-ended");

describe.each(kinds)("isAuthError and skip through %s", (kind) => {
  it("replays once with a refreshed token when isAuthError names the server's PermissionDenied", async () => {
    const w = await startWorld(
      kind,
      both({ isAuthError: (e) => e.code === Code.PermissionDenied }),
    );
    w.backend.refuse = permissionDenied;
    expect(await w.call.whoAmI()).toBe("alice");
    w.authority.revokeAll();
    const [subject, ticks] = await Promise.all([w.call.whoAmI(), w.call.ticks()]);
    expect(subject).toBe("alice");
    expect(ticks).toEqual([1, 2, 3]);
    // One extra token request for both calls; each was refused once and replayed once.
    expect(w.endpoint.requests).toBe(2);
    expect(w.authority.unauthenticated).toBe(2);
    expect(w.backend.calls).toHaveLength(5);
    expect(w.replays.sort()).toEqual(["demo.v1.DemoService/Ticks", "demo.v1.DemoService/WhoAmI"]);
  });

  it("gives the caller the server's PermissionDenied without a replay when isAuthError is not set", async () => {
    const w = await startWorld(kind);
    w.backend.refuse = permissionDenied;
    await w.call.whoAmI();
    w.authority.revokeAll();
    expect((await failure(w.call.whoAmI())).code).toBe(Code.PermissionDenied);
    expect(w.endpoint.requests).toBe(1);
    expect(w.backend.calls).toHaveLength(2);
    expect(w.replays).toEqual([]);
  });

  it("replays when an ErrorInfo detail's reason is TOKEN_EXPIRED, and not for a PermissionDenied without it", async () => {
    const w = await startWorld(kind, {
      connect: {
        isAuthError: (e) =>
          e.findDetails(ErrorInfoSchema).some((d) => d.reason === "TOKEN_EXPIRED"),
      },
      grpcWeb: {
        isAuthError: (e) => errorInfosOf(e.metadata).some((d) => d.reason === "TOKEN_EXPIRED"),
      },
    });
    w.backend.refuse = tokenExpiredDetail;
    await w.call.whoAmI();
    w.authority.revokeAll();
    expect(await w.call.whoAmI()).toBe("alice");
    expect(w.endpoint.requests).toBe(2);
    expect(w.replays).toEqual(["demo.v1.DemoService/WhoAmI"]);

    w.backend.refuse = permissionDenied;
    w.authority.revokeAll();
    expect((await failure(w.call.whoAmI())).code).toBe(Code.PermissionDenied);
    expect(w.endpoint.requests).toBe(2);
    expect(w.replays).toHaveLength(1);
  });

  it("replays when an x-auth-error: token-expired header says the token expired", async () => {
    const w = await startWorld(kind, {
      connect: { isAuthError: (e) => e.metadata.get("x-auth-error") === "token-expired" },
      grpcWeb: { isAuthError: (e) => e.metadata["x-auth-error"] === "token-expired" },
    });
    w.backend.refuse = tokenExpiredHeader;
    await w.call.whoAmI();
    w.authority.revokeAll();
    const [subject, ticks] = await Promise.all([w.call.whoAmI(), w.call.ticks()]);
    expect(subject).toBe("alice");
    expect(ticks).toEqual([1, 2, 3]);
    expect(w.endpoint.requests).toBe(2);
    expect(w.replays).toHaveLength(2);

    w.backend.refuse = permissionDenied;
    w.authority.revokeAll();
    expect((await failure(w.call.whoAmI())).code).toBe(Code.PermissionDenied);
    expect(w.endpoint.requests).toBe(2);
  });

  it("bounds a server that keeps refusing with PermissionDenied: at most two attempts per call and two token requests for 100 calls, one session-ended", async () => {
    const isAuthError = (e: { code: number }) => e.code === Code.PermissionDenied;
    const w = await startWorld(kind, both({ isAuthError }));
    w.backend.refuse = permissionDenied;
    w.authority.accepts = () => false;
    const errors = await Promise.all(
      Array.from({ length: 100 }, (_, i) => failure(w.call.whoAmI(`call-${i}`))),
    );
    // The server's refusal, or the source's "the replacement was refused too" (16).
    for (const error of errors)
      expect([Code.PermissionDenied, Code.Unauthenticated]).toContain(error.code);
    const attempts = new Map<string | undefined, number>();
    for (const { callId } of w.backend.calls) attempts.set(callId, (attempts.get(callId) ?? 0) + 1);
    expect(attempts.size).toBe(100);
    expect(Math.max(...attempts.values())).toBeLessThanOrEqual(2);
    expect(w.endpoint.requests).toBeLessThanOrEqual(2);
    expect(sessionEnds(w.events)).toEqual([{ type: "session-ended", reason: "token-refused" }]);
    // A query layer given the same predicate does not retry any of them.
    expect(errors.filter((e) => isRetryableError(e, { isAuthError }))).toEqual([]);
  });

  it("treats an isAuthError that throws as false: no replay, the failure reported once, the call fails with the server's error", async () => {
    const bug = new Error("isAuthError has a bug");
    const asked: unknown[] = [];
    const reported = vi.spyOn(console, "error").mockImplementation(() => {});
    onTestFinished(() => reported.mockRestore());
    const w = await startWorld(
      kind,
      both({
        isAuthError: (e) => {
          asked.push(e);
          throw bug;
        },
      }),
    );
    await w.call.whoAmI();
    w.authority.revokeAll();
    const unary = await failure(w.call.whoAmI());
    expect(unary.code).toBe(Code.Unauthenticated);
    expect(unary.message).toContain("token missing, expired or revoked");
    expect(asked[0]).toBe(unary);
    expect(reported).toHaveBeenCalledWith(bug);
    const stream = await failure(w.call.ticks());
    expect(stream.code).toBe(Code.Unauthenticated);
    expect(w.endpoint.requests).toBe(1);
    expect(w.backend.calls).toHaveLength(3);
    expect(w.replays).toEqual([]);
    // One failed call, one question and one report (not one per place that asks).
    expect.soft(asked).toEqual([unary, stream]);
    expect.soft(reported.mock.calls).toEqual([[bug], [bug]]);
  });

  it("treats a skip that throws as false: the call gets the token, and the error is reported once", async () => {
    const bug = new Error("skip has a bug");
    const reported = vi.spyOn(console, "error").mockImplementation(() => {});
    onTestFinished(() => reported.mockRestore());
    const skip = vi.fn(() => {
      throw bug;
    });
    const w = await startWorld(kind, both({ skip }));
    expect(await w.call.whoAmI()).toBe("alice");
    expect(await w.call.whoAmI()).toBe("alice");
    expect(w.backend.calls.map((c) => c.authorization)).toEqual([
      `Bearer ${w.authority.minted[0]}`,
      `Bearer ${w.authority.minted[0]}`,
    ]);
    expect(skip).toHaveBeenCalledTimes(1);
    expect(reported.mock.calls).toEqual([[bug]]);
  });

  it("sends a skipped method without a header or a token fetch, while other methods get the token; skip is asked once per method", async () => {
    const skip = vi.fn(
      ({ service, method }: { service: string; method: string }) =>
        service === "demo.v1.DemoService" && method === "WhoAmI",
    );
    const w = await startWorld(kind, both({ skip }), ["WhoAmI"]);
    const subjects = await Promise.all(Array.from({ length: 10 }, () => w.call.whoAmI()));
    subjects.push(await w.call.whoAmI(), await w.call.whoAmI());
    expect(subjects).toEqual(Array(12).fill("anonymous"));
    expect(w.endpoint.requests).toBe(0);
    expect(w.backend.calls.map((c) => c.authorization)).toEqual(Array(12).fill(undefined));

    expect(await w.call.ticks()).toEqual([1, 2, 3]);
    expect(await w.call.ticks()).toEqual([1, 2, 3]);
    expect(await w.call.whoAmI()).toBe("anonymous");
    expect(w.endpoint.requests).toBe(1);
    const bearer = `Bearer ${w.authority.minted[0]}`;
    expect(w.backend.calls.slice(12).map((c) => [c.method, c.authorization])).toEqual([
      ["Ticks", bearer],
      ["Ticks", bearer],
      ["WhoAmI", undefined],
    ]);
    expect(skip.mock.calls).toEqual([
      [{ service: "demo.v1.DemoService", method: "WhoAmI" }],
      [{ service: "demo.v1.DemoService", method: "Ticks" }],
    ]);
  });

  it("does not replay a skipped call the server refuses, and fetches no token for it", async () => {
    const w = await startWorld(kind, both({ skip: ({ method }) => method === "WhoAmI" }));
    expect((await failure(w.call.whoAmI())).code).toBe(Code.Unauthenticated);
    expect(w.endpoint.requests).toBe(0);
    expect(w.backend.calls).toHaveLength(1);
    expect(w.replays).toEqual([]);
    expect(sessionEnds(w.events)).toEqual([]);
  });
});

describe.each(["router", "grpc-web", "connect"] as const)("skipAuth through %s", (kind) => {
  it("still sends a call whose context values set skipAuth without a header or a token fetch", async () => {
    const t = await startSharedWorld({
      backend: (authority) => startGatedBackend(authority, { publicMethods: ["WhoAmI"] }),
    });
    const { backend } = t;
    const skip = vi.fn(() => false);
    const client = t.connect(kind, [createAuthInterceptor(t.tokens, { skip })]);
    const contextValues = createContextValues().set(skipAuth, true);
    expect((await client.whoAmI({}, { contextValues })).subject).toBe("anonymous");
    expect(t.endpoint.requests).toBe(0);
    expect((await client.whoAmI({})).subject).toBe("alice");
    expect(t.endpoint.requests).toBe(1);
    expect(backend.calls.map((c) => c.authorization)).toEqual([
      undefined,
      `Bearer ${t.authority.minted[0]}`,
    ]);
  });
});

describe("a proxy's plain-text 401 in front of the service", () => {
  async function startEdgeWorld(kind: Kind, options: AdapterOptions) {
    const t = await startSharedWorld({ edge: "http-401" });
    const { backend } = t;
    const replays: string[] = [];
    const onReplay = ({ method }: { method: string }) => replays.push(method);
    const call = makeCaller(kind, backend, t.tokens, {
      connect: { onReplay, ...options.connect },
      grpcWeb: { onReplay, ...options.grpcWeb },
    });
    return { ...t, call, replays };
  }

  // No gRPC answer at all (no status, no trailers): the runtime saw a non-gRPC reply.
  const edgeRefusal = (e: RpcError) =>
    e.code === 16 || (e.code === 2 && Object.keys(e.metadata ?? {}).length === 0);

  it("replays a grpc-web runtime unaryCall, which sees the 401 as Unknown, when isAuthError accepts that Unknown", async () => {
    const w = await startEdgeWorld("grpc-web runtime", { grpcWeb: { isAuthError: edgeRefusal } });
    await w.call.whoAmI();
    w.authority.revokeAll();
    expect(await w.call.whoAmI()).toBe("alice");
    expect(w.replays).toEqual(["demo.v1.DemoService/WhoAmI"]);
    expect(w.endpoint.requests).toBe(2);
    expect(w.authority.seen).toHaveLength(3);
  });

  it("gives a grpc-web runtime unaryCall the Unknown without a replay under the default isAuthError", async () => {
    const w = await startEdgeWorld("grpc-web runtime", {});
    await w.call.whoAmI();
    w.authority.revokeAll();
    expect((await failure(w.call.whoAmI())).code).toBe(Code.Unknown);
    expect(w.replays).toEqual([]);
    expect(w.endpoint.requests).toBe(1);
  });

  it.each(["grpc-web", "connect"] as const)(
    "replays a call over Connect's %s transport, which reads the 401 as Unauthenticated, under the default isAuthError",
    async (kind) => {
      const w = await startEdgeWorld(kind, {});
      await w.call.whoAmI();
      w.authority.revokeAll();
      expect(await w.call.whoAmI()).toBe("alice");
      expect(w.replays).toEqual(["demo.v1.DemoService/WhoAmI"]);
      expect(w.endpoint.requests).toBe(2);
    },
  );
});

describe("checks of isAuthError and skip", () => {
  const tokens = createTokenSource({ fetchToken: async () => "token" });
  const bad: [string, Record<string, unknown>][] = [
    ["isAuthError", { isAuthError: Code.PermissionDenied }],
    ["isAuthError", { isAuthError: "PermissionDenied" }],
    ["isAuthError", { isAuthError: null }],
    ["skip", { skip: ["demo.v1.DemoService/WhoAmI"] }],
    ["skip", { skip: "WhoAmI" }],
    ["skip", { skip: true }],
  ];

  it.each(bad)("throws a TypeError naming %s when it is not a function: %o", (name, options) => {
    expect(() => createAuthInterceptor(tokens, options as AuthInterceptorOptions)).toThrow(
      new TypeError(`createAuthInterceptor: ${name} must be a function`),
    );
    expect(() => createGrpcWebInterceptors(tokens, options as GrpcWebInterceptorOptions)).toThrow(
      new TypeError(`createGrpcWebInterceptors: ${name} must be a function`),
    );
  });
});
