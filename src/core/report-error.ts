/**
 * Reports an error thrown by app code we called back (a listener, `onReplay`, `isAuthError`) the
 * way a browser reports an event handler's error, without breaking our own flow and without
 * rethrowing it anywhere (in Node that would crash the process).
 */
export function reportError(error: unknown): void {
  const report = (globalThis as { reportError?: (error: unknown) => void }).reportError;
  if (typeof report === "function") report(error);
  else console.error(error);
}

/** Runs app code we call back: what it throws is reported, never rethrown, and `fallback` returned. */
export function callApp<T>(run: () => T, fallback: T): T {
  try {
    return run();
  } catch (error) {
    reportError(error);
    return fallback;
  }
}
