import type { Database } from "./connect";
import { openTestDatabase } from "./testing";

/**
 * Keeps the schema distributable (docs/scaling.md). A table spread over several
 * nodes by a column (Citus: the distribution column) or split by a column into
 * partitions (PostgreSQL's partitioning, a TimescaleDB hypertable: the time
 * column) can enforce a unique key only when every unique key contains that
 * column: each node or partition checks its own rows. Read from the migrated
 * database's catalogue (pg_index), so every migration is held to it.
 *
 * - candles, candle_gaps, series_audit, decision_traces: by `symbol` (Citus),
 *   every query of the bot names a coin; candles and decision_traces also hold
 *   their time in their keys, so time partitions or a hypertable work as well
 *   (decision traces are the fastest-growing rows: retention by partition).
 * - system_events, orders, trades, positions, account_state stay whole: they grow
 *   with trades and starts (bounded by the account's cash), not with coins.
 */

interface UniqueKey {
  name: string;
  primary: boolean;
  /** Key columns in order ("(expression)" for an expression); INCLUDE columns are not part of the key. */
  columns: string[];
}

async function uniqueKeys(db: Pick<Database, "sql">, table: string): Promise<UniqueKey[]> {
  const result = await db.sql.query<UniqueKey>(
    `SELECT c.relname AS name, i.indisprimary AS primary,
            array(SELECT coalesce(a.attname::text, '(expression)')
                  FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, position)
                  LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum AND k.attnum > 0
                  WHERE k.position <= i.indnkeyatts
                  ORDER BY k.position) AS columns
     FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
     WHERE i.indrelid = to_regclass($1) AND i.indisunique
     ORDER BY c.relname`,
    [table],
  );
  return result.rows;
}

/** One line per unique key of `table` that lacks `column`, naming the table, the key and its columns. */
async function keysWithout(db: Pick<Database, "sql">, table: string, column: string): Promise<string[]> {
  const keys = await uniqueKeys(db, table);
  if (keys.length === 0) throw new Error(`${table} has no unique key (is it still there?)`);
  return keys.filter((key) => !key.columns.includes(column)).map((key) => `${table}: ${key.primary ? "primary key" : "unique key"} ${key.name} (${key.columns.join(", ")}) lacks ${column}`);
}

describe("the large tables stay distributable: every unique key holds the distribution column", () => {
  let db: Awaited<ReturnType<typeof openTestDatabase>>;

  beforeAll(async () => {
    db = await openTestDatabase("server");
  });
  afterAll(async () => {
    await db.close();
  });

  it.each([
    ["candles", "symbol"],
    ["candles", "open_time"],
    ["candle_gaps", "symbol"],
    ["series_audit", "symbol"],
    ["decision_traces", "symbol"],
    ["decision_traces", "time"],
  ])("%s: every unique key holds %s", async (table, column) => {
    expect(await keysWithout(db, table, column)).toEqual([]);
  });

  it("the large tables are the ones that grow with coins and time: system_events holds no decision trace, only the audit trail", async () => {
    // What the migration moved: a database migrated with traces in system_events keeps none there.
    const traces = await db.sql.query<{ n: string | number }>("SELECT count(*) AS n FROM system_events WHERE type = 'DECISION_TRACE'");
    expect(Number(traces.rows[0]?.n)).toBe(0);
    expect((await uniqueKeys(db, "decision_traces")).map((key) => `${key.name} (${key.columns.join(", ")})`)).toEqual(["decision_traces_pkey (exchange, symbol, time)"]);
  });

  it("names a key that breaks the rule, expression and INCLUDE columns as such", async () => {
    await db.sql.exec(`CREATE TABLE distribution_probe (id bigint PRIMARY KEY, symbol text, day date, note text);
      CREATE UNIQUE INDEX distribution_probe_lower_key ON distribution_probe (lower(symbol), day);
      CREATE UNIQUE INDEX distribution_probe_day_key ON distribution_probe (day) INCLUDE (symbol);
      CREATE UNIQUE INDEX distribution_probe_symbol_key ON distribution_probe (symbol, day)`);
    expect(await keysWithout(db, "distribution_probe", "symbol")).toEqual([
      "distribution_probe: unique key distribution_probe_day_key (day) lacks symbol",
      "distribution_probe: unique key distribution_probe_lower_key ((expression), day) lacks symbol",
      "distribution_probe: primary key distribution_probe_pkey (id) lacks symbol",
    ]);
    await expect(keysWithout(db, "no_such_table", "symbol")).rejects.toThrow("no_such_table has no unique key (is it still there?)");
  });
});
