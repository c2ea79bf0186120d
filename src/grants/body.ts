/** How much of an error answer is read: enough for the excerpt, nothing like megabytes. */
const ERROR_BODY_BYTES = 4 * 1024;
/** How long an error answer's body may take to arrive: what came by then is the excerpt. */
const ERROR_BODY_WAIT_MS = 1_000;
/** The most a token answer may weigh: a token has no business being megabytes. */
export const MAX_TOKEN_RESPONSE_BYTES = 64 * 1024;

/**
 * The response with a body that stops after a few KiB: an error answer's is cut
 * to ERROR_BODY_BYTES; a token answer longer than MAX_TOKEN_RESPONSE_BYTES fails
 * with `tooLarge`. The rest is never downloaded.
 */
export function capBody(response: Response, tooLarge?: (status: number) => Error): Response {
  const source = response.body;
  if (source === null) return response;
  const reader = source.getReader();
  let left = tooLarge === undefined ? ERROR_BODY_BYTES : MAX_TOKEN_RESPONSE_BYTES;
  // The status of an error answer decides the outcome; its excerpt is not worth the whole budget.
  const giveUpAt = tooLarge === undefined ? performance.now() + ERROR_BODY_WAIT_MS : undefined;
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
      if (over) reader.cancel().catch(() => {});
      if (over && tooLarge !== undefined) return controller.error(tooLarge(response.status));
      controller.enqueue(value.subarray(0, left));
      left -= value.byteLength;
      if (over) controller.close();
    },
    cancel: (reason) => reader.cancel(reason),
  });
  const { status, statusText, headers } = response;
  return new Response(body, { status, statusText, headers });
}

/** The next chunk, or undefined when `deadline` (a performance.now() time) passes first. */
async function readBefore(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  deadline: number | undefined,
): Promise<ReadableStreamReadResult<Uint8Array> | undefined> {
  if (deadline === undefined) return reader.read();
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
