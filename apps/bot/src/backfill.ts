import { setImmediate as nextTurn } from "node:timers/promises";
import { SingleBar } from "cli-progress";
import { TIMEFRAME_MS, alignToTimeframe, describeError, type Logger, type Timeframe } from "@candlekeep/core";
import { candleCoverage, type Database } from "@candlekeep/db";
import { settleAll } from "./limit";
import { pause } from "./loop";
import type { BotRuntime } from "./runtime";

export interface BackfillOptions {
  /** Oldest openTime wanted for each timeframe. */
  startFor: (timeframe: Timeframe) => number;
  /** Show a terminal progress bar (else periodic log lines). */
  tty: boolean;
  /**
   * Stops the backfill (the process is stopping): no page is fetched after it, a wait for the
   * database ends, and what is pending is left to the shutdown's final write.
   */
  signal?: AbortSignal;
}

export interface BackfillReport {
  series: number;
  fetched: number;
  written: number;
  failed: { symbol: string; timeframe: Timeframe; error: string }[];
  /** Stopped by `signal` before every series was loaded. */
  stopped: boolean;
}

const PAGE = 1000;
/** A write starts once this many candles wait (and none runs); the next one takes all that waits then. */
const WRITE_BATCH = 20_000;
/** Candles waiting when a write ends that make the next one start at once, rather than at the next WRITE_BATCH. */
const WRITE_ON_MIN = 5_000;
/**
 * Fetching goes on while a write runs, until this many candles are unwritten (the running
 * write's included): memory stays bounded however long the backfill, and the fetching and the
 * database rarely wait for each other.
 */
export const MOST_UNWRITTEN = 100_000;
const PROGRESS_LOG_MS = 5000;
/** While the database is away, it is tried again after this long, doubling up to the most. */
const RETRY_FIRST_MS = 500;
const RETRY_MOST_MS = 5000;

/**
 * Loads history for every coin × timeframe back to `startFor(timeframe)`.
 * Resumable: a series already complete from the start is continued from its
 * last stored candle; anything else is refetched from the start (the upsert
 * makes repeats harmless).
 *
 * A database outage is waited out, as the ticks do: fetched candles stay pending,
 * every series waits for the write (the pending batch stays bounded), the outage
 * is one story in the log (rt.outage), and the backfill resumes where it was once
 * a write succeeds. A series fails only on the exchange's errors.
 */
