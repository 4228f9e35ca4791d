import { silentLogger } from "@candlekeep/core";
import type { Database } from "@candlekeep/db";
import {
  DATABASE_KINDS,
  execCounted,
  growthSeedSql,
  openOnTestDatabase,
  openTestDatabase,
  SEEDED_GROWTH,
  startPrivateServer,
  tickOrderCandlesSql,
  until,
  type PrivateServer,
  type TestDatabase,
} from "@candlekeep/db/testing";
import type { CheckContext } from "../check";
import { configFor } from "../test-helpers";
import { storageCheck } from "./storage";
import { growthReport } from "./storage-growth";

const context = (db: Database, testDb: TestDatabase, env: Record<string, string> = {}, nowMs = Date.now()): CheckContext => ({
  db,
  config: configFor(testDb, { EXCHANGE: "sim", ...env }),
  nowMs,
  logger: silentLogger,
  trackedCoins: async () => ({ symbols: [], source: "test" }),
  exchangeBalances: undefined,
  readDb: db,
});

const SERVER_OFF_LINE =
  "autovacuum is off on the server: dead rows of candles are never cleaned up and its statistics go stale. Turn it on in the server's settings (autovacuum = on in postgresql.conf, or ALTER SYSTEM SET autovacuum = on; SELECT pg_reload_conf();); until then run VACUUM (ANALYZE) candles regularly";

// A server of its own: the machine's shared server runs with autovacuum off, and a healthy table needs it on.
describe("the storage check on a server", () => {
  let server: PrivateServer;
  let testDb: TestDatabase;
  let db: Database;
  const check = () => storageCheck(context(db, testDb));
  const setServerAutovacuum = async (value: "on" | "off") => {
    await db.sql.exec(`ALTER SYSTEM SET autovacuum = ${value}`);
    await db.sql.query("SELECT pg_reload_conf()");
    await until(`autovacuum ${value}`, async () => ((await db.sql.query<{ value: string }>("SELECT current_setting('autovacuum') AS value")).rows[0]?.value === value ? true : undefined), 10_000);
  };

  beforeAll(async () => {
    server = startPrivateServer({ autovacuum: "on", autovacuum_naptime: "86400" });
    testDb = await server.createDatabase();
    db = await openOnTestDatabase(testDb, { poolMax: 1 });
  });
  afterAll(async () => {
    await db?.close();
    await testDb?.drop();
    server?.stop();
  });

  it("passes a healthy table: autovacuum on, no dead rows, a primary key at its rebuilt size", async () => {
    await execCounted(db, `${tickOrderCandlesSql({ series: 50, perSeries: 2_000 })}; REINDEX INDEX candles_pkey`);
    const outcome = await check();
    expect(outcome.status).toBe("pass");
    expect(outcome.summary).toMatch(/^candles: autovacuum on, 0 dead rows, candles_pkey 1\.0× its rebuilt size; database \d+ MB, growing ~\d+ B\/day$/);
    expect(outcome.details?.slice(0, 3)).toEqual(["autovacuum: on for candles", "dead rows: 0 dead rows beside 100000 live (0 %)", "candles_pkey: 4.6 MB, 1.0× a rebuilt index for 100000 live rows"]);
    expect(outcome.details?.[3]).toMatch(/^candles: \d+ MB, 100000 rows, \+0 rows\/day \(~0 B\/day, over the last 7 days, by open_time\)$/);
    expect(outcome.data).toMatchObject({ autovacuum: { server: true, table: undefined }, liveRows: 100_000, deadRows: 0, actions: [], growth: { budget: null } });
  });

  it("warns when autovacuum is disabled for candles, with the ALTER TABLE that turns it back on", async () => {
    await db.sql.exec("ALTER TABLE candles SET (autovacuum_enabled = false)");
    try {
      const outcome = await check();
      expect(outcome.status).toBe("warn");
      expect(outcome.summary).toMatch(/^candles needs maintenance: autovacuum is disabled for candles \(the lines below say what to run\); database \d+ MB, growing /);
      expect(outcome.details?.[0]).toBe("autovacuum is disabled for candles (autovacuum_enabled = false): run ALTER TABLE candles SET (autovacuum_enabled = true)");
      expect(outcome.data).toMatchObject({ actions: ["ALTER TABLE candles SET (autovacuum_enabled = true)"] });
    } finally {
      await db.sql.exec("ALTER TABLE candles RESET (autovacuum_enabled)");
    }
  });

  describe("with autovacuum off on the server", () => {
    beforeAll(() => setServerAutovacuum("off"));
    afterAll(() => setServerAutovacuum("on"));

    it("warns, saying how to turn it on and what to run until then", async () => {
      const outcome = await check();
      expect(outcome.status).toBe("warn");
      expect(outcome.summary).toMatch(/^candles needs maintenance: autovacuum is off on the server \(the lines below say what to run\); database /);
      expect(outcome.details?.[0]).toBe(SERVER_OFF_LINE);
    });

    it("warns about dead rows past a fifth of the live rows and about a bloated primary key (rows inserted, then most deleted), naming what to run", async () => {
      await execCounted(db, `TRUNCATE candles; ${tickOrderCandlesSql({ series: 100, perSeries: 6_000 })}; DELETE FROM candles WHERE extract(minute from open_time) <> 0 OR extract(hour from open_time)::int % 3 <> 0`);
      const outcome = await check();
      expect(outcome.status).toBe("warn");
      expect(outcome.summary).toMatch(/^candles needs maintenance: autovacuum is off on the server; 550000 dead rows; candles_pkey is \d+\.\d× its rebuilt size \(the lines below say what to run\); database /);
      expect(outcome.details?.slice(0, 3)).toEqual([
        SERVER_OFF_LINE,
        "550000 dead rows beside 50000 live (1100 %) in candles, never vacuumed: run VACUUM (ANALYZE) candles",
        expect.stringMatching(/^candles_pkey is \d+ MB, \d+\.\d× the ~2\.\d MB a rebuilt index takes for 50000 live rows: run REINDEX INDEX CONCURRENTLY candles_pkey \(writes go on meanwhile; it needs about 2\.\d MB free while it runs\)$/),
      ]);
      expect(outcome.data).toMatchObject({ actions: ["ALTER SYSTEM SET autovacuum = on", "SELECT pg_reload_conf()", "VACUUM (ANALYZE) candles", "REINDEX INDEX CONCURRENTLY candles_pkey"] });
    });

    it("after VACUUM (ANALYZE) the dead rows pass and the index still warns; after the REINDEX it names, the index passes too", async () => {
      await execCounted(db, "VACUUM (ANALYZE) candles");
      const vacuumed = await check();
      expect(vacuumed.details?.slice(1, 3)).toEqual([expect.stringMatching(/^candles_pkey is \d+ MB, .*: run REINDEX INDEX CONCURRENTLY candles_pkey /), "dead rows: 0 dead rows beside 50000 live (0 %)"]);

      await db.sql.exec("REINDEX INDEX CONCURRENTLY candles_pkey");
      const rebuilt = await check();
      expect(rebuilt.details?.slice(0, 3)).toEqual([SERVER_OFF_LINE, "dead rows: 0 dead rows beside 50000 live (0 %)", "candles_pkey: 2.4 MB, 1.0× a rebuilt index for 50000 live rows"]);
    });
  });

  it("fails once the database is past DATABASE_STORAGE_BUDGET, whatever the index health", async () => {
    const outcome = await storageCheck(context(db, testDb, { DATABASE_STORAGE_BUDGET: "1MB" }));
    expect(outcome.status).toBe("fail");
    expect(outcome.summary).toMatch(/; the database \(\d+ MB\) is past its 1 MB budget$/);
  });
});

