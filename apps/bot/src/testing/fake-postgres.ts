import net from "node:net";

/**
 * Test support: a TCP server on 127.0.0.1 that speaks just enough of the
 * PostgreSQL protocol to refuse a login the way a server with password
 * authentication does: it asks for the password (cleartext, so the test can
 * see exactly what the client sent), then answers with the server's error
 * 28P01 "password authentication failed for user …" and closes.
 *
 * The local test server trusts every connection from 127.0.0.1, so it accepts
 * any password; this stands in for a server that checks them.
 */
export class PasswordRejectingServer {
  private readonly server = net.createServer((socket) => this.handle(socket));
  /** Logins seen: the startup parameters and the password each client sent. */
  readonly logins: { user: string | undefined; database: string | undefined; password: string }[] = [];
  port = 0;

  async start(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    const address = this.server.address();
    this.port = typeof address === "object" && address ? address.port : 0;
    return this.port;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(socket: net.Socket): void {
    let buffer = Buffer.alloc(0);
    let startup: Record<string, string> | undefined;
    socket.on("error", () => socket.destroy());
    socket.on("data", (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        if (startup === undefined) {
          // Startup (or SSL request): Int32 length, Int32 code, then parameters.
          if (buffer.length < 8) return;
          const length = buffer.readInt32BE(0);
          if (buffer.length < length) return;
          const code = buffer.readInt32BE(4);
          const body = buffer.subarray(8, length);
          buffer = buffer.subarray(length);
          if (code === 80877103) {
            socket.write("N"); // no TLS here; the client goes on in plain text
            continue;
          }
          startup = parameters(body);
          socket.write(message("R", int32(3))); // AuthenticationCleartextPassword
          continue;
        }
        // Regular message: Byte1 type, Int32 length (including itself), body.
        if (buffer.length < 5) return;
        const length = buffer.readInt32BE(1);
        if (buffer.length < 1 + length) return;
        const type = String.fromCharCode(buffer[0] ?? 0);
        const body = buffer.subarray(5, 1 + length);
        buffer = buffer.subarray(1 + length);
        if (type !== "p") continue;
        const password = body.subarray(0, body.indexOf(0)).toString("utf8");
        this.logins.push({ user: startup.user, database: startup.database, password });
        const fields = [
          ["S", "FATAL"],
          ["V", "FATAL"],
          ["C", "28P01"],
          ["M", `password authentication failed for user "${startup.user ?? ""}"`],
        ];
        socket.end(message("E", Buffer.concat([...fields.map(([key, value]) => Buffer.from(`${key}${value}\0`, "utf8")), Buffer.from([0])])));
        return;
      }
    });
  }
}

function int32(value: number): Buffer {
  const buffer = Buffer.alloc(4);
  buffer.writeInt32BE(value);
  return buffer;
}

function message(type: string, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from(type, "latin1"), int32(body.length + 4), body]);
}

function parameters(body: Buffer): Record<string, string> {
  const parts = body.toString("utf8").split("\0");
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < parts.length && parts[i] !== ""; i += 2) out[parts[i] as string] = parts[i + 1] ?? "";
  return out;
}
