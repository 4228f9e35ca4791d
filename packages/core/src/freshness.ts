import { TIMEFRAME_MS, alignToTimeframe, type Timeframe } from "./timeframes";

/**
 * The freshness rule shared by verify (pass/fail) and the dashboard (colours),
 * so a series the dashboard shows as fresh or late is one verify passes.
 */

/** A series is stale when more than this many candles are missing before the forming one. */
export const DEFAULT_STALE_AFTER_PERIODS = 2;
/** Gaps are counted among the last this many candles of each series (one day of 15m candles). */
export const DEFAULT_GAP_WINDOW_CANDLES = 96;

/** What freshness is judged from: the shape of a coverage row. */
export interface SeriesLastCandle {
  timeframe: Timeframe;
  /** null when the series has no candles. */
  lastOpenTime: number | null;
}

/**
 * How many whole candles are missing between a series' last stored candle and
 * the candle forming now: 0 when the forming candle is stored, 1 when only
 * closed candles are (the bot's normal state between ticks), negative when the
 * clock is behind the data (the simulated exchange runs slightly ahead).
 */
export function candlesBehind(lastOpenTime: number, timeframe: Timeframe, nowMs: number): number {
  return Math.round((alignToTimeframe(nowMs, timeframe) - lastOpenTime) / TIMEFRAME_MS[timeframe]);
}

/**
 * The open time of the oldest candle of the recent window of `windowCandles`
 * candles: the one forming at `nowMs` and the `windowCandles − 1` before it. Gaps
 * are counted from here by the coverage check and left to the history check before it.
 */
export function recentWindowStart(nowMs: number, timeframe: Timeframe, windowCandles: number): number {
  return alignToTimeframe(nowMs, timeframe) - (windowCandles - 1) * TIMEFRAME_MS[timeframe];
}

export type SeriesState = "fresh" | "empty" | "stale";

/**
 * verify's rule: a series is stale when more than `staleAfter` candles are
 * missing before the forming one (candlesBehind > staleAfter). With the default 2
 * a 15m series whose last candle opened 30 min before the current quarter hour
 * is fresh, 45 min before is stale.
 */
export function seriesState(series: SeriesLastCandle, staleAfter: number, nowMs: number): SeriesState {
  if (series.lastOpenTime === null) return "empty";
  return candlesBehind(series.lastOpenTime, series.timeframe, nowMs) > staleAfter ? "stale" : "fresh";
}

export type Freshness = "fresh" | "late" | "stale" | "missing";

/**
 * The dashboard's finer reading of the same rule: verify's "fresh" split into
 * fresh (at most one candle behind, the normal state between ticks) and late
 * (behind, but not yet past `staleAfter`, so verify still passes); stale and
 * missing are verify's stale and empty.
 */
export function seriesFreshness(series: SeriesLastCandle, staleAfter: number, nowMs: number): Freshness {
  const state = seriesState(series, staleAfter, nowMs);
  if (state === "empty") return "missing";
  if (state === "stale" || series.lastOpenTime === null) return "stale";
  return candlesBehind(series.lastOpenTime, series.timeframe, nowMs) <= Math.min(1, staleAfter) ? "fresh" : "late";
}
