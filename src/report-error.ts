/**
 * Reports an error thrown by app code we called back (a listener, `onReplay`)
 * the way an event handler's error is reported, without breaking our own flow.
 */
export function reportError(error: unknown): void {
  setTimeout(() => {
    throw error;
  });
}
