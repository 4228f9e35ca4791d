import { SIM_DEFAULT_SYMBOLS, TIMEFRAME_MS, alignToTimeframe } from "@candlekeep/core";
import { saveCandles, type CandleInput } from "./candles";
import { DATABASE_KINDS, openTestDatabase } from "./testing";
import { trackedCoins } from "./tracked-coins";

const NOW = Date.UTC(2026, 5, 1, 12, 7);

function candle(symbol: string, candlesAgo: number, exchange = "binance"): CandleInput {
  const openTime = alignToTimeframe(NOW, "15m") - candlesAgo * TIMEFRAME_MS["15m"];
  return { exchange, symbol, timeframe: "15m", openTime, open: 10, high: 11, low: 9, close: 10.5, volume: 1, isClosed: true };
}

describe.each(DATABASE_KINDS)("trackedCoins on the %s engine", (kind) => {
  let db: Awaited<ReturnType<typeof openTestDatabase>>;
  beforeAll(async () => {
    db = await openTestDatabase(kind);
    await saveCandles(db, [candle("OLD/USDT", 500), candle("BTC/USDT", 0), candle("ETH/USDT", 1), candle("XRP/USDT", 0, "kraken")], NOW);
  });
  afterAll(async () => {
    await db.close();
  });

  it("takes an explicit list as given, and the simulated exchange's defaults when nothing is set", async () => {
    expect(await trackedCoins(db, { exchange: "binance", selection: { kind: "list", symbols: ["ADA/USDT"] }, timeframes: ["15m"] })).toEqual({ symbols: ["ADA/USDT"], source: "SYMBOLS" });
    expect((await trackedCoins(db, { exchange: "sim", selection: undefined, timeframes: ["15m"] })).symbols).toEqual(SIM_DEFAULT_SYMBOLS);
  });

  it("for top:N takes the N coins of that exchange written most recently", async () => {
    expect((await trackedCoins(db, { exchange: "binance", selection: { kind: "top", count: 2 }, timeframes: ["15m"] })).symbols).toEqual(["BTC/USDT", "ETH/USDT"]);
    expect((await trackedCoins(db, { exchange: "okx", selection: undefined, timeframes: ["15m"] })).symbols).toEqual([]);
  });
});
