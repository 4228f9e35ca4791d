import http from "node:http";
import net from "node:net";

/**
 * Test support: HTTP clients that misbehave on purpose (idle sockets, headers
 * that never end) and a GET that sends exactly the headers given (fetch sets
 * Host itself). Not used by production code.
 */

/** Opens `count` sockets to 127.0.0.1:`port` that send nothing; resolves once each is connected or already closed. */
export async function idleSockets(port: number, count: number): Promise<net.Socket[]> {
  const sockets = Array.from({ length: count }, () => net.connect(port, "127.0.0.1"));
  await Promise.all(
    sockets.map(
      (socket) =>
        new Promise<void>((resolve) => {
          socket.once("connect", () => resolve());
          socket.once("close", () => resolve());
          socket.on("error", () => undefined);
          // Reading (and dropping) what the server sends is how a client sees the server close the connection.
          socket.resume();
        }),
    ),
  );
  return sockets;
}

/** Sockets of `sockets` the server has not closed. */
export function stillOpen(sockets: readonly net.Socket[]): net.Socket[] {
  return sockets.filter((s) => !s.destroyed && !s.readableEnded);
}

/**
 * A slow-loris client: starts a request and sends one more header line every
 * `everyMs`, never the blank line that ends them. Resolves when the server
 * closes the connection, with how long it was open and what the server said.
 */
export function slowHeaders(port: number, everyMs: number): Promise<{ openMs: number; received: string }> {
  return new Promise((resolve) => {
    const started = Date.now();
    let received = "";
    const socket = net.connect(port, "127.0.0.1", () => socket.write(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n`));
    const drip = setInterval(() => {
      if (socket.writable) socket.write(`X-Slow-${Date.now()}: 1\r\n`);
    }, everyMs);
    socket.on("data", (chunk: Buffer) => (received += chunk.toString()));
    socket.on("error", () => undefined);
    socket.on("close", () => {
      clearInterval(drip);
      resolve({ openMs: Date.now() - started, received });
    });
  });
}

/** A GET to 127.0.0.1:`port` with exactly `headers` (Host included): status and body. */
export function rawGet(port: number, path: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.get({ host: "127.0.0.1", port, path, headers, setHost: false, agent: false }, (response) => {
      let body = "";
      response.on("data", (chunk: Buffer) => (body += chunk.toString()));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
    });
    request.on("error", reject);
  });
}
