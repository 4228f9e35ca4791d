import { TIMEFRAME_MS, alignToTimeframe } from "@candlekeep/core";
import { saveCandles, type CandleInput } from "./candles";
import { storedCandleSymbols } from "./candle-symbols";
import { DATABASE_KINDS, openTestDatabase } from "./testing";

const NOW = Date.UTC(2026, 5, 1, 12, 7);

function candle(symbol: string, timeframe: "15m" | "1h", candlesAgo: number, exchange = "binance"): CandleInput {
  const openTime = alignToTimeframe(NOW, timeframe) - candlesAgo * TIMEFRAME_MS[timeframe];
  return { exchange, symbol, timeframe, openTime, open: 10, high: 11, low: 9, close: 10.5, volume: 1, isClosed: true };
}

describe.each(DATABASE_KINDS)("storedCandleSymbols on the %s engine", (kind) => {
  let db: Awaited<ReturnType<typeof openTestDatabase>>;
  beforeAll(async () => {
    db = await openTestDatabase(kind);
    await saveCandles(
      db,
      [
        candle("OLD/USDT", "1h", 50),
        candle("BTC/USDT", "1h", 1),
        candle("BTC/USDT", "15m", 0),
        candle("ETH/USDT", "15m", 0),
        candle("KRAKEN/USDT", "15m", 0, "kraken"),
        candle("HOUR/USDT", "1h", 0),
      ],
      NOW,
    );
  });
  afterAll(async () => {
    await db.close();
  });

  it("lists the exchange's symbols newest-updated first, over the requested timeframes only", async () => {
    const symbols = await storedCandleSymbols(db, { exchange: "binance", timeframes: ["15m"] });
    const newest = alignToTimeframe(NOW, "15m");
    expect(symbols).toEqual([
      { symbol: "BTC/USDT", lastOpenTime: newest },
      { symbol: "ETH/USDT", lastOpenTime: newest },
    ]);
    const all = await storedCandleSymbols(db, { exchange: "binance", timeframes: ["15m", "1h"] });
    // BTC, ETH and HOUR all end at 12:00 (their 15m or 1h candle): ties go by name.
    expect(all.map((s) => s.symbol)).toEqual(["BTC/USDT", "ETH/USDT", "HOUR/USDT", "OLD/USDT"]);
  });

  it("returns nothing for an exchange without candles", async () => {
    expect(await storedCandleSymbols(db, { exchange: "nowhere", timeframes: ["15m", "1h"] })).toEqual([]);
  });
});
