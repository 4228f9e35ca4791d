import type { SqlRunner } from "./sql";
import { useTestDatabase, type SuiteDatabase } from "./test-database-hooks";
import { captureLogger, countTableReads, DATABASE_KINDS } from "./testing";
import { listTrades, latestTradeEntries } from "./trades";

const T0 = Date.UTC(2026, 3, 1, 12);
const SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"];

/** `count` closed trades, one a minute from T0, the coins taking turns; trade i exits at minute i. */
async function storeTrades(sql: SqlRunner, exchange: string, count: number): Promise<void> {
  await sql.query(
    `INSERT INTO trades (exchange, symbol, side, quantity, entry_price, exit_price, entry_time, exit_time, fees, realized_pnl, exit_reason, entry_order_id, exit_order_id)
     SELECT $1, ($2::text[])[1 + i % 3], 'LONG', 1, 100, 101, $3::timestamptz + (i - 30) * interval '1 minute', $3::timestamptz + i * interval '1 minute',
            0.1, 0.9, 'TAKE_PROFIT', $1 || '-entry-' || i, $1 || '-exit-' || i
     FROM generate_series(0, $4::int - 1) AS i`,
    [exchange, SYMBOLS, new Date(T0), count],
  );
}

const exitMinutes = (trades: { exitTime: Date }[]) => trades.map((t) => (t.exitTime.getTime() - T0) / 60_000);

describe.each(DATABASE_KINDS)("trades on the %s engine", (kind) => {
  const logger = captureLogger();
  let db: SuiteDatabase;
  useTestDatabase(kind, { logger, tables: "trades", opened: (opened) => (db = opened) });

  it("lists the newest closed trades first, of an exchange or of one of its coins, up to a limit", async () => {
    await storeTrades(db.sql, "sim", 10);
    await storeTrades(db.sql, "kraken", 20);
    expect(exitMinutes(await listTrades(db, { exchange: "sim", limit: 4 }))).toEqual([9, 8, 7, 6]);
    const eth = await listTrades(db, { exchange: "sim", symbol: "ETH/USDT" });
    expect(exitMinutes(eth)).toEqual([7, 4, 1]);
    expect(eth[0]).toMatchObject({ exchange: "sim", symbol: "ETH/USDT", side: "LONG", quantity: 1, entryPrice: 100, exitPrice: 101, fees: 0.1, realizedPnl: 0.9, exitReason: "TAKE_PROFIT", exitOrderId: "sim-exit-7" });
    expect(exitMinutes(await listTrades(db, { limit: 2 }))).toEqual([19, 18]);
    expect(await listTrades(db, { exchange: "none" })).toEqual([]);
  });

  it("tells the newest entry per coin among the coins asked", async () => {
    await storeTrades(db.sql, "sim", 10);
    const entries = await latestTradeEntries(db, { exchange: "sim", symbols: ["SOL/USDT", "DOGE/USDT"] });
    expect([...entries].map(([symbol, time]) => [symbol, (new Date(time).getTime() - T0) / 60_000])).toEqual([["SOL/USDT", 8 - 30]]);
  });
});

describe("trade reads on the server engine", () => {
  const logger = captureLogger();
  let db: SuiteDatabase;
  useTestDatabase("server", { logger, tables: "trades", opened: (opened) => (db = opened) });

  it("reads a page of an exchange's newest trades, not every trade stored", async () => {
    await storeTrades(db.sql, "sim", 2_000);
    // With statistics, as autovacuum keeps them for a growing table: without, a table this small is cheaper to read whole.
    await db.sql.exec("ANALYZE trades");
    const newest = await countTableReads(db, "trades", (connection) => listTrades({ sql: connection }, { exchange: "sim", limit: 30 }));
    expect(exitMinutes(newest.result)).toEqual(Array.from({ length: 30 }, (_, i) => 1_999 - i));
    expect(newest.read).toBeLessThan(50);
  });

  it("finds each coin's newest entry from its newest trade, not from every trade stored", async () => {
    await storeTrades(db.sql, "sim", 2_000);
    await db.sql.exec("ANALYZE trades");
    const entries = await countTableReads(db, "trades", (connection) => latestTradeEntries({ sql: connection }, { exchange: "sim", symbols: SYMBOLS }));
    // Trade i exits at minute i and entered 30 minutes before; the coins take turns.
    expect(Object.fromEntries([...entries.result].map(([symbol, time]) => [symbol, (time.getTime() - T0) / 60_000]))).toEqual({ "BTC/USDT": 1_998 - 30, "ETH/USDT": 1_999 - 30, "SOL/USDT": 1_997 - 30 });
    expect(entries.read).toBeLessThan(50);
  });
});
