import type { Database } from "./connect";
import type { SqlRunner } from "./sql";
import { databaseGrowth, MIN_GROWTH_SPAN_MS, SCHEMA_TABLES, tableGrowth, type Growth, type TableGrowth } from "./table-growth";
import { DATABASE_KINDS, growthSeedSql, openTestDatabase, SEEDED_GROWTH } from "./testing";

const NOW = Date.UTC(2026, 11, 5, 12, 0);
const DAY_MS = 24 * 60 * 60 * 1000;

function measured(table: TableGrowth | undefined): Extract<Growth, { kind: "measured" }> {
  if (table?.growth.kind !== "measured") throw new Error(`${table?.table ?? "table"} growth not measured: ${JSON.stringify(table?.growth)}`);
  return table.growth;
}

describe.each(DATABASE_KINDS)("table growth on the %s engine", (kind) => {
  let db: Awaited<ReturnType<typeof openTestDatabase>>;
  const table = (growth: { tables: TableGrowth[] }, name: string) => growth.tables.find((t) => t.table === name);

  beforeAll(async () => {
    db = await openTestDatabase(kind);
    await db.sql.exec(growthSeedSql(NOW));
  });
  afterAll(async () => {
    await db?.close();
  });

  it("gives each table's size, rows and growth per day from the rows' timestamps", async () => {
    const growth = await databaseGrowth(db, { nowMs: NOW });
    expect(growth.tables.map((t) => t.table)).toEqual(SCHEMA_TABLES.map((t) => t.table));
    for (const [name, seeded] of Object.entries(SEEDED_GROWTH)) {
      const t = table(growth, name);
      expect({ name, rows: t?.rows, source: t?.rowsSource }).toEqual({ name, rows: seeded.rows, source: "counted" });
      const g = measured(t);
      expect(g.windowDays).toBeCloseTo(seeded.windowDays, 9);
      expect(g.rowsPerDay).toBeCloseTo(seeded.rowsPerDay, 9);
      // Each new row costs what an average row of the table takes on disk, its index entries and TOAST included.
      expect(g.bytesPerDay).toBeCloseTo((seeded.rowsPerDay * (t?.bytes ?? 0)) / seeded.rows, 6);
    }
    // The time index each was counted through: after the fewest leading columns (system_events: its type, not its nullable symbol).
    expect(measured(table(growth, "candles")).index).toBe("candles_pkey");
    expect(measured(table(growth, "decision_traces")).index).toBe("decision_traces_pkey");
    expect(measured(table(growth, "system_events")).index).toBe("system_events_type_time_idx");
    expect(measured(table(growth, "account_state")).index).toBe("account_state_exchange_currency_time_idx");
    // No index holds found_at: the table is small enough to read whole.
    expect(measured(table(growth, "candle_gaps")).index).toBeUndefined();
    // The snapshots began 3 days ago: averaged over those 3 days, not diluted over 7.
    expect(measured(table(growth, "account_state")).since).toEqual(new Date(NOW - 3 * DAY_MS));
    expect(measured(table(growth, "system_events")).since).toEqual(new Date(NOW - 7 * DAY_MS));

    expect(table(growth, "trades")).toMatchObject({ rows: 0, rowsSource: "counted", growth: { kind: "measured", since: null, rows: 0, rowsPerDay: 0, bytesPerDay: 0 } });
    expect(table(growth, "positions")?.growth).toEqual({ kind: "bounded", reason: "one row per open position" });
    expect(table(growth, "series_audit")?.growth).toEqual({ kind: "bounded", reason: "one row per series" });

    const tableBytes = growth.tables.reduce((sum, t) => sum + t.bytes, 0);
    expect(growth.databaseBytes).toBeGreaterThan(tableBytes);
    expect(tableBytes).toBeGreaterThan(3 * 1024 * 1024);
    expect(growth.bytesPerDay).toBeCloseTo(growth.tables.reduce((sum, t) => sum + (t.growth.kind === "measured" ? t.growth.bytesPerDay : 0), 0), 6);
  });

  it("averages over a shorter window when asked, and leaves out rows younger than an hour", async () => {
    const traces = await tableGrowth(db, { table: "decision_traces", timeColumn: "time" }, { nowMs: NOW, windowDays: 1 });
    expect(measured(traces)).toMatchObject({ windowDays: 1, rows: 1_000, rowsPerDay: 1_000 });

    await db.sql.query("INSERT INTO trades (exchange, symbol, side, quantity, entry_price, exit_price, entry_time, exit_time, realized_pnl, exit_reason, entry_order_id, exit_order_id) VALUES ('sim', 'GROW/USDT', 'LONG', 1, 100, 101, $1, $2, 1, 'TAKE_PROFIT', 'e1', 'x1')", [
      new Date(NOW - 30 * 60_000),
      new Date(NOW - 20 * 60_000),
    ]);
    try {
      const young = await tableGrowth(db, { table: "trades", timeColumn: "exit_time" }, { nowMs: NOW });
      expect(young.growth).toEqual({ kind: "unmeasured", reason: "its rows span 20 minutes: growth is measured once they span an hour" });
      const hourLater = await tableGrowth(db, { table: "trades", timeColumn: "exit_time" }, { nowMs: NOW - 20 * 60_000 + MIN_GROWTH_SPAN_MS });
      expect(measured(hourLater)).toMatchObject({ rows: 1, rowsPerDay: 24, index: "trades_exchange_exit_time_idx" });
    } finally {
      await db.sql.exec("TRUNCATE trades");
    }
  });

  it("estimates the rows of a table past the exact-count size: from a page sample without statistics, from the statistics once analysed", async () => {
    const sampled = await tableGrowth(db, { table: "decision_traces", timeColumn: "time" }, { nowMs: NOW, exactCountMaxBytes: 0 });
    expect(sampled.rowsSource).toBe("sample");
    expect(sampled.rows).toBeGreaterThan(30_000 * 0.85);
    expect(sampled.rows).toBeLessThan(30_000 * 1.15);
    // Growth still comes from the rows counted through the index, whatever the estimate of the whole.
    expect(measured(sampled).rowsPerDay).toBeCloseTo(1_000, 9);

    await db.sql.exec("ANALYZE decision_traces");
    const analysed = await tableGrowth(db, { table: "decision_traces", timeColumn: "time" }, { nowMs: NOW, exactCountMaxBytes: 0 });
    expect(analysed.rowsSource).toBe("statistics");
    expect(analysed.rows).toBeGreaterThan(30_000 * 0.98);
    expect(analysed.rows).toBeLessThan(30_000 * 1.02);
  });

  it("adds up the partitions of a partitioned table, counting its recent rows through the partitioned index", async () => {
    await db.sql.exec(`CREATE TABLE events_by_week (time timestamptz NOT NULL, kind text NOT NULL, payload text) PARTITION BY RANGE (time);
CREATE TABLE events_by_week_old PARTITION OF events_by_week FOR VALUES FROM ('2026-01-01') TO ('2026-11-28');
CREATE TABLE events_by_week_new PARTITION OF events_by_week FOR VALUES FROM ('2026-11-28') TO ('2027-01-01');
CREATE INDEX events_by_week_kind_time_idx ON events_by_week (kind, time);
INSERT INTO events_by_week SELECT timestamptz '${new Date(NOW).toISOString()}' - (i + 1) * interval '1 hour', 'TRACE', repeat('x', 100) FROM generate_series(0, 499) AS i`);
    try {
      const growth = await tableGrowth(db, { table: "events_by_week", timeColumn: "time" }, { nowMs: NOW });
      const partitions = await db.sql.query<{ bytes: number }>("SELECT (pg_total_relation_size('events_by_week_old') + pg_total_relation_size('events_by_week_new'))::float8 AS bytes");
      expect(growth).toMatchObject({ bytes: partitions.rows[0]?.bytes, rows: 500, rowsSource: "counted" });
      expect(growth.bytes).toBeGreaterThan(0);
      expect(measured(growth)).toMatchObject({ index: "events_by_week_kind_time_idx", rows: 168, rowsPerDay: 24 });
    } finally {
      await db.sql.exec("DROP TABLE events_by_week");
    }
  });

  it("does not guess at a big table without an index on its time column", async () => {
    const gaps = await tableGrowth(db, { table: "candle_gaps", timeColumn: "found_at" }, { nowMs: NOW, exactCountMaxBytes: 0 });
    expect(gaps.growth).toEqual({ kind: "unmeasured", reason: "no index holds found_at to count the recent rows by, and the table is too big to read whole on every run" });
  });
});

