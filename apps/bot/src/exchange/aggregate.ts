import { TIMEFRAME_MS, alignToTimeframe, type Timeframe } from "@candlekeep/core";
import type { ExchangeCandle } from "./types";

/**
 * Timeframes an exchange lacks (coinbase and gemini have no 4h, bithumb no 1d)
 * built from a shorter one it has: which one, and the candles it makes.
 */

/** A timeframe's candles as the exchange has them, or built from its `from` timeframe, `fromMs` long. */
export type TimeframeSource = { kind: "native" } | { kind: "built"; from: string; fromMs: number };

const UNIT_MS: Readonly<Record<string, number>> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** Length of a ccxt timeframe ("5m", "2h", "1w") in ms; undefined for months and years, which have no fixed length. */
export function ccxtTimeframeMs(timeframe: string): number | undefined {
  const [, count, unit] = /^(\d+)([smhdw])$/.exec(timeframe) ?? [];
  const unitMs = unit === undefined ? undefined : UNIT_MS[unit];
  return unitMs === undefined ? undefined : Number(count) * unitMs;
}

/**
 * Where `timeframe`'s candles come from on an exchange offering `offered` (the
 * keys of ccxt's `exchange.timeframes`): the exchange's own when offered, else
 * the longest offered timeframe that divides it (fewest candles to fetch per
 * candle built; any divisor of a day keeps UTC boundaries), else undefined.
 */
export function timeframeSource(timeframe: Timeframe, offered: readonly string[]): TimeframeSource | undefined {
  if (offered.includes(timeframe)) return { kind: "native" };
  const step = TIMEFRAME_MS[timeframe];
  let best: { from: string; fromMs: number } | undefined;
  for (const from of offered) {
    const fromMs = ccxtTimeframeMs(from);
    if (fromMs === undefined || fromMs >= step || step % fromMs !== 0) continue;
    if (!best || fromMs > best.fromMs) best = { from, fromMs };
  }
  return best && { kind: "built", ...best };
}

/**
 * The candles of `timeframe` made from `source` candles `sourceMs` long (oldest
 * first, one per openTime, as toCandles returns them), on UTC boundaries: first
 * open, highest high, lowest low, last close, summed volume.
 *
 * A candle whose period contains `now` is forming. One whose period has ended is
 * closed only when every source candle of it is there. One that ended with some
 * missing is left out rather than stored closed without their trades: while it
 * is the newest it is fetched again, so a source candle the exchange delivers
 * late still closes it; otherwise the series shows a gap there (verify reports
 * it), or keeps the forming version stored before its period ended. A source
 * candle not on its own timeframe's boundary cannot be placed and counts as
 * missing.
 */
export function aggregateCandles(source: readonly ExchangeCandle[], sourceMs: number, timeframe: Timeframe, now: number): ExchangeCandle[] {
  const step = TIMEFRAME_MS[timeframe];
  const perCandle = step / sourceMs;
  const built: ExchangeCandle[] = [];
  let current: ExchangeCandle | undefined;
  let parts = 0;
  const finish = (candle: ExchangeCandle) => {
    const ended = candle.openTime + step <= now;
    if (!ended) built.push(candle);
    else if (parts === perCandle) built.push({ ...candle, isClosed: true });
  };
  for (const candle of source) {
    if (candle.openTime % sourceMs !== 0) continue;
    const openTime = alignToTimeframe(candle.openTime, timeframe);
    if (current?.openTime === openTime) {
      current.high = Math.max(current.high, candle.high);
      current.low = Math.min(current.low, candle.low);
      current.close = candle.close;
      current.volume += candle.volume;
      parts += 1;
      continue;
    }
    if (current) finish(current);
    current = { openTime, open: candle.open, high: candle.high, low: candle.low, close: candle.close, volume: candle.volume, isClosed: false };
    parts = 1;
  }
  if (current) finish(current);
  return built;
}
