/** How much of an error answer is read: enough for the excerpt, nothing like megabytes. */
const ERROR_BODY_BYTES = 4 * 1024;
/** How long an error answer's body may take to arrive: what came by then is the excerpt. */
const ERROR_BODY_WAIT_MS = 1_000;
/** The most a token answer may weigh: a token has no business being megabytes. */
export const MAX_TOKEN_RESPONSE_BYTES = 64 * 1024;

/**
 * The response with a body cut to ERROR_BODY_BYTES, or to what arrived within ERROR_BODY_WAIT_MS:
 * enough for an error answer's excerpt. The rest is never downloaded.
 */
export function capBody(response: Response): Response {
  const source = response.body;
  if (source === null) return response;
  const reader = source.getReader();
  let left = ERROR_BODY_BYTES;
  // The status of an error answer decides the outcome; its excerpt is not worth the whole budget.
  const giveUpAt = performance.now() + ERROR_BODY_WAIT_MS;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = await readBefore(reader, giveUpAt);
      if (next === undefined) {
        reader.cancel().catch(() => {});
        return controller.close();
      }
      const { done, value } = next;
      if (done) return controller.close();
      const over = value.byteLength > left;
      controller.enqueue(value.subarray(0, left));
      left -= value.byteLength;
      if (over) {
        reader.cancel().catch(() => {});
        controller.close();
      }
    },
    cancel: (reason) => reader.cancel(reason),
  });
  const { status, statusText, headers } = response;
  return new Response(body, { status, statusText, headers });
}

/**
 * A token answer's text. One longer than MAX_TOKEN_RESPONSE_BYTES fails with `tooLarge()`, and the
 * rest is never downloaded. Read here, not through a Response made of a stream that errs: a
 * browser replaces that stream's error with a network-error TypeError of its own.
 */
export async function readTokenText(response: Response, tooLarge: () => Error): Promise<string> {
  const reader = response.body?.getReader();
  if (reader === undefined) return "";
  const decoder = new TextDecoder();
  let text = "";
  for (let left = MAX_TOKEN_RESPONSE_BYTES; ; ) {
    const { done, value } = await reader.read();
    if (done) return text + decoder.decode();
    left -= value.byteLength;
    if (left < 0) {
      reader.cancel().catch(() => {});
      throw tooLarge();
    }
    text += decoder.decode(value, { stream: true });
  }
}

/** The next chunk, or undefined when `deadline` (a performance.now() time) passes first. */
async function readBefore(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  deadline: number,
): Promise<ReadableStreamReadResult<Uint8Array> | undefined> {
  let stopTimer = () => {};
  const late = new Promise<undefined>((resolve) => {
    const timer = setTimeout(resolve, Math.max(0, deadline - performance.now()));
    stopTimer = () => clearTimeout(timer);
  });
  try {
    return await Promise.race([reader.read(), late]);
  } finally {
    stopTimer();
  }
}
