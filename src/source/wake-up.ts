/** What a source does when the page comes back. */
export interface WakeUpHandlers {
  /** The page is visible again, or back online: a stale token is refreshed now, not at the next call. */
  woke(): void;
  /** The page was restored from the back/forward cache: it missed what the other tabs said. */
  restored(): void;
}

/**
 * Listens for the events that say the page is back — `visibilitychange` to visible, `online`,
 * `pageshow` from the back/forward cache — instead of a timer, which browsers throttle in hidden
 * tabs and which would fire for nothing. Returns the function that stops listening. Outside a
 * browser (no `document`), nothing happens.
 */
export function listenForWakeUp(handlers: WakeUpHandlers): () => void {
  const page = globalThis.window as EventTarget | undefined;
  const doc = globalThis.document as (EventTarget & Pick<Document, "visibilityState">) | undefined;
  if (page === undefined || doc === undefined || typeof page.addEventListener !== "function") {
    return () => {};
  }
  const visible = () => {
    if (doc.visibilityState === "visible") handlers.woke();
  };
  const online = () => handlers.woke();
  const shown = (event: Event) => {
    if ((event as PageTransitionEvent).persisted) handlers.restored();
  };
  doc.addEventListener("visibilitychange", visible);
  page.addEventListener("online", online);
  page.addEventListener("pageshow", shown);
  return () => {
    doc.removeEventListener("visibilitychange", visible);
    page.removeEventListener("online", online);
    page.removeEventListener("pageshow", shown);
  };
}
