import { listCandleGaps, markRangeUnavailable, type Database } from "@candlekeep/db";
import { untilAnswered, type UnavailableRange } from "../backfill";
import type { BotRuntime } from "../runtime";
import { candlesIn, type MissingSpan } from "./ranges";

/** Ranges named in the line that records them; the rest are counted. */
const RANGES_NAMED = 5;

/** The tracked series' known gaps (after the last audit) as the planner takes them; `unavailableOnly`: those the exchange has no candles for. */
export async function knownGaps(db: Database, rt: BotRuntime, options: { unavailableOnly: boolean }): Promise<MissingSpan[]> {
  const gaps = await listCandleGaps(db, { exchange: rt.market.id, symbols: rt.symbols, timeframes: rt.timeframes, includeUnavailable: true });
  return gaps
    .filter((gap) => gap.unavailable || !options.unavailableOnly)
    .map((gap) => ({ symbol: gap.symbol, timeframe: gap.timeframe, from: gap.fromTime, to: gap.toTime, unavailable: gap.unavailable }));
}

/**
 * Records the ranges the exchange has no candles for, so no later run asks for them again, with one
 * line saying so. A database outage is waited out (one story, rt.outage); `signal` ends the wait and
 * leaves the rest unrecorded (the next run finds them missing again). Returns how many were recorded.
 */
export async function recordUnavailable(rt: BotRuntime, ranges: readonly UnavailableRange[], signal: AbortSignal | undefined): Promise<number> {
  const stop = signal ?? new AbortController().signal;
  let recorded = 0;
  for (const range of ranges) {
    const done = await untilAnswered(rt, "recording ranges the exchange has no candles for", stop, (db) => markRangeUnavailable(db, { exchange: rt.market.id, symbol: range.symbol, timeframe: range.timeframe, fromTime: range.from, toTime: range.to }).then(() => true));
    if (done === undefined) break;
    recorded += 1;
  }
  if (recorded > 0) {
    rt.logger.info("the exchange has no candles for some ranges (a listing date, an outage of its own): recorded, they are not fetched again", {
      ranges: recorded,
      candles: ranges.slice(0, recorded).reduce((sum, range) => sum + candlesIn(range, range.timeframe), 0),
      first: ranges.slice(0, RANGES_NAMED).map((range) => `${range.symbol} ${range.timeframe} ${new Date(range.from).toISOString()} … ${new Date(range.to).toISOString()}`),
    });
  }
  return recorded;
}
