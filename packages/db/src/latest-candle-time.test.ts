import { TIMEFRAME_MS, TIMEFRAMES, type Timeframe } from "@candlekeep/core";
import { saveCandles, type CandleInput } from "./candles";
import { latestCandleTime } from "./latest-candle-time";
import { useTestDatabase, type SuiteDatabase } from "./test-database-hooks";
import { captureLogger, countTableReads, DATABASE_KINDS } from "./testing";

const T0 = Date.UTC(2026, 3, 1);
const NOW = T0 + 30 * TIMEFRAME_MS["1d"];

function candle(symbol: string, timeframe: Timeframe, openTime: number, options: { isClosed?: boolean; exchange?: string } = {}): CandleInput {
  return { exchange: options.exchange ?? "sim", symbol, timeframe, openTime, open: 10, high: 11, low: 9, close: 10.5, volume: 1, isClosed: options.isClosed ?? true };
}

describe.each(DATABASE_KINDS)("latestCandleTime on the %s engine", (kind) => {
  const logger = captureLogger();
  let db: SuiteDatabase;
  useTestDatabase(kind, { logger, tables: "candles", opened: (opened) => (db = opened) });

  it("is the latest close of a closed candle or open of a forming one, over every coin and timeframe of the exchange", async () => {
    const day = T0 + 2 * TIMEFRAME_MS["1d"];
    await saveCandles(
      db,
      [
        candle("BTC/USDT", "15m", day + 10 * TIMEFRAME_MS["15m"]),
        // A closed 1d candle reaches further than BTC's newest 15m one: to its close.
        candle("ETH/USDT", "1d", day),
        // A forming candle shows the clock had reached its open, no further.
        candle("SOL/USDT", "4h", day + 3 * TIMEFRAME_MS["4h"], { isClosed: false }),
        candle("BTC/USDT", "15m", day + 5 * TIMEFRAME_MS["1d"], { exchange: "kraken" }),
      ],
      NOW,
    );
    expect(await latestCandleTime(db, { exchange: "sim" })).toBe(day + TIMEFRAME_MS["1d"]);

    await saveCandles(db, [candle("SOL/USDT", "4h", day + 7 * TIMEFRAME_MS["4h"], { isClosed: false })], NOW);
    expect(await latestCandleTime(db, { exchange: "sim" })).toBe(day + 7 * TIMEFRAME_MS["4h"]);
  });

  it("is undefined for an exchange without candles", async () => {
    await saveCandles(db, [candle("BTC/USDT", "1h", T0, { exchange: "kraken" })], NOW);
    expect(await latestCandleTime(db, { exchange: "sim" })).toBeUndefined();
  });
});

describe("latestCandleTime on the server engine", () => {
  const logger = captureLogger();
  let db: SuiteDatabase;
  useTestDatabase("server", { logger, tables: "candles", opened: (opened) => (db = opened) });

  it("reads each series' newest candle through the primary key, not every candle stored", async () => {
    const symbols = ["BTC/USDT", "ETH/USDT", "SOL/USDT"];
    const rows: CandleInput[] = [];
    for (const symbol of symbols) {
      for (const timeframe of TIMEFRAMES) {
        for (let i = 0; i < 500; i += 1) rows.push(candle(symbol, timeframe, NOW - (i + 1) * TIMEFRAME_MS[timeframe]));
      }
    }
    await saveCandles(db, rows, NOW);
    // With statistics, as autovacuum keeps them for a growing table: without, a table this small is cheaper to read whole.
    await db.sql.exec("ANALYZE candles");
    const reads = await countTableReads(db, "candles", (connection) => latestCandleTime({ sql: connection }, { exchange: "sim" }));
    expect(reads.result).toBe(NOW);
    // One entry per distinct symbol found by skipping, one per series' newest candle (6,000 stored).
    expect(reads.read).toBeLessThan(50);
  });
});
