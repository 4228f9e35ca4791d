import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { captureLogger } from "@candlekeep/db/testing";
import type { FastifyInstance } from "fastify";
import { HTTP_TIMEOUTS, RESERVED_DESCRIPTORS, connectionCap, createHttpServer, descriptorLimit } from "./http-server";

/** Opens `count` sockets that send nothing; resolves once each is connected or already closed. */
async function idleSockets(port: number, count: number): Promise<net.Socket[]> {
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

describe("the HTTP server's limits", () => {
  it("caps connections below the descriptor limit, leaving room for the database pool", () => {
    expect(RESERVED_DESCRIPTORS).toBe(128);
    // ulimit -n 1024, the bot's pool of 30: 1024 − 128 − 30 leaves plenty; the cap is 256.
    expect(connectionCap(1024, 30)).toBe(256);
    expect(connectionCap(Number.POSITIVE_INFINITY, 30)).toBe(256);
    // A tight limit: 256 − 128 − 30.
    expect(connectionCap(256, 30)).toBe(98);
    expect(connectionCap(100, 30)).toBe(16);
    // Node's keep-alive and header timeouts: a client must finish its headers within 10 s.
    expect(HTTP_TIMEOUTS.headersMs).toBe(10_000);
    expect(HTTP_TIMEOUTS.requestMs).toBeGreaterThanOrEqual(HTTP_TIMEOUTS.headersMs);
  });

  it("reads the open-file limit from /proc/self/limits, 1024 when it cannot", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "limits-"));
    const file = path.join(dir, "limits");
    fs.writeFileSync(file, "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 4096                 files\n");
    expect(descriptorLimit(file)).toBe(1024);
    fs.writeFileSync(file, "Max open files            unlimited            unlimited            files\n");
    expect(descriptorLimit(file)).toBe(Number.POSITIVE_INFINITY);
    expect(descriptorLimit(path.join(dir, "missing"))).toBe(1024);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  describe("with 40 descriptors' worth of connections (cap 16)", () => {
    let app: FastifyInstance;
    let port: number;
    const logger = captureLogger();
    beforeAll(async () => {
      // 128 reserved + a pool of 1 + 16 for HTTP.
      app = createHttpServer({ poolMax: 1, logger, descriptorLimit: 145 });
      app.get("/healthz", async () => ({ status: "ok" }));
      await app.listen({ host: "127.0.0.1", port: 0 });
      const address = app.server.address();
      port = typeof address === "object" && address ? address.port : 0;
    });
    afterAll(async () => {
      await app.close();
    });

    it("closes the oldest idle connections so that a new client still gets an answer", async () => {
      const sockets = await idleSockets(port, 40);
      const started = Date.now();
      const response = await fetch(`http://127.0.0.1:${port}/healthz`);
      expect(response.status).toBe(200);
      expect(Date.now() - started).toBeLessThan(2000);
      // The oldest are closed, the newest kept: never more than the cap less its free slots (16 − 4) open.
      await new Promise((resolve) => setTimeout(resolve, 100));
      const open = sockets.filter((s) => !s.destroyed && !s.readableEnded);
      expect(open.length).toBeGreaterThan(0);
      expect(open.length).toBeLessThanOrEqual(12);
      expect(app.server.maxConnections).toBe(16);
      expect(logger.lines.filter((l) => l.message.startsWith("too many HTTP connections"))).toHaveLength(1);
      for (const socket of sockets) socket.destroy();
    });
  });
});