const NOW = Date.UTC(2026, 11, 5, 12, 0);

describe.each(DATABASE_KINDS)("the storage check's growth on the %s engine", (kind) => {
  let db: Awaited<ReturnType<typeof openTestDatabase>>;
  const report = (env: Record<string, string> = {}) => growthReport(context(db, db.testDb, env, NOW));

  beforeAll(async () => {
    db = await openTestDatabase(kind);
    await db.sql.exec(growthSeedSql(NOW));
  });
  afterAll(async () => {
    await db?.close();
  });

  it("reports each table's size, rows and growth per day from the rows' timestamps, and the database's size", async () => {
    const { status, summary, details, data } = await report();
    expect(status).toBe("pass");
    expect(summary).toMatch(/^database \d+(\.\d)? MB, growing ~\d+ kB\/day$/);
    const size = String.raw`(\d+ kB|\d+(\.\d)? MB)`;
    expect(details).toEqual([
      expect.stringMatching(new RegExp(`^candles: ${size}, 7200 rows, \\+240 rows/day \\(~\\d+ kB/day, over the last 7 days, by open_time\\)$`)),
      expect.stringMatching(new RegExp(`^decision_traces: ${size}, 30000 rows, \\+1000 rows/day \\(~\\d+ kB/day, over the last 7 days, by time\\)$`)),
      expect.stringMatching(new RegExp(`^system_events: ${size}, 300 rows, \\+10 rows/day \\(~\\d+ k?B/day, over the last 7 days, by time\\)$`)),
      expect.stringMatching(new RegExp(`^trades: ${size}, 0 rows; no rows yet$`)),
      expect.stringMatching(new RegExp(`^positions: ${size}, 0 rows; not growing with time: one row per open position$`)),
      expect.stringMatching(new RegExp(`^orders: ${size}, 0 rows; no rows yet$`)),
      expect.stringMatching(new RegExp(`^account_state: ${size}, 4320 rows, \\+1440 rows/day \\(~\\d+ kB/day, over the last 3 days, by time\\)$`)),
      expect.stringMatching(new RegExp(`^series_audit: ${size}, 0 rows; not growing with time: one row per series$`)),
      expect.stringMatching(new RegExp(`^candle_gaps: ${size}, 14 rows, \\+1 rows/day \\(~\\d+ k?B/day, over the last 7 days, by found_at\\)$`)),
      expect.stringMatching(/^database \d+(\.\d)? MB, growing ~\d+ kB\/day \(pg_database_size; growth: the last 7 days' rows of each table at its bytes per row\)$/),
      "no DATABASE_STORAGE_BUDGET: set it (e.g. 10GB) to see how many days of growth the database has left",
    ]);
    // --json: the figures themselves; the database's growth is its tables' rows a day at their bytes per row.
    const tables = data.tables as { table: string; bytes: number; rows: number; rowsSource: string; growth: { kind: string; rowsPerDay?: number; bytesPerDay?: number } }[];
    let expectedBytesPerDay = 0;
    for (const [name, seeded] of Object.entries(SEEDED_GROWTH)) {
      const table = tables.find((t) => t.table === name);
      expect(table).toMatchObject({ rows: seeded.rows, rowsSource: "counted", growth: { kind: "measured", rowsPerDay: expect.closeTo(seeded.rowsPerDay, 9) } });
      expectedBytesPerDay += (seeded.rowsPerDay * (table?.bytes ?? 0)) / seeded.rows;
    }
    expect(data).toMatchObject({ windowDays: 7, budget: null, databaseBytes: expect.any(Number) });
    expect(data.bytesPerDay).toBeCloseTo(expectedBytesPerDay, 6);
  });

  it("says how many days the budget lasts at that growth, warning under 30", async () => {
    const { data } = await report();
    const used = Number(data.databaseBytes);
    const perDay = Number(data.bytesPerDay);
    const budgetFor = (days: number) => ({ DATABASE_STORAGE_BUDGET: `${Math.round(used + days * perDay)}B` });

    const roomy = await report(budgetFor(40.5));
    expect(roomy.status).toBe("pass");
    expect(roomy.summary).toMatch(/^database \d+(\.\d)? MB, growing ~\d+ kB\/day, ~40 days left of \d+(\.\d)? MB$/);
    expect(roomy.data.budget).toEqual({ budgetBytes: Math.round(used + 40.5 * perDay), usedBytes: used, leftBytes: expect.any(Number), daysLeft: expect.closeTo(40.5, 3), state: "ok", lowDays: 30 });

    const tight = await report(budgetFor(12.5));
    expect(tight.status).toBe("warn");
    expect(tight.summary).toMatch(/^database \d+(\.\d)? MB, growing ~\d+ kB\/day: ~12 days left of its \d+(\.\d)? MB budget$/);
    expect(tight.details.at(-1)).toMatch(/^\d+(\.\d)? MB left of the \d+(\.\d)? MB budget \(DATABASE_STORAGE_BUDGET\): ~12 days at ~\d+ kB\/day, under 30: plan a larger disk or keep less history$/);
    expect(tight.data.budget).toMatchObject({ daysLeft: expect.closeTo(12.5, 3), state: "low" });

    const past = await report({ DATABASE_STORAGE_BUDGET: "1MB" });
    expect(past.status).toBe("fail");
    expect(past.summary).toMatch(/^the database \(\d+(\.\d)? MB\) is past its 1 MB budget$/);
    expect(past.details.at(-1)).toMatch(
      /^the database \(\d+(\.\d)? MB\) is past the 1 MB budget \(DATABASE_STORAGE_BUDGET\) by \d+(\.\d)? MB: move to a larger disk and raise the budget, or delete old rows of the largest tables above$/,
    );
    expect(past.data.budget).toMatchObject({ daysLeft: 0, state: "exceeded" });
  });

});

describe("the storage check on the embedded engine", () => {
  let db: Awaited<ReturnType<typeof openTestDatabase>>;

  beforeAll(async () => {
    db = await openTestDatabase("embedded");
    await db.sql.exec(growthSeedSql(NOW));
  });
  afterAll(async () => {
    await db?.close();
  });

  it("judges by growth alone, saying why autovacuum and index size do not apply", async () => {
    const outcome = await storageCheck(context(db, db.testDb, { DATABASE_STORAGE_BUDGET: "1MB" }, NOW));
    expect(outcome.status).toBe("fail");
    expect(outcome.summary).toMatch(/^the database \(\d+(\.\d)? MB\) is past its 1 MB budget; autovacuum and index size: not applicable on the embedded engine$/);
    expect(outcome.details?.slice(-2)).toEqual([
      "autovacuum: not applicable (the embedded engine is PostgreSQL in single-user mode, which has no autovacuum)",
      "dead rows and index size: not applicable (its row statistics start from zero every time it opens)",
    ]);
    expect(outcome.data).toMatchObject({ growth: { budget: { state: "exceeded" } } });
    expect((await storageCheck(context(db, db.testDb, {}, NOW))).status).toBe("pass");
  });
});
