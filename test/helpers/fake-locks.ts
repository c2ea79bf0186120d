/**
 * An in-memory stand-in for the Web Locks API with several "tabs": exclusive
 * locks granted in order, `signal` to give up waiting, `steal` to take a held
 * lock, and `closeTab` to release what a closed tab held, as browsers do.
 */
export interface FakeLockWorld {
  /** The LockManager one tab sees. */
  tab(id: string): Pick<LockManager, "request">;
  /** Releases the tab's locks and drops its pending requests, like closing it. */
  closeTab(id: string): void;
  /** Which tab holds `name` now. */
  holder(name: string): string | undefined;
  /** The tabs waiting for `name`, first in line first. */
  waiting(name: string): string[];
}

interface Pending {
  tab: string;
  grant: () => void;
}

interface Held {
  tab: string;
  release: () => void;
}

export function createFakeLockWorld(): FakeLockWorld {
  const held = new Map<string, Held>();
  const queues = new Map<string, Pending[]>();

  function next(name: string): void {
    if (held.has(name)) return;
    const pending = queues.get(name)?.shift();
    pending?.grant();
  }

  return {
    tab(id) {
      const request = (
        name: string,
        optionsOrCallback: LockOptions | LockGrantedCallback<unknown>,
        maybeCallback?: LockGrantedCallback<unknown>,
      ): Promise<unknown> => {
        const options = typeof optionsOrCallback === "function" ? {} : optionsOrCallback;
        const callback = (
          typeof optionsOrCallback === "function" ? optionsOrCallback : maybeCallback
        ) as LockGrantedCallback<unknown>;
        return new Promise((resolve, reject) => {
          const run = () => {
            let released = false;
            const release = () => {
              if (released) return;
              released = true;
              if (held.get(name)?.release === release) held.delete(name);
              next(name);
            };
            held.set(name, { tab: id, release });
            Promise.resolve()
              .then(() => callback({ name, mode: "exclusive" } as Lock))
              .then(
                (value) => {
                  release();
                  resolve(value);
                },
                (error: unknown) => {
                  release();
                  reject(error);
                },
              );
          };
          if (options.steal) {
            held.get(name)?.release();
            held.delete(name);
            run();
            return;
          }
          if (options.signal?.aborted) {
            reject(new DOMException("aborted", "AbortError"));
            return;
          }
          const pending: Pending = { tab: id, grant: run };
          options.signal?.addEventListener("abort", () => {
            const queue = queues.get(name) ?? [];
            const index = queue.indexOf(pending);
            if (index < 0) return;
            queue.splice(index, 1);
            reject(new DOMException("aborted", "AbortError"));
          });
          queues.set(name, [...(queues.get(name) ?? []), pending]);
          next(name);
        });
      };
      return { request } as Pick<LockManager, "request">;
    },
    closeTab(id) {
      for (const [name, queue] of queues) {
        queues.set(
          name,
          queue.filter((p) => p.tab !== id),
        );
      }
      for (const lock of [...held.values()]) if (lock.tab === id) lock.release();
    },
    holder: (name) => held.get(name)?.tab,
    waiting: (name) => (queues.get(name) ?? []).map((p) => p.tab),
  };
}
