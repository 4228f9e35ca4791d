import type pg from "pg";

/**
 * Runs `script`, statements separated by semicolons of which exactly one is a
 * `COPY … FROM STDIN`, as one simple-protocol Query, and sends the COPY's
 * `data` right behind it without waiting for the server to ask. Resolves with
 * the command tag of every statement, in order (e.g. "INSERT 0 2500").
 *
 * Why one message: run statement by statement, each round trip of a write
 * waits for this process's event loop to send the next one, and during a tick
 * that loop is busy deciding for hundreds of coins (the upsert began tens of
 * milliseconds after its write started). Here the server runs the whole script as
 * soon as it has the data. A multi-statement Query is one implicit transaction:
 * all of it commits or none, and a failure leaves the connection idle.
 *
 * Memory stays bounded: the next chunk is made only once the socket has taken
 * the previous one. Should the server fail before or during the COPY, it
 * ignores the rest of the data (the protocol's rule outside copy mode).
 */
export function runCopyScript(client: pg.ClientBase, script: string, data: Iterable<Buffer>, options: CopyScriptOptions = {}): Promise<string[]> {
  return new Promise((resolve, reject) => {
    client.query(new CopyScript(script, data, resolve, reject, options.queryTimeoutMs));
  });
}

export interface CopyScriptOptions {
  /** How long the script may go without its answer, in ms, instead of the pool's bound (see DEFAULT_QUERY_TIMEOUT_MS). */
  queryTimeoutMs?: number;
}

/**
 * runCopyScript on a connection of `pool`. After a failure the connection is
 * dropped, not pooled: whatever broke it (a lost socket, a cancelled
 * statement) goes with it. A connection lost mid-write fails the running
 * script; the pool's own listener (openServer) keeps its 'error' event from
 * crashing the process.
 */
export async function runCopyScriptOnPool(pool: pg.Pool, script: string, data: Iterable<Buffer>, options: CopyScriptOptions = {}): Promise<string[]> {
  const client = await pool.connect();
  let failure: Error | undefined;
  try {
    return await runCopyScript(client, script, data, options);
  } catch (error) {
    failure = error instanceof Error ? error : new Error(String(error));
    throw error;
  } finally {
    client.release(failure);
  }
}

/** The row count of an INSERT's command tag ("INSERT 0 2500"). */
export function insertedRows(tag: string | undefined): number {
  const match = /^INSERT \d+ (\d+)$/.exec(tag ?? "");
  if (!match) throw new Error(`expected an INSERT command tag, got ${JSON.stringify(tag)}`);
  return Number(match[1]);
}

/** Protocol message type bytes (see "Message Formats" in PostgreSQL's docs). */
const COPY_DATA = 0x64; // 'd'
const COPY_DONE = Buffer.from([0x63, 0, 0, 0, 4]); // 'c', length 4

/** The pg client's side of one Query: pg calls the handle* methods as the server's messages arrive. */
class CopyScript implements pg.Submittable {
  private readonly tags: string[] = [];
  private failed = false;

  constructor(
    private readonly text: string,
    private readonly data: Iterable<Buffer>,
    private readonly resolve: (tags: string[]) => void,
    private readonly reject: (error: Error) => void,
    /** Read by pg as this query's own bound (its client-side query_timeout); undefined: the pool's. */
    readonly query_timeout: number | undefined,
  ) {}

  submit(connection: pg.Connection): void {
    connection.query(this.text);
    this.send(connection.stream, this.data[Symbol.iterator]());
  }

  /** Sends chunks until the socket wants a pause (resumed on 'drain'), the data ends, or the script failed. */
  private send(stream: pg.Connection["stream"], chunks: Iterator<Buffer>): void {
    while (!this.failed) {
      const next = chunks.next();
      if (next.done) {
        stream.write(COPY_DONE);
        return;
      }
      const header = Buffer.alloc(5);
      header[0] = COPY_DATA;
      header.writeUInt32BE(next.value.length + 4, 1);
      stream.write(header);
      if (!stream.write(next.value)) {
        stream.once("drain", () => this.send(stream, chunks));
        return;
      }
    }
  }

  // pg wraps this when a query_timeout applies: calling it when the script ends is what clears
  // pg's timer (left running, it kept the process alive and fired on a finished script).
  callback(): void {}

  handleCommandComplete(message: { text: string }): void {
    this.tags.push(message.text);
  }

  handleReadyForQuery(): void {
    this.callback();
    if (!this.failed) this.resolve(this.tags);
  }

  handleError(error: Error): void {
    this.callback();
    this.failed = true;
    this.reject(error);
  }

  // Nothing to do: the data is on its way already, and the script returns no rows.
  handleCopyInResponse(): void {}
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
}
