import { tableStorageHealth } from "./storage-health";
import { execCounted, openTestDatabase, tickOrderCandlesSql } from "./testing";

const primaryKeyBytes = async (db: Awaited<ReturnType<typeof openTestDatabase>>) =>
  Number((await db.sql.query<{ bytes: string }>("SELECT pg_relation_size('candles_pkey') AS bytes")).rows[0]?.bytes);

describe("tableStorageHealth on a server", () => {
  let db: Awaited<ReturnType<typeof openTestDatabase>>;
  let serverAutovacuum: boolean;
  beforeAll(async () => {
    db = await openTestDatabase("server");
    serverAutovacuum = (await db.sql.query<{ autovacuum: string }>("SHOW autovacuum")).rows[0]?.autovacuum === "on";
  });
  afterAll(async () => {
    await db.close();
  });

  it("has no row statistics and no estimate for a table never written, and reads the primary key's size", async () => {
    const health = await tableStorageHealth(db, "candles");
    expect(health).toEqual({
      table: "candles",
      autovacuum: { server: serverAutovacuum, table: undefined },
      rows: undefined,
      primaryKey: { name: "candles_pkey", bytes: 8192, packedBytes: undefined, liveRows: undefined },
    });
  });

  it("reads the table's own autovacuum_enabled as the server reads it, and the server's setting", async () => {
    await db.sql.exec("ALTER TABLE candles SET (autovacuum_enabled = off)");
    expect((await tableStorageHealth(db, "candles")).autovacuum).toEqual({ server: serverAutovacuum, table: false });
    await db.sql.exec("ALTER TABLE candles SET (autovacuum_enabled = true)");
    expect((await tableStorageHealth(db, "candles")).autovacuum).toEqual({ server: serverAutovacuum, table: true });
    await db.sql.exec("ALTER TABLE candles RESET (autovacuum_enabled)");
    expect((await tableStorageHealth(db, "candles")).autovacuum).toEqual({ server: serverAutovacuum, table: undefined });
  });

  it("estimates the primary key rebuilt within 2 % of its size after REINDEX; the bot's write order leaves it 1.5 to 2 times that", async () => {
    // Held off so that the counts below are the writes' own, whatever the server's setting.
    await execCounted(db, `TRUNCATE candles; ALTER TABLE candles SET (autovacuum_enabled = false); ${tickOrderCandlesSql({ series: 100, perSeries: 1_000 })}`);
    const written = await tableStorageHealth(db, "candles");
    expect(written.rows).toMatchObject({ live: 100_000, dead: 0 });
    const { bytes, packedBytes } = written.primaryKey ?? {};
    expect((bytes ?? 0) / (packedBytes ?? 1)).toBeGreaterThan(1.5);
    expect((bytes ?? 0) / (packedBytes ?? 1)).toBeLessThan(2);

    await db.sql.exec("REINDEX INDEX candles_pkey");
    const rebuilt = await primaryKeyBytes(db);
    expect(Math.abs((packedBytes ?? 0) - rebuilt) / rebuilt).toBeLessThan(0.02);
  });

  it("counts dead rows until a VACUUM, and estimates the index for the live rows only", async () => {
    await execCounted(db, `TRUNCATE candles; ${tickOrderCandlesSql({ series: 100, perSeries: 1_000 })}; DELETE FROM candles WHERE extract(minute from open_time) <> 0`);
    const deleted = await tableStorageHealth(db, "candles");
    expect(deleted.rows).toEqual({ live: 25_000, dead: 75_000, lastVacuumAt: null });
    // A DELETE leaves the index as it was: it is four times the size the live rows need.
    expect((deleted.primaryKey?.bytes ?? 0) / (deleted.primaryKey?.packedBytes ?? 1)).toBeGreaterThan(4);

    const before = Date.now();
    await execCounted(db, "VACUUM candles");
    const vacuumed = await tableStorageHealth(db, "candles");
    expect(vacuumed.rows).toMatchObject({ live: 25_000, dead: 0 });
    expect(vacuumed.rows?.lastVacuumAt).toBeGreaterThanOrEqual(before - 1000);
    // VACUUM empties index pages but keeps them: the index stays at its size until REINDEX.
    expect(vacuumed.primaryKey?.bytes).toBe(deleted.primaryKey?.bytes);

    await db.sql.exec("REINDEX INDEX candles_pkey");
    const rebuilt = await primaryKeyBytes(db);
    expect(Math.abs((vacuumed.primaryKey?.packedBytes ?? 0) - rebuilt) / rebuilt).toBeLessThan(0.03);
  });
});
