import type { ClientReadableStream, Metadata, RpcError, Status } from "grpc-web";
import { GrpcCode } from "../core/codes.js";
import { callApp } from "../core/report-error.js";
import type { CallReplay } from "../replay/call.js";
import { failureOf, toRpcError } from "./request.js";

type EventName = "data" | "error" | "status" | "metadata" | "end";
// biome-ignore lint/suspicious/noExplicitAny: grpc-web's listeners take different argument types per event.
type Listener = (value?: any) => void;

/** What the stream asks of the interceptor that created it. */
export interface StreamCall {
  /** The call's replay rules, with the token of its first attempt (rejects with an RpcError). */
  begin(): Promise<CallReplay>;
  /** Starts an attempt with the call's current token; resolves to the runtime's stream for it. */
  invoke(call: CallReplay): Promise<ClientReadableStream<unknown>>;
}

/**
 * The `ClientReadableStream` a stream interceptor returns at once, while the
 * token is still being fetched (grpc-web's stream interceptors are synchronous).
 *
 * It forwards `data`, `metadata`, `status`, `error` and `end` in order, replays
 * once when Unauthenticated (16) arrives before any `data`, and lets the caller
 * see exactly one terminal event (`error` or `end`): grpc-web sends `end` after
 * `error` for errors in the body trailer, but not for trailers-only answers.
 *
 * A response that is not gRPC-Web (say a plain-text HTTP 401 from a proxy)
 * first raises Unknown (2) while it loads; the code from the HTTP status comes
 * when it completes, which grpc-web marks with a `metadata` event. So an early
 * Unknown is held until then, and the caller sees the status-derived code.
 */
export class ReplayingStream implements ClientReadableStream<unknown> {
  readonly #listeners: Record<EventName, Listener[]> = {
    data: [],
    error: [],
    status: [],
    metadata: [],
    end: [],
  };
  readonly #call: StreamCall;
  #inner: ClientReadableStream<unknown> | undefined;
  #cancelled = false;
  #terminated = false;

  constructor(call: StreamCall) {
    this.#call = call;
    call.begin().then(
      (replay) => this.#start(replay),
      (error: unknown) => this.#fail(toRpcError(error)),
    );
  }

  // The overloads of ClientReadableStream collapse to one implementation.
  on(eventType: EventName, callback: Listener): this {
    this.#listeners[eventType]?.push(callback);
    return this;
  }

  removeListener(eventType: EventName, callback: Listener): void {
    const listeners = this.#listeners[eventType];
    const index = listeners?.indexOf(callback) ?? -1;
    if (index >= 0) listeners?.splice(index, 1);
  }

  cancel(): void {
    if (this.#cancelled) return;
    this.#cancelled = true;
    this.#inner?.cancel();
  }

  #emit(eventType: EventName, value?: unknown): void {
    if (this.#cancelled) return;
    const terminal = eventType === "error" || eventType === "end";
    // After the one terminal event only the trailing status and metadata may follow.
    if (this.#terminated && (terminal || eventType === "data")) return;
    if (terminal) this.#terminated = true;
    for (const listener of [...this.#listeners[eventType]]) {
      // App code that throws is reported, and breaks neither the stream nor the other listeners.
      callApp(() => listener(value), undefined);
    }
  }

  #fail(error: RpcError): void {
    this.#emit("error", error);
    this.#emit("status", { code: error.code, details: error.message, metadata: {} });
  }

  #start(call: CallReplay): void {
    if (this.#cancelled) return;
    Promise.resolve()
      .then(() => this.#call.invoke(call))
      .then(
        (inner) => this.#attach(inner, call),
        (error: unknown) => this.#fail(toRpcError(error)),
      );
  }

  #attach(inner: ClientReadableStream<unknown>, call: CallReplay): void {
    if (this.#cancelled) {
      inner.cancel();
      return;
    }
    this.#inner = inner;
    const attempt: Attempt = {
      call,
      canReplay: call.canReplay(),
      sawData: false,
      abandoned: false,
      completed: false,
      erred: false,
      heldUnknown: undefined,
      heldMetadata: [],
    };
    inner.on("metadata", (metadata: Metadata) => this.#onMetadata(attempt, metadata));
    inner.on("data", (data: unknown) => this.#onData(attempt, data));
    inner.on("error", (error: RpcError) => this.#onError(attempt, error));
    inner.on("status", (status: Status) => this.#onStatus(attempt, status));
    inner.on("end", () => this.#onEnd(attempt));
  }

  /** Held metadata goes out once this attempt is surely the one the caller gets. */
  #release(attempt: Attempt): void {
    for (const metadata of attempt.heldMetadata.splice(0)) this.#emit("metadata", metadata);
  }

  #onMetadata(attempt: Attempt, metadata: Metadata): void {
    if (attempt.abandoned) return;
    attempt.completed = true;
    if (attempt.sawData || !attempt.canReplay) this.#emit("metadata", metadata);
    else attempt.heldMetadata.push(metadata);
  }

  #onData(attempt: Attempt, data: unknown): void {
    if (attempt.abandoned) return;
    if (!attempt.sawData) attempt.call.succeeded();
    attempt.sawData = true;
    this.#release(attempt);
    this.#emit("data", data);
  }

  #onError(attempt: Attempt, error: RpcError): void {
    if (attempt.abandoned) return;
    const { call } = attempt;
    if (error.code === GrpcCode.Unknown && !attempt.sawData && !attempt.completed) {
      attempt.heldUnknown ??= error;
      return;
    }
    attempt.heldUnknown = undefined;
    attempt.erred = true;
    if (attempt.sawData) {
      call.failedAfterData(failureOf(error));
    } else {
      const replay = call.replay(failureOf(error));
      if (replay !== undefined) {
        attempt.abandoned = true;
        replay.then(
          () => this.#start(call),
          (failure: unknown) => this.#fail(toRpcError(failure)),
        );
        return;
      }
    }
    this.#release(attempt);
    this.#emit("error", error);
  }

  #onStatus(attempt: Attempt, status: Status): void {
    // The statuses that echo a held Unknown are not news either.
    if (attempt.abandoned || (attempt.heldUnknown !== undefined && !attempt.completed)) return;
    this.#release(attempt);
    this.#emit("status", status);
  }

  #onEnd(attempt: Attempt): void {
    if (attempt.abandoned) return;
    this.#release(attempt);
    if (attempt.heldUnknown !== undefined) {
      this.#fail(attempt.heldUnknown);
      return;
    }
    if (!attempt.sawData && !attempt.erred) attempt.call.succeeded();
    this.#emit("end");
  }
}

/** One attempt of the stream, as its listeners see it. */
interface Attempt {
  call: CallReplay;
  /** Whether a failure of this attempt could still be replayed. */
  canReplay: boolean;
  sawData: boolean;
  /** Replaced by a replay: whatever it says now is no news. */
  abandoned: boolean;
  /** The runtime said the response completed (its `metadata` event). */
  completed: boolean;
  erred: boolean;
  /** An early Unknown, held until the response completes and says its real code. */
  heldUnknown: RpcError | undefined;
  /** Held until this attempt is the one the caller gets: a replayed attempt leaves no trace. */
  heldMetadata: Metadata[];
}