export async function backfill(rt: BotRuntime, options: BackfillOptions): Promise<BackfillReport> {
  const signal = options.signal ?? new AbortController().signal;
  const report: BackfillReport = { series: 0, fetched: 0, written: 0, failed: [], stopped: false };
  const now = rt.market.now();
  const jobs = await untilAnswered(rt, "reading the stored candles' coverage", signal, (db) => plan(rt, db, options, now));
  if (jobs === undefined) return { ...report, stopped: true };
  report.series = jobs.length;

  const progress = createProgress(options.tty, jobs.length, rt.logger);
  // One write at a time, in the background of the fetching (which the write used to stop: half the
  // backfill's time); a series waits for it once MOST_UNWRITTEN candles are unwritten, through an outage too.
  let writing: Promise<void> | undefined;
  const write = (): Promise<void> =>
    (writing ??= writePending(rt, report, signal).finally(() => {
      writing = undefined;
      // Whatever queued meanwhile goes next: the database waits for no fetch (a few percent of a backfill).
      if (!signal.aborted && rt.candles.pendingCount >= WRITE_ON_MIN) void write();
    }));

  await settleAll(jobs, rt.config.tick.concurrency, async (job) => {
    if (signal.aborted) return;
    try {
      let cursor = job.from;
      while (!signal.aborted) {
        const page = await rt.market.fetchCandles(job.symbol, job.timeframe, cursor, PAGE);
        const added = rt.candles.add(job.symbol, job.timeframe, page);
        report.fetched += page.length;
        if (added.deferred > 0) {
          // The pending batch was full: wait for a write, then fetch the same page again (its deferred candles fit now).
          await write();
          continue;
        }
        const unwritten = rt.candles.pendingCount;
        if (unwritten >= WRITE_BATCH && writing === undefined) void write();
        else if (unwritten >= MOST_UNWRITTEN) await writing;
        // A fetch that answers at once (the sim) would run the next one before the write's I/O gets a turn.
        if (writing !== undefined) await nextTurn();
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
  await writing;
  if (!signal.aborted) await write();
  report.stopped = signal.aborted;
  progress.stop(report, now);
  return report;
}

/** Each series' job: from where its stored history needs it. */
async function plan(rt: BotRuntime, db: Database, options: BackfillOptions, now: number): Promise<{ symbol: string; timeframe: Timeframe; from: number }[]> {
  const jobs: { symbol: string; timeframe: Timeframe; from: number }[] = [];
  for (const timeframe of rt.timeframes) {
    const start = options.startFor(timeframe);
    // Every candle from the first opening at or after `start` to now's: the window candleCoverage counts gaps in.
    const windowCandles = Math.floor((now - start) / TIMEFRAME_MS[timeframe]) + 1;
    const coverage = await candleCoverage(db, { exchange: rt.market.id, symbols: rt.symbols, timeframes: [timeframe], windowCandles, nowMs: now });
    for (const series of coverage) {
      const complete = series.firstOpenTime !== null && series.firstOpenTime <= start && series.recentGaps === 0;
      jobs.push({ symbol: series.symbol, timeframe, from: complete && series.lastOpenTime !== null ? series.lastOpenTime : start });
    }
  }
  return jobs;
}

/**
 * Writes everything pending, waiting out an outage: a failed write keeps its candles pending
 * and is tried again (the outage logged once, then once per interval). Returns when written,
 * or when `signal` stops the wait.
 */
async function writePending(rt: BotRuntime, report: BackfillReport, signal: AbortSignal): Promise<void> {
  for (let attempt = 0; !signal.aborted; attempt += 1) {
    try {
      const result = await rt.candles.flushPending(await rt.db());
      report.written += result.written;
      if (result.flushed > 0) {
        rt.metrics.candlesWritten.inc(result.written);
        rt.status.lastFlushAt = new Date();
        rt.outage.candleWriteSucceeded(result.written);
      }
      return;
    } catch (error) {
      rt.metrics.dbErrors.inc({ operation: "saveCandles" });
      rt.outage.candleWriteFailed(error, rt.candles.pendingCount);
      await waitToRetry(rt, attempt, signal);
    }
  }
}

/** `read`'s value, asked again while the database is away (one outage story); undefined when `signal` stops the wait. */
async function untilAnswered<T>(rt: BotRuntime, operation: string, signal: AbortSignal, read: (db: Database) => Promise<T>): Promise<T | undefined> {
  for (let attempt = 0; !signal.aborted; attempt += 1) {
    try {
      const value = await read(await rt.db());
      rt.outage.readSucceeded();
      return value;
    } catch (error) {
      rt.outage.readFailed(operation, error);
      await waitToRetry(rt, attempt, signal);
    }
  }
  return undefined;
}

/** Waiting for the database is the work now: it counts as progress (the loop is not stalled). */
async function waitToRetry(rt: BotRuntime, attempt: number, signal: AbortSignal): Promise<void> {
  rt.status.lastProgressAt = new Date();
  await pause(Math.min(RETRY_MOST_MS, RETRY_FIRST_MS * 2 ** attempt), signal);
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
    stop(report: BackfillReport, until: number) {
      bar?.stop();
      const fields = { series: report.series, fetched: report.fetched, written: report.written, failed: report.failed.length, until: new Date(until).toISOString() };
      if (report.stopped) logger.info("backfill stopped before it finished; the next run continues it", fields);
      else logger.info("backfill finished", fields);
    },
  };
}

/**
 * Start-up: loads what is missing of the last HISTORY_CANDLES candles of every series: now's
 * candle and the HISTORY_CANDLES − 1 before it, so a series holding them is complete.
 */
export function backfillRecentHistory(rt: BotRuntime, tty: boolean, signal?: AbortSignal): Promise<BackfillReport> {
  const now = rt.market.now();
  const startFor = (tf: Timeframe) => alignToTimeframe(now, tf) - (rt.config.tick.historyCandles - 1) * TIMEFRAME_MS[tf];
  return backfill(rt, { startFor, tty, ...(signal ? { signal } : {}) });
}
