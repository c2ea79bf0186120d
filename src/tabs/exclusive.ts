/** The Web Locks a tab link takes, and the bound on waiting for a holder that froze. */
export interface LockRequest {
  locks: Pick<LockManager, "request">;
  /** How long a healthy holder may keep the lock; a longer wait takes it from the holder. */
  stealAfterMs: number;
}

export const NOT_RUN: unique symbol = Symbol("not run");

/**
 * Runs `task` holding a Web Lock. The wait ends early (the task is not run) when `cancelWait`
 * aborts; a wait longer than `stealAfterMs` takes the lock from its holder: a frozen tab must not
 * stall the others (a closed tab's lock is released by the browser).
 */
export async function exclusive<T>(
  { locks, stealAfterMs }: LockRequest,
  lock: string,
  task: () => Promise<T>,
  cancelWait: AbortSignal,
): Promise<T | typeof NOT_RUN> {
  const waiting = new AbortController();
  const stopWaiting = () => waiting.abort();
  cancelWait.addEventListener("abort", stopWaiting, { once: true });
  const stealTimer = setTimeout(stopWaiting, stealAfterMs);
  let running: Promise<T> | undefined;
  try {
    return await locks.request(lock, { signal: waiting.signal }, () => {
      clearTimeout(stealTimer);
      running = task();
      return running;
    });
  } catch (error) {
    // The lock was stolen from this tab while its task ran: the task's own outcome still counts.
    if (running !== undefined) return await running;
    if (!waiting.signal.aborted) throw error;
    if (cancelWait.aborted) return NOT_RUN;
    // Waited too long: the holder is stuck. Take the lock and run the task ourselves.
    return await locks.request(lock, { steal: true }, () => task());
  } finally {
    clearTimeout(stealTimer);
    cancelWait.removeEventListener("abort", stopWaiting);
  }
}
