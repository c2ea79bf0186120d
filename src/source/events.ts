import { callApp } from "../core/report-error.js";
import type { TokenEvent } from "../core/token-source.js";

/** A source's listeners: `emit` tells them all, and a broken one breaks nothing. */
export interface TokenEvents {
  emit(event: TokenEvent): void;
  subscribe(listener: (event: TokenEvent) => void): () => void;
  /** Drops every listener (`dispose()`). */
  clear(): void;
}

export function createTokenEvents(): TokenEvents {
  const listeners = new Set<(event: TokenEvent) => void>();
  return {
    emit(event: TokenEvent): void {
      for (const listener of listeners) callApp(() => listener(event), undefined);
    },
    subscribe(listener: (event: TokenEvent) => void): () => void {
      if (typeof listener !== "function") {
        throw new TypeError("subscribe: listener must be a function");
      }
      // A wrapper per subscription, so subscribing one function twice needs two unsubscribes.
      const wrapped = (event: TokenEvent) => listener(event);
      listeners.add(wrapped);
      return () => {
        listeners.delete(wrapped);
      };
    },
    clear: () => listeners.clear(),
  };
}