describe("table growth's cost", () => {
  let db: Awaited<ReturnType<typeof openTestDatabase>>;

  beforeAll(async () => {
    db = await openTestDatabase("server");
    await db.sql.exec(growthSeedSql(NOW));
    // Three older months of rows (40 to 150 days back) that a growth reading must not visit.
    for (const daysAgo of [40, 80, 120]) await db.sql.exec(growthSeedSql(NOW - daysAgo * DAY_MS));
    await db.sql.exec("ANALYZE");
  });
  afterAll(async () => {
    await db?.close();
  });

  /** Rows and index entries of `table` that `read` returned, summed over its queries (each in a transaction of its own). */
  async function entriesRead(table: string, read: (watched: Pick<Database, "kind" | "sql" | "session">) => Promise<unknown>): Promise<number> {
    let total = 0;
    const countAfterEachQuery = (connection: SqlRunner): SqlRunner => ({
      exec: (text) => connection.exec(text),
      async query<Row extends object>(text: string, params?: readonly unknown[]) {
        const result = await connection.query<Row>(text, params);
        const stats = await connection.query<{ read: string }>(
          "SELECT sum(pg_stat_get_xact_tuples_returned(oid)) AS read FROM pg_class WHERE oid = $1::regclass OR oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = $1::regclass)",
          [table],
        );
        total += Number(stats.rows[0]?.read);
        return result;
      },
    });
    await read({ kind: db.kind, sql: db.sql, session: (fn) => db.session((connection) => fn(countAfterEachQuery(connection))) });
    return total;
  }

  it("reads the last week's rows and one entry per leading group, not the history before them", async () => {
    const candles = await entriesRead("candles", (watched) => tableGrowth(watched, { table: "candles", timeColumn: "open_time" }, { nowMs: NOW, exactCountMaxBytes: 0 }));
    const traces = await entriesRead("decision_traces", (watched) => tableGrowth(watched, { table: "decision_traces", timeColumn: "time" }, { nowMs: NOW, exactCountMaxBytes: 0 }));
    const events = await entriesRead("system_events", (watched) => tableGrowth(watched, { table: "system_events", timeColumn: "time" }, { nowMs: NOW, exactCountMaxBytes: 0 }));
    // 28,800 candles, 120,000 traces and 1,200 events stored; the week's 1,680, 7,000 and 70, plus a few probes per
    // series or type (the oldest row's statement and the count's each skip through the groups).
    expect((await db.sql.query<{ n: string }>("SELECT count(*) AS n FROM candles")).rows[0]?.n).toBe("28800");
    expect(candles).toBeGreaterThanOrEqual(1_680);
    expect(candles).toBeLessThan(1_680 + 6 * 4);
    expect(traces).toBeGreaterThanOrEqual(7_000);
    expect(traces).toBeLessThan(7_000 + 2 * 4);
    expect(events).toBeGreaterThanOrEqual(70);
    expect(events).toBeLessThan(70 + 2 * 4);
  });
});
