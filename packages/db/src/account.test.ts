import { accountHistory, saveAccountState, type AccountSnapshot } from "./account";
import { useTestDatabase, type SuiteDatabase } from "./test-database-hooks";
import { captureLogger, countTableReads, DATABASE_KINDS } from "./testing";

const T0 = Date.UTC(2026, 3, 1, 12);
const snapshot = (minutes: number, overrides: Partial<AccountSnapshot> = {}): AccountSnapshot => ({
  time: new Date(T0 + minutes * 60_000),
  exchange: "sim",
  currency: "USDT",
  free: 9949.123456789,
  used: 50.5,
  total: 9999.623456789,
  equity: 10012.000000001,
  ...overrides,
});

describe.each(DATABASE_KINDS)("account snapshots on the %s engine", (kind) => {
  const logger = captureLogger();
  let db: SuiteDatabase;
  useTestDatabase(kind, { logger, tables: "account_state", opened: (opened) => (db = opened) });

  it("stores every snapshot of a call with its amounts exact, and reads them back newest first per currency", async () => {
    const usdt = [snapshot(0), snapshot(15, { free: 0.1, used: 0.2, total: 0.30000000000000004, equity: 1e-18 })];
    const btc = snapshot(15, { currency: "BTC", free: 0.123456789012345678, used: 0, total: 0.123456789012345678, equity: 0.123456789012345678 });
    expect(await saveAccountState(db, [...usdt, btc])).toBe(3);
    expect(await accountHistory(db, { exchange: "sim", currency: "USDT", limit: 5 })).toEqual([usdt[1], usdt[0]]);
    expect(await accountHistory(db, { exchange: "sim", currency: "BTC" })).toEqual([btc]);
  });

  it("refuses a non-finite amount or an invalid time, naming the field, and stores nothing of the call", async () => {
    await expect(saveAccountState(db, [snapshot(0), snapshot(15, { equity: Number.NaN })])).rejects.toThrow("saving the USDT balance snapshot: equity must be a finite number, got NaN");
    await expect(saveAccountState(db, [snapshot(0, { time: new Date(Number.NaN) })])).rejects.toThrow("saving the USDT balance snapshot: time must be a valid Date, got Invalid Date");
    expect(await accountHistory(db, { exchange: "sim", limit: 5 })).toEqual([]);
    expect(logger.lines.filter((line) => line.message === "saveAccountState failed")).toHaveLength(2);
  });
});

describe("accountHistory on the server engine", () => {
  const logger = captureLogger();
  let db: SuiteDatabase;
  useTestDatabase("server", { logger, tables: "account_state", opened: (opened) => (db = opened) });

  it("reads the newest snapshots of every currency without going through all of them", async () => {
    const usdt = Array.from({ length: 1_000 }, (_, i) => snapshot(i));
    const btc = [snapshot(400.5, { currency: "BTC" }), snapshot(999.5, { currency: "BTC" })];
    expect(await saveAccountState(db, [...usdt, ...btc])).toBe(1_002);
    // With statistics, as autovacuum keeps them for a growing table: without, a table this small is cheaper to read whole.
    await db.sql.exec("ANALYZE account_state");
    const newest = await countTableReads(db, "account_state", (connection) => accountHistory({ sql: connection }, { exchange: "sim", limit: 3 }));
    expect(newest.result).toEqual([btc[1], usdt[999], usdt[998]]);
    // Two currencies: a probe each to find them (and one more to end), then the newest rows of each: not the 1,002 stored.
    expect(newest.read).toBeLessThan(50);
  });
});
