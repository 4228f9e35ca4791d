import { SingleBar } from "cli-progress";
import { TIMEFRAME_MS, describeError, type Logger, type Timeframe } from "@candlekeep/core";
import { candleCoverage } from "@candlekeep/db";
import { settleAll } from "./limit";
import type { BotRuntime } from "./runtime";

export interface BackfillOptions {
  /** Oldest openTime wanted for each timeframe. */
  startFor: (timeframe: Timeframe) => number;
  /** Show a terminal progress bar (else periodic log lines). */
  tty: boolean;
}

export interface BackfillReport {
  series: number;
  fetched: number;
  written: number;
  failed: { symbol: string; timeframe: Timeframe; error: string }[];
}

const PAGE = 1000;
/** Flush whenever this many candles wait, so memory stays flat on long backfills. */
const FLUSH_EVERY = 20_000;
const PROGRESS_LOG_MS = 5000;

/**
 * Loads history for every coin × timeframe back to `startFor(timeframe)`.
 * Resumable: a series already complete from the start is continued from its
 * last stored candle; anything else is refetched from the start (the upsert
 * makes repeats harmless).
 */
export async function backfill(rt: BotRuntime, options: BackfillOptions): Promise<BackfillReport> {
  const db = await rt.db();
  const now = rt.market.now();
  const jobs: { symbol: string; timeframe: Timeframe; from: number }[] = [];
  for (const timeframe of rt.timeframes) {
    const start = options.startFor(timeframe);
    const windowCandles = Math.ceil((now - start) / TIMEFRAME_MS[timeframe]);
    const coverage = await candleCoverage(db, { exchange: rt.market.id, symbols: rt.symbols, timeframes: [timeframe], windowCandles, nowMs: now });
    for (const series of coverage) {
      const complete = series.firstOpenTime !== null && series.firstOpenTime <= start && series.recentGaps === 0;
      jobs.push({ symbol: series.symbol, timeframe, from: complete && series.lastOpenTime !== null ? series.lastOpenTime : start });
    }
  }

  const report: BackfillReport = { series: jobs.length, fetched: 0, written: 0, failed: [] };
  const progress = createProgress(options.tty, jobs.length, rt.logger);
  let flushing: Promise<void> = Promise.resolve();
  const flush = () => {
    flushing = flushing.then(async () => {
      const result = await rt.candles.flushPending(db);
      report.written += result.written;
    });
    return flushing;
  };

  await settleAll(jobs, rt.config.tick.concurrency, async (job) => {
    try {
      let cursor = job.from;
      for (;;) {
        const page = await rt.market.fetchCandles(job.symbol, job.timeframe, cursor, PAGE);
        const added = rt.candles.add(job.symbol, job.timeframe, page);
        report.fetched += page.length;
        if (added.deferred > 0) {
          // The pending batch was full: write it, then fetch the same page again (its deferred candles fit now).
          await flush();
          continue;
        }
        if (rt.candles.pendingCount >= FLUSH_EVERY) await flush();
        const last = page.at(-1);
        if (!last || last.openTime <= cursor || !last.isClosed || page.length < 2) break;
        cursor = last.openTime;
      }
    } catch (error) {
      report.failed.push({ symbol: job.symbol, timeframe: job.timeframe, error: describeError(error) });
      rt.logger.warn("backfill of a series failed", { symbol: job.symbol, timeframe: job.timeframe, error: describeError(error) });
    } finally {
      rt.status.lastProgressAt = new Date();
      progress.advance(report);
    }
  });
  await flush();
  progress.stop(report);
  return report;
}

function createProgress(tty: boolean, total: number, logger: Logger) {
  let done = 0;
  let lastLog = 0;
  const bar = tty ? new SingleBar({ format: "backfill [{bar}] {value}/{total} series | {fetched} candles | {eta_formatted} left", hideCursor: true }) : undefined;
  bar?.start(total, 0, { fetched: 0 });
  return {
    advance(report: BackfillReport) {
      done += 1;
      bar?.update(done, { fetched: report.fetched });
      if (!bar && (Date.now() - lastLog >= PROGRESS_LOG_MS || done === total)) {
        lastLog = Date.now();
        logger.info("backfill progress", { done, total, percent: Math.round((done / Math.max(1, total)) * 100), fetched: report.fetched });
      }
    },
    stop(report: BackfillReport) {
      bar?.stop();
      logger.info("backfill finished", { series: report.series, fetched: report.fetched, written: report.written, failed: report.failed.length });
    },
  };
}

/** Start-up: loads what is missing of the last HISTORY_CANDLES candles of every series. */
export function backfillRecentHistory(rt: BotRuntime, tty: boolean): Promise<BackfillReport> {
  const now = rt.market.now();
  return backfill(rt, { startFor: (tf) => now - rt.config.tick.historyCandles * TIMEFRAME_MS[tf], tty });
}
