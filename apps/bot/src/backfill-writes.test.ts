import { TIMEFRAMES, type Timeframe } from "@candlekeep/core";
import { MOST_UNWRITTEN } from "./backfill";
import { loadRecentHistory } from "./history/resume";
import { simCandleMismatches } from "./testing/sim-truth";
import { useServerTestBot } from "./testing/server-bot";

/** How the backfill writes what it fetches (PostgreSQL server, simulated exchange). */

describe("the backfill's writes", () => {
  const testBot = useServerTestBot();

  it("go on while it fetches, with at most MOST_UNWRITTEN candles and the pages in hand unwritten, and store every candle exactly", async () => {
    // 20 coins × 4 timeframes × 2,000 candles: 160,000 candles, past the bound.
    const bot = await testBot.start({ SYMBOLS: "top:20", HISTORY_CANDLES: "2000" }, { backfill: false });
    const rt = bot.runtime;
    const market = rt.market;
    const fetchCandles = market.fetchCandles.bind(market);
    const seen: { unwritten: number; writing: boolean }[] = [];
    market.fetchCandles = async (symbol: string, timeframe: Timeframe, since: number | undefined, limit: number) => {
      seen.push({ unwritten: rt.candles.pendingCount, writing: rt.candles.flushing });
      return fetchCandles(symbol, timeframe, since, limit);
    };

    const report = await loadRecentHistory(rt, false);

    expect(report).toMatchObject({ failed: [], stopped: false, series: 20 * TIMEFRAMES.length });
    expect(rt.candles.pendingCount).toBe(0);
    // Fetching went on during writes, and waited before the unwritten candles passed the bound by more than a page per series in flight.
    expect(seen.filter((s) => s.writing).length).toBeGreaterThan(seen.length / 4);
    expect(Math.max(...seen.map((s) => s.unwritten))).toBeLessThanOrEqual(MOST_UNWRITTEN + rt.config.tick.concurrency * 1000);
    const db = await bot.database.get();
    const stored = await db.sql.query<{ n: string }>("SELECT count(*) AS n FROM candles");
    expect(Number(stored.rows[0]?.n)).toBe(report.written);
    expect(report.written).toBeGreaterThan(MOST_UNWRITTEN);
    expect(await simCandleMismatches(db, { seed: 1, exchangeTime: market.now(), symbols: rt.symbols, timeframes: TIMEFRAMES, replayed: true })).toEqual([]);
  }, 120_000);
});
