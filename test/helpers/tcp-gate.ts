import { type AddressInfo, connect, createServer, type Socket } from "node:net";

/**
 * A TCP relay in front of an HTTP server that can refuse connections (nothing
 * listens on its port) and open again on the same port, so one token source
 * can see "connection refused" and then the endpoint recover.
 */
export interface TcpGate {
  /** `target` with the gate's port instead of the target's. */
  url: string;
  /** Connections relayed so far. */
  connections: number;
  /** Stops listening and drops relayed connections: new ones are refused. */
  refuse(): Promise<void>;
  /** Listens again on the same port. */
  open(): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpGate(target: string): Promise<TcpGate> {
  const targetUrl = new URL(target);
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    gate.connections++;
    const upstream = connect(Number(targetUrl.port), targetUrl.hostname);
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      sockets.add(from);
      from.on("error", () => to.destroy());
      from.on("close", () => {
        sockets.delete(from);
        to.destroy();
      });
      from.pipe(to);
    }
  });
  let listening = false;
  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => {
        server.off("error", reject);
        listening = true;
        resolve();
      });
    });
  const stop = () =>
    new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      if (!listening) return resolve();
      listening = false;
      server.close(() => resolve());
    });
  await listen(0);
  const port = (server.address() as AddressInfo).port;
  const url = new URL(target);
  url.port = String(port);
  const gate: TcpGate = {
    url: url.href,
    connections: 0,
    refuse: stop,
    open: () => (listening ? Promise.resolve() : listen(port)),
    close: stop,
  };
  return gate;
}
