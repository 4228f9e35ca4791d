import type pg from "pg";
import { runCopyScript } from "./copy-script";
import { openTestDatabase } from "./testing";

/** COPY's text format: one line per row, columns separated by tabs. */
function textRows(from: number, count: number): Buffer {
  let text = "";
  for (let n = from; n < from + count; n += 1) text += `${n}\trow ${n}\n`;
  return Buffer.from(text);
}

const SCRIPT = [
  "CREATE TEMP TABLE IF NOT EXISTS staged (n int8, label text) ON COMMIT DELETE ROWS",
  "COPY staged (n, label) FROM STDIN",
  "INSERT INTO kept (n, label, written_at) SELECT n, label, clock_timestamp() FROM staged",
].join(";\n");

describe("runCopyScript on the server engine", () => {
  let db: Awaited<ReturnType<typeof openTestDatabase>>;
  let client: pg.PoolClient;
  beforeAll(async () => {
    db = await openTestDatabase("server");
    await db.sql.exec("CREATE TABLE kept (n int8 PRIMARY KEY, label text NOT NULL CHECK (label <> 'forbidden'), written_at timestamptz NOT NULL)");
  });
  beforeEach(async () => {
    await db.sql.exec("TRUNCATE kept");
    client = await (db.pool as pg.Pool).connect();
  });
  afterEach(() => client.release());
  afterAll(async () => {
    await db.close();
  });

  async function keptCount(): Promise<number> {
    return Number((await db.sql.query<{ n: string }>("SELECT count(*) AS n FROM kept")).rows[0]?.n);
  }

  it("runs the statements around the COPY and returns each one's command tag", async () => {
    const tags = await runCopyScript(client, SCRIPT, [textRows(0, 3), textRows(3, 2)]);
    expect(tags).toEqual(["CREATE TABLE", "COPY 5", "INSERT 0 5"]);
    expect(await keptCount()).toBe(5);
  });

  it("leaves no timer behind: the client-side bound of a finished or failed script is cleared", async () => {
    const timers = () => process.getActiveResourcesInfo().filter((kind) => kind === "Timeout").length;
    const before = timers();
    await runCopyScript(client, SCRIPT, [textRows(0, 3)], { queryTimeoutMs: 60_000 });
    await expect(runCopyScript(client, SCRIPT.replace("kept", "missing_table"), [textRows(3, 1)], { queryTimeoutMs: 60_000 })).rejects.toThrow(/missing_table/);
    expect(timers()).toBe(before);
  });

  it("sends data larger than the socket takes at once, chunk after chunk, all of it", async () => {
    const chunks = Array.from({ length: 100 }, (_, i) => textRows(i * 5000, 5000)); // ~6 MB
    const tags = await runCopyScript(client, SCRIPT, chunks);
    expect(tags.slice(1)).toEqual(["COPY 500000", "INSERT 0 500000"]);
    expect(await keptCount()).toBe(500_000);
  });

  it("runs the whole script on the server while this process's event loop is busy", async () => {
    const written = runCopyScript(client, SCRIPT, [textRows(0, 10)]);
    const busyUntil = Date.now() + 500;
    while (Date.now() < busyUntil) {
      // a tick deciding for hundreds of coins: no I/O callback runs meanwhile
    }
    await written;
    const result = await db.sql.query<{ last: Date }>("SELECT max(written_at) AS last FROM kept");
    expect(result.rows[0]?.last.getTime()).toBeLessThan(busyUntil);
  });

  it.each([
    ["before the COPY", "SELECT no_such_function();\n", "", /no_such_function/],
    ["in the COPY's data", "", "not-a-number\tx\n", /invalid input syntax for type bigint/],
    ["after the COPY", "", "99\tforbidden\n", /violates check constraint/],
  ])("fails as a whole on an error %s: nothing is kept and the connection is usable", async (_where, prefix, badRow, message) => {
    await expect(runCopyScript(client, prefix + SCRIPT, [textRows(0, 3), Buffer.from(badRow)])).rejects.toThrow(message);
    expect(await keptCount()).toBe(0);
    await expect(runCopyScript(client, SCRIPT, [textRows(0, 2)])).resolves.toEqual(["CREATE TABLE", "COPY 2", "INSERT 0 2"]);
    expect(await keptCount()).toBe(2);
  });
});
