import net from "node:net";

/** One proxied connection: the side that connected to the proxy, and the proxy's own connection to the target. */
interface Link {
  client: net.Socket;
  upstream: net.Socket | undefined;
  /** Carries nothing any more, and passes no close on (see TcpProxy.blackhole). */
  silent: boolean;
}

/** What happens to a connection made to the proxy. */
type Mode = "forward" | "refuse" | "silent";

/**
 * Test support: a TCP proxy on 127.0.0.1 between a client and PostgreSQL, for
 * network faults. `cut()` resets every open connection and refuses new ones (a
 * partition that the client hears about, a server restart); `blackhole()`
 * silences them without a word (a NAT entry or a host that vanished, a
 * failed-over managed database): nothing sent either way arrives, no reset, no
 * close. Not used by production code.
 */
export class TcpProxy {
  private server: net.Server | undefined;
  private readonly links = new Set<Link>();
  private mode: Mode = "forward";
  port = 0;

  constructor(private readonly target: { host: string; port: number }) {}

  async start(port = 0): Promise<number> {
    // Half-open allowed: a goodbye (FIN) is passed on by the pipes while a link forwards, and not answered by the proxy itself once it is silent.
    const server = net.createServer({ allowHalfOpen: true }, (client) => this.accept(client));
    this.server = server;
    await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
    const address = server.address();
    this.port = typeof address === "object" && address ? address.port : port;
    return this.port;
  }

  private accept(client: net.Socket): void {
    if (this.mode === "refuse") {
      client.resetAndDestroy();
      return;
    }
    const link: Link = { client, upstream: undefined, silent: false };
    this.links.add(link);
    client.on("close", () => this.links.delete(link));
    client.on("error", () => client.destroy());
    if (this.mode === "silent") {
      this.silence(link);
      return;
    }
    const upstream = net.connect({ port: this.target.port, host: this.target.host, allowHalfOpen: true });
    link.upstream = upstream;
    upstream.on("error", () => upstream.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
    // A close on one side reaches the other, unless the link went silent: a vanished path carries no FIN or RST either.
    client.on("close", () => {
      if (!link.silent) upstream.destroy();
    });
    upstream.on("close", () => {
      if (!link.silent) client.destroy();
    });
  }

  /** Bytes from either side are read and dropped; the sockets stay open. */
  private silence(link: Link): void {
    link.silent = true;
    for (const [from, to] of [
      [link.client, link.upstream],
      [link.upstream, link.client],
    ] as const) {
      if (!from) continue;
      if (to) from.unpipe(to);
      from.on("data", () => undefined);
      from.resume();
    }
  }

  /** Resets every open connection and refuses new ones until `restore()`. */
  cut(): void {
    this.mode = "refuse";
    for (const link of this.links) {
      link.client.resetAndDestroy();
      link.upstream?.resetAndDestroy();
    }
    this.links.clear();
  }

  /**
   * Every open connection stops carrying bytes, both ways, with no reset and no
   * close passed on: each side's sockets stay open and what they send is
   * dropped, as when a NAT entry or a host vanishes. Connections made later are
   * forwarded (a new path through the network works), or with
   * `newConnections: "silent"` accepted and silenced too (the host is gone).
   * Silenced connections stay silent after `restore()`.
   */
  blackhole(options: { newConnections?: "forward" | "silent" } = {}): void {
    this.mode = options.newConnections ?? "forward";
    for (const link of this.links) if (!link.silent) this.silence(link);
  }

  /** New connections are forwarded again. */
  restore(): void {
    this.mode = "forward";
  }

  async stop(): Promise<void> {
    this.mode = "refuse";
    for (const link of this.links) {
      link.client.destroy();
      link.upstream?.destroy();
    }
    this.links.clear();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
