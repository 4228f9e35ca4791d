import { TIMEFRAME_MS, TIMEFRAMES, alignToTimeframe, type Timeframe } from "@candlekeep/core";
import { candleProblem, saveCandles, type CandleInput } from "@candlekeep/db";
import type { ExchangeCandle, MarketData, OrderRules, Ticker } from "../exchange/types";
import { useServerTestBot } from "../testing/server-bot";
import { simCandleMismatches } from "../testing/sim-truth";

/**
 * Reliability, bad input 7: malformed candles from the exchange, through the
 * whole bot path (fetch → validation → pending batch → database). Each is
 * rejected with its reason, counted (metric and log line), and everything
 * else is saved; no coin fails because of them.
 */

type Corruption = (candles: ExchangeCandle[], timeframe: Timeframe) => ExchangeCandle[];

/** Market data that passes the simulated exchange's candles through `corruptions` (per symbol) while armed. */
class CorruptingMarket implements MarketData {
  readonly id: string;
  corruptions = new Map<string, Corruption>();

  constructor(private readonly inner: MarketData) {
    this.id = inner.id;
  }

  now(): number {
    return this.inner.now();
  }
  topSymbols(count: number, quote: string): Promise<string[]> {
    return this.inner.topSymbols(count, quote);
  }
  unknownSymbols(symbols: readonly string[]): Promise<string[]> {
    return this.inner.unknownSymbols(symbols);
  }
  async fetchCandles(symbol: string, timeframe: Timeframe, since: number | undefined, limit: number): Promise<ExchangeCandle[]> {
    const candles = await this.inner.fetchCandles(symbol, timeframe, since, limit);
    const corrupt = this.corruptions.get(symbol);
    return corrupt ? corrupt(candles.map((c) => ({ ...c })), timeframe) : candles;
  }
  fetchTicker(symbol: string): Promise<Ticker> {
    return this.inner.fetchTicker(symbol);
  }
  orderRules(symbol: string): Promise<OrderRules> {
    return this.inner.orderRules(symbol);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

describe("malformed candles through the bot (simulated exchange, PostgreSQL server)", () => {
  const testBot = useServerTestBot();

  it("rejects NaN, negative, high < low, unaligned and absurdly timed candles with their reason, counts them, and saves the rest", async () => {
    // Caught up (as a real exchange is), so forming candles are written, and can be corrupted, too.
    const started = await testBot.start({ SYMBOLS: "BTC/USDT,ETH/USDT,SOL/USDT" }, { simCaughtUp: true });
    await started.ticks(2);
    const market = new CorruptingMarket(started.runtime.market);
    started.runtime.market = market;

    let nanSlot = 0;
    market.corruptions.set("ETH/USDT", (candles, timeframe) => {
      const first = candles[0];
      const last = candles.at(-1);
      if (!first || !last) return candles;
      if (timeframe === "15m") {
        first.close = Number.NaN; // the candle that just closed
        nanSlot = first.openTime;
      }
      if (timeframe === "1h") last.open = -last.open;
      if (timeframe === "4h") last.high = last.low / 2;
      if (timeframe === "1d") candles.push({ ...last, openTime: last.openTime + 7 * 60_000 });
      return candles;
    });
    market.corruptions.set("SOL/USDT", (candles, timeframe) => {
      const last = candles.at(-1);
      if (timeframe !== "15m" || !last) return candles;
      const future = alignToTimeframe(Date.UTC(2200, 0, 1), "15m");
      return [...candles, { ...last, openTime: 0 }, { ...last, openTime: future }, { ...last, openTime: 9e15 }];
    });
    const rejectedBefore = (await started.runtime.metrics.candlesRejected.get()).values[0]?.value ?? 0;
    const [corrupted] = await started.ticks(1);
    market.corruptions.clear();
    const clean = await started.ticks(2);

    // No coin failed over malformed data; the tick counted each rejected candle.
    for (const report of [corrupted, ...clean]) expect(report?.failed).toEqual([]);
    expect(corrupted?.candlesRejected).toBe(7);
    expect(clean.map((r) => r.candlesRejected)).toEqual([0, 0]);
    expect(((await started.runtime.metrics.candlesRejected.get()).values[0]?.value ?? 0) - rejectedBefore).toBe(7);

    // One log line per series with rejected candles, giving the count and the first reason.
    const rejections = started.logger.lines
      .filter((l) => l.message === "invalid candles rejected")
      .map((l) => `${String(l.meta?.symbol)} ${String(l.meta?.timeframe)} ×${String(l.meta?.count)}: ${String(l.meta?.firstReason)}`)
      .sort();
    expect(rejections).toEqual([
      expect.stringMatching(/^ETH\/USDT 15m ×1: close must be a finite positive price \(got NaN\)$/),
      expect.stringMatching(/^ETH\/USDT 1d ×1: open time .* is not aligned to 1d$/),
      expect.stringMatching(/^ETH\/USDT 1h ×1: open must be a finite positive price \(got -/),
      expect.stringMatching(/^ETH\/USDT 4h ×1: high .* is below max\(open, close\)/),
      expect.stringMatching(/^SOL\/USDT 15m ×3: open time 1970-01-01T00:00:00\.000Z is before 2009$/),
    ]);

    // Nothing invalid reached the database, and every other candle is stored with the exchange's values.
    const db = await started.database.get();
    const stored = await db.sql.query<{ symbol: string; timeframe: string; open_ms: string; open: number; high: number; low: number; close: number; volume: number; is_closed: boolean }>(
      "SELECT symbol, timeframe, (extract(epoch from open_time) * 1000)::int8 AS open_ms, open, high, low, close, volume, is_closed FROM candles",
    );
    const invalid = stored.rows
      .map((r) => candleProblem({ exchange: "sim", symbol: r.symbol, timeframe: r.timeframe, openTime: Number(r.open_ms), open: r.open, high: r.high, low: r.low, close: r.close, volume: r.volume, isClosed: r.is_closed }))
      .filter((problem) => problem !== undefined);
    expect(invalid).toEqual([]);
    // The one slot whose closed candle was rejected keeps the last valid (forming) version stored; the rest is exact.
    const mismatches = await simCandleMismatches(db, { seed: 1, exchangeTime: started.runtime.market.now(), symbols: started.runtime.symbols, timeframes: TIMEFRAMES });
    expect(mismatches).toEqual([expect.stringContaining(`ETH/USDT 15m: candle ${new Date(nanSlot).toISOString()} is `)]);
    const slot = stored.rows.find((r) => r.symbol === "ETH/USDT" && r.timeframe === "15m" && Number(r.open_ms) === nanSlot);
    expect(slot?.is_closed).toBe(false);
  });

  it("the database writer rejects an unknown timeframe with its reason and saves the rest of the batch", async () => {
    const started = await testBot.start({ SYMBOLS: "BTC/USDT" }, { backfill: false });
    const db = await started.database.get();
    const openTime = alignToTimeframe(Date.now(), "1d") - 2 * TIMEFRAME_MS["1d"];
    const good: CandleInput = { exchange: "sim", symbol: "BTC/USDT", timeframe: "1d", openTime, open: 10, high: 12, low: 9, close: 11, volume: 5, isClosed: true };
    const result = await saveCandles(db, [good, { ...good, timeframe: "7m" }, { ...good, timeframe: "1w" }, { ...good, timeframe: "4h" }]);
    expect(result.written).toBe(2);
    expect(result.rejected.map((r) => r.reason)).toEqual(['unknown timeframe "7m" (expected 15m, 1h, 4h or 1d)', 'unknown timeframe "1w" (expected 15m, 1h, 4h or 1d)']);
  });
});
