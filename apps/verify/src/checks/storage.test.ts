import { silentLogger } from "@candlekeep/core";
import type { Database } from "@candlekeep/db";
import { execCounted, openOnTestDatabase, openTestDatabase, startPrivateServer, tickOrderCandlesSql, until, type PrivateServer, type TestDatabase } from "@candlekeep/db/testing";
import type { CheckContext } from "../check";
import { configFor } from "../test-helpers";
import { storageCheck } from "./storage";

const context = (db: Database, testDb: TestDatabase): CheckContext => ({
  db,
  config: configFor(testDb, { EXCHANGE: "sim" }),
  nowMs: Date.now(),
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
    expect(outcome.summary).toBe("candles: autovacuum on, 0 dead rows, candles_pkey 1.0× its rebuilt size");
    expect(outcome.details).toEqual(["autovacuum: on for candles", "dead rows: 0 dead rows beside 100000 live (0 %)", "candles_pkey: 4.6 MB, 1.0× a rebuilt index for 100000 live rows"]);
    expect(outcome.data).toMatchObject({ autovacuum: { server: true, table: undefined }, liveRows: 100_000, deadRows: 0, actions: [] });
  });

  it("warns when autovacuum is disabled for candles, with the ALTER TABLE that turns it back on", async () => {
    await db.sql.exec("ALTER TABLE candles SET (autovacuum_enabled = false)");
    try {
      const outcome = await check();
      expect(outcome.status).toBe("warn");
      expect(outcome.summary).toBe("candles needs maintenance: autovacuum is disabled for candles (the lines below say what to run)");
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
      expect(outcome.summary).toBe("candles needs maintenance: autovacuum is off on the server (the lines below say what to run)");
      expect(outcome.details?.[0]).toBe(SERVER_OFF_LINE);
    });

    it("warns about dead rows past a fifth of the live rows and about a bloated primary key (rows inserted, then most deleted), naming what to run", async () => {
      await execCounted(db, `TRUNCATE candles; ${tickOrderCandlesSql({ series: 100, perSeries: 6_000 })}; DELETE FROM candles WHERE extract(minute from open_time) <> 0 OR extract(hour from open_time)::int % 3 <> 0`);
      const outcome = await check();
      expect(outcome.status).toBe("warn");
      expect(outcome.summary).toMatch(/^candles needs maintenance: autovacuum is off on the server; 550000 dead rows; candles_pkey is \d+\.\d× its rebuilt size \(the lines below say what to run\)$/);
      expect(outcome.details).toEqual([
        SERVER_OFF_LINE,
        "550000 dead rows beside 50000 live (1100 %) in candles, never vacuumed: run VACUUM (ANALYZE) candles",
        expect.stringMatching(/^candles_pkey is \d+ MB, \d+\.\d× the ~2\.\d MB a rebuilt index takes for 50000 live rows: run REINDEX INDEX CONCURRENTLY candles_pkey \(writes go on meanwhile; it needs about 2\.\d MB free while it runs\)$/),
      ]);
      expect(outcome.data).toMatchObject({ actions: ["ALTER SYSTEM SET autovacuum = on", "SELECT pg_reload_conf()", "VACUUM (ANALYZE) candles", "REINDEX INDEX CONCURRENTLY candles_pkey"] });
    });

    it("after VACUUM (ANALYZE) the dead rows pass and the index still warns; after the REINDEX it names, the index passes too", async () => {
      await execCounted(db, "VACUUM (ANALYZE) candles");
      const vacuumed = await check();
      expect(vacuumed.details?.slice(1)).toEqual([expect.stringMatching(/^candles_pkey is \d+ MB, .*: run REINDEX INDEX CONCURRENTLY candles_pkey /), "dead rows: 0 dead rows beside 50000 live (0 %)"]);

      await db.sql.exec("REINDEX INDEX CONCURRENTLY candles_pkey");
      const rebuilt = await check();
      expect(rebuilt.details).toEqual([SERVER_OFF_LINE, "dead rows: 0 dead rows beside 50000 live (0 %)", "candles_pkey: 2.4 MB, 1.0× a rebuilt index for 50000 live rows"]);
    });
  });
});

describe("the storage check on the embedded engine", () => {
  it("is skipped, each part with why it does not apply", async () => {
    const db = await openTestDatabase("embedded");
    try {
      const outcome = await storageCheck(context(db, db.testDb));
      expect(outcome).toEqual({
        status: "skip",
        summary: "not applicable on the embedded engine: it runs no autovacuum and keeps no row statistics between runs",
        details: [
          "autovacuum: not applicable (the embedded engine is PostgreSQL in single-user mode, which has no autovacuum)",
          "dead rows and index size: not applicable (its row statistics start from zero every time it opens)",
        ],
      });
    } finally {
      await db.close();
    }
  });
});
