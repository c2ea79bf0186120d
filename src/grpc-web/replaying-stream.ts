import type { ClientReadableStream, Metadata, RpcError, Status } from "grpc-web";
import { reportError } from "../core/report-error.js";

type EventName = "data" | "error" | "status" | "metadata" | "end";
// biome-ignore lint/suspicious/noExplicitAny: grpc-web's listeners take different argument types per event.
type Listener = (value?: any) => void;

/** What the stream asks of the interceptor that created it. */
export interface ReplayHooks {
  /** Starts an attempt with `token`; resolves to the runtime's stream for it. */
  invoke(token: string): Promise<ClientReadableStream<unknown>>;
  /** A token for the first attempt. */
  getToken(): Promise<string>;
  /**
   * Whether `error`, refused before any data with `token`, gets a replay: the token to replay
   * with (may fail with an RpcError), or undefined when the caller gets the error (a refused
   * token is then told to the source).
   */
  retry(error: RpcError, token: string): Promise<string> | undefined;
  /** Whether a replay is still possible: until then the attempt's metadata is held back. */
  canRetry(): boolean;
  /** The server refused `token` and no replay follows. */
  rejected(token: string): void;
  /** Turns a token failure into the RpcError the caller sees. */
  toRpcError(error: unknown): RpcError;
  /** Whether this failure gets the refresh and the one replay (the app's `isAuthError`). */
  isAuthError(error: RpcError): boolean;
  /** An attempt with `token` delivered data or ended well. */
  proven(token: string): void;
}

const UNKNOWN = 2;

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
  readonly #hooks: ReplayHooks;
  #inner: ClientReadableStream<unknown> | undefined;
  #cancelled = false;
  #terminated = false;

  constructor(hooks: ReplayHooks) {
    this.#hooks = hooks;
    hooks.getToken().then(
      (token) => this.#start(token),
      (error: unknown) => this.#fail(hooks.toRpcError(error)),
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
      try {
        listener(value);
      } catch (error) {
        // App code that throws is reported, and breaks neither the stream nor the other listeners.
        reportError(error);
      }
    }
  }

  #fail(error: RpcError): void {
    this.#emit("error", error);
    this.#emit("status", { code: error.code, details: error.message, metadata: {} });
  }

  #start(token: string): void {
    if (this.#cancelled) return;
    Promise.resolve()
      .then(() => this.#hooks.invoke(token))
      .then(
        (inner) => this.#attach(inner, token),
        (error: unknown) => this.#fail(this.#hooks.toRpcError(error)),
      );
  }

  #attach(inner: ClientReadableStream<unknown>, token: string): void {
    if (this.#cancelled) {
      inner.cancel();
      return;
    }
    const canReplay = this.#hooks.canRetry();
    this.#inner = inner;
    let sawData = false;
    let abandoned = false;
    let completed = false;
    let erred = false;
    let heldUnknown: RpcError | undefined;
    // Held until we know this attempt is the one the caller gets: a replayed attempt leaves no trace.
    const heldMetadata: Metadata[] = [];
    const release = () => {
      for (const metadata of heldMetadata.splice(0)) this.#emit("metadata", metadata);
    };
    inner.on("metadata", (metadata: Metadata) => {
      if (abandoned) return;
      completed = true;
      if (sawData || !canReplay) this.#emit("metadata", metadata);
      else heldMetadata.push(metadata);
    });
    inner.on("data", (data: unknown) => {
      if (abandoned) return;
      if (!sawData) this.#hooks.proven(token);
      sawData = true;
      release();
      this.#emit("data", data);
    });
    inner.on("error", (error: RpcError) => {
      if (abandoned) return;
      if (error.code === UNKNOWN && !sawData && !completed) {
        heldUnknown ??= error;
        return;
      }
      heldUnknown = undefined;
      erred = true;
      if (sawData) {
        if (this.#hooks.isAuthError(error)) this.#hooks.rejected(token);
      } else {
        const replay = this.#hooks.retry(error, token);
        if (replay !== undefined) {
          abandoned = true;
          replay.then(
            (next) => this.#start(next),
            (failure: unknown) => this.#fail(this.#hooks.toRpcError(failure)),
          );
          return;
        }
      }
      release();
      this.#emit("error", error);
    });
    inner.on("status", (status: Status) => {
      // The statuses that echo a held Unknown are not news either.
      if (abandoned || (heldUnknown !== undefined && !completed)) return;
      release();
      this.#emit("status", status);
    });
    inner.on("end", () => {
      if (abandoned) return;
      release();
      if (heldUnknown !== undefined) {
        this.#fail(heldUnknown);
        return;
      }
      if (!sawData && !erred) this.#hooks.proven(token);
      this.#emit("end");
    });
  }
}
