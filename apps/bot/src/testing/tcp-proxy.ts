import net from "node:net";

/**
 * A TCP proxy on 127.0.0.1 for outage tests: the bot connects through it to
 * PostgreSQL, and the test cuts it (every open connection reset, new ones
 * refused) and restores it, as a network partition or server restart would.
 */
export class TcpProxy {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private up = true;
  port = 0;

  constructor(
    private readonly target: { host: string; port: number },
  ) {}

  async start(port = 0): Promise<number> {
    const server = net.createServer((client) => {
      if (!this.up) {
        client.resetAndDestroy();
        return;
      }
      const upstream = net.connect(this.target.port, this.target.host);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on("close", () => this.sockets.delete(socket));
        socket.on("error", () => socket.destroy());
      }
      client.pipe(upstream);
      upstream.pipe(client);
      client.on("close", () => upstream.destroy());
      upstream.on("close", () => client.destroy());
    });
    this.server = server;
    await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
    const address = server.address();
    this.port = typeof address === "object" && address ? address.port : port;
    return this.port;
  }

  /** Resets every open connection and refuses new ones until `restore()`. */
  cut(): void {
    this.up = false;
    for (const socket of this.sockets) socket.resetAndDestroy();
    this.sockets.clear();
  }

  restore(): void {
    this.up = true;
  }

  async stop(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
