import { TIMEFRAME_MS, TIMEFRAMES, alignToTimeframe } from "@candlekeep/core";
import type { CandleInput } from "@candlekeep/db";
import { seededRandom } from "@candlekeep/db/testing";

/** Rounds to what an exchange reports: a price tick of ~7 significant digits. */
function roundLike(value: number): number {
  const digits = Math.max(0, 6 - Math.floor(Math.log10(value)));
  const scale = 10 ** Math.min(digits, 10);
  return Math.round(value * scale) / scale;
}

/**
 * `perSeries` consecutive candles of every coin × timeframe, ending with the one
 * forming at `nowMs` (the others closed): the shape of a tick's or a backfill's
 * flush. Prices random-walk from a per-coin level between 0.001 and 100,000.
 */
export function benchCandles(options: { coins: number; perSeries: number; nowMs: number; seed?: number; exchange?: string }): CandleInput[] {
  const random = seededRandom(options.seed ?? 7);
  const rows: CandleInput[] = [];
  for (let coin = 0; coin < options.coins; coin += 1) {
    const symbol = `C${String(coin).padStart(4, "0")}/USDT`;
    const level = 10 ** (random() * 8 - 3);
    for (const timeframe of TIMEFRAMES) {
      const step = TIMEFRAME_MS[timeframe];
      const newest = alignToTimeframe(options.nowMs, timeframe);
      let price = level;
      for (let i = options.perSeries - 1; i >= 0; i -= 1) {
        const open = roundLike(price);
        const close = roundLike(price * (1 + (random() - 0.5) * 0.02));
        const high = roundLike(Math.max(open, close) * (1 + random() * 0.01));
        const low = roundLike(Math.min(open, close) * (1 - random() * 0.01));
        rows.push({
          exchange: options.exchange ?? "sim",
          symbol,
          timeframe,
          openTime: newest - i * step,
          open,
          high: Math.max(high, open, close),
          low: Math.min(low, open, close),
          close,
          volume: Math.round(random() * 1e8) / 1e3,
          isClosed: i > 0,
        });
        price = close;
      }
    }
  }
  return rows;
}
