import type { Candle, Timeframe } from "@candlekeep/core";
import { recentCandles, type Database } from "@candlekeep/db";
import { SimExchange } from "../exchange/sim";

/**
 * Test support: compares what a bot on the simulated exchange stored with what
 * the exchange produced. The simulated exchange is deterministic (seed and
 * clock), so a second one at the bot's last exchange time gives the truth for
 * every candle from the first stored one on, the forming ones included (but
 * for a bot that replayed the past: it writes closed candles only).
 */

type Row = [openTime: number, open: number, high: number, low: number, close: number, volume: number, isClosed: boolean];

/** A candle's values in a fixed order, compared one by one and printed compactly. */
const row = (c: Candle): Row => [c.openTime, c.open, c.high, c.low, c.close, c.volume, c.isClosed];

/**
 * Differences between the stored candles of each series (of `exchange`, "sim"
 * by default) and the simulated exchange's at `exchangeTime`: missing or extra
 * candles and changed values, one line each (at most a few per series). Empty
 * when every candle is stored exactly once with the exchange's values.
 * `replayed`: the bot's sim was replaying the past all along (SIM_REPLAY_CANDLES
 * reaching back further than it ran), so no forming candle is expected.
 */
export async function simCandleMismatches(
  db: Pick<Database, "sql">,
  options: { seed: number; exchangeTime: number; symbols: readonly string[]; timeframes: readonly Timeframe[]; exchange?: string; replayed?: boolean },
): Promise<string[]> {
  const sim = new SimExchange({ seed: options.seed, startTime: options.exchangeTime });
  const problems: string[] = [];
  for (const symbol of options.symbols) {
    for (const timeframe of options.timeframes) {
      const stored = await recentCandles(db, { exchange: options.exchange ?? "sim", symbol, timeframe }, Number.MAX_SAFE_INTEGER);
      const rows = stored.map(row);
      const series = `${symbol} ${timeframe}`;
      const first = rows[0]?.[0];
      if (first === undefined) {
        problems.push(`${series}: nothing stored`);
        continue;
      }
      const produced = await sim.fetchCandles(symbol, timeframe, first, 100_000);
      const truth = (options.replayed ? produced.filter((c) => c.isClosed) : produced).map(row);
      const byTime = new Map(rows.map((row) => [row[0], row]));
      const found: string[] = [];
      for (const expected of truth) {
        const actual = byTime.get(expected[0]);
        if (!actual) found.push(`${series}: candle ${new Date(expected[0]).toISOString()} missing`);
        else if (actual.some((value, i) => value !== expected[i])) found.push(`${series}: candle ${new Date(expected[0]).toISOString()} is ${JSON.stringify(actual)}, the exchange's is ${JSON.stringify(expected)}`);
        byTime.delete(expected[0]);
      }
      for (const extra of byTime.values()) found.push(`${series}: candle ${new Date(extra[0]).toISOString()} stored but not produced by the exchange by then`);
      problems.push(...found.slice(0, 3), ...(found.length > 3 ? [`${series}: … ${found.length - 3} more`] : []));
    }
  }
  return problems;
}
