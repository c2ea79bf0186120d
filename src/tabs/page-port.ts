import type { Message } from "./channel.js";

/** A tab's end of the BroadcastChannel, shut while its page sits in the back/forward cache. */
export interface PagePort {
  /** Sends to the other tabs; nothing while shut or closed. */
  post(message: Message): void;
  /** Opens the channel again if the page shut it on its way into the back/forward cache. */
  reopen(): void;
  /** Closes the channel for good and stops listening to the page. */
  close(): void;
}

/**
 * Opens the channel `name` and hands every message to `receive`. On `pagehide`, `leaving` runs
 * first (the page may hand over what it holds); a page going into the back/forward cache then
 * shuts the channel, because Chromium evicts a cached page that a message reaches
 * (`BroadcastChannelOnMessage`) and older versions do not cache a page with a channel open at
 * all. It opens again on `pageshow`; the source then asks the tabs what it missed.
 */
export function openPagePort(
  name: string,
  Channel: new (name: string) => BroadcastChannel,
  receive: (data: unknown) => void,
  leaving: () => void,
): PagePort {
  let port: BroadcastChannel | undefined;
  let closed = false;
  const open = () => {
    if (port !== undefined || closed) return;
    port = new Channel(name);
    // Node's channels keep the process alive; a token source must not.
    (port as { unref?: () => void }).unref?.();
    port.onmessage = (event: MessageEvent<unknown>) => receive(event.data);
  };
  const shut = () => {
    if (port === undefined) return;
    port.onmessage = null;
    port.close();
    port = undefined;
  };
  const page = globalThis.window as EventTarget | undefined;
  const hidden = (event: Event) => {
    leaving();
    if ((event as PageTransitionEvent).persisted) shut();
  };
  const shown = (event: Event) => {
    if ((event as PageTransitionEvent).persisted) open();
  };
  page?.addEventListener?.("pagehide", hidden);
  page?.addEventListener?.("pageshow", shown);
  open();
  return {
    post: (message) => port?.postMessage(message),
    reopen: open,
    close() {
      closed = true;
      page?.removeEventListener?.("pagehide", hidden);
      page?.removeEventListener?.("pageshow", shown);
      shut();
    },
  };
}
