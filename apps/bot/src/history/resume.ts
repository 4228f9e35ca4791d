import { candleCoverage } from "@candlekeep/db";
import { backfill, type BackfillReport } from "../backfill";
import type { BotRuntime } from "../runtime";
import { knownGaps, recordUnavailable } from "./gaps";
import { resumeRanges } from "./ranges";

/**
 * Start-up, before the first tick: each series from its newest stored candle up to now, at most
 * its last HISTORY_CANDLES (what the strategy reads from the first tick on); an empty series gets
 * HISTORY_CANDLES. When more is missing, its older part is a gap once the recent candles are
 * stored, and the background repair (keeper.ts) fetches it after the first ticks.
 */
export async function loadRecentHistory(rt: BotRuntime, tty: boolean, signal?: AbortSignal): Promise<BackfillReport> {
  const historyCandles = rt.config.tick.historyCandles;
  let behind = 0;
  const report = await backfill(rt, {
    tty,
    ...(signal ? { signal } : {}),
    plan: async (db, now) => {
      const coverage = await candleCoverage(db, { exchange: rt.market.id, symbols: rt.symbols, timeframes: rt.timeframes, windowCandles: historyCandles, nowMs: now });
      const plan = resumeRanges({ coverage, unavailable: await knownGaps(db, rt, { unavailableOnly: true }), historyCandles, now });
      behind = plan.behind;
      return plan.ranges;
    },
  });
  if (behind > 0 && !report.stopped) {
    rt.logger.info("some series miss more than HISTORY_CANDLES candles: their last ones are loaded now, the older part in the background after the first ticks", { series: behind, historyCandles });
  }
  await recordUnavailable(rt, report.unavailable, signal);
  return report;
}
