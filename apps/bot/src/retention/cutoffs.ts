import { TIMEFRAME_MS, type Timeframe } from "@candlekeep/core";
import type { RetentionConfig } from "../config";

const DAY_MS = 86_400_000;

/**
 * Where the retention's reach ends at exchange time `now`: decision traces from `traceCutoff` on are
 * kept, candles from `firstKeptCandle` on. Exchange time, as the traces and candles are stamped with it.
 */

/** The time from which decision traces are kept, or undefined when every trace is (EVENT_RETENTION_DAYS=0). */
export function traceCutoff(retention: RetentionConfig, now: number): number | undefined {
  return retention.traceDays > 0 ? now - retention.traceDays * DAY_MS : undefined;
}

/** The oldest open time of a `timeframe` candle that is kept (the first slot at or after now − its days), or undefined when every one is. */
export function firstKeptCandle(retention: RetentionConfig, timeframe: Timeframe, now: number): number | undefined {
  const days = retention.candleDays[timeframe];
  if (days === undefined) return undefined;
  const step = TIMEFRAME_MS[timeframe];
  return Math.ceil((now - days * DAY_MS) / step) * step;
}
