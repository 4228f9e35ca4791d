import { setImmediate as nextTurn } from "node:timers/promises";
import { SingleBar } from "cli-progress";
import { TIMEFRAME_MS, describeError, type Logger, type Timeframe } from "@candlekeep/core";
import type { Database } from "@candlekeep/db";
import type { FetchRange } from "./history/ranges";
import { settleAll } from "./limit";
import { pause } from "./loop";
import type { BotRuntime } from "./runtime";

export interface BackfillOptions {
  /** The ranges to fetch, planned from what the database holds at `now` (asked again while it is away). */
  plan: (db: Database, now: number) => Promise<FetchRange[]>;
  /** Show a terminal progress bar (else periodic log lines). */
  tty: boolean;
  /**
   * Stops the backfill (the process is stopping): no page is fetched after it, a wait for the
   * database ends, and what is pending is left to the shutdown's final write.
   */
  signal?: AbortSignal;
  /** Ranges fetched at once; CONCURRENCY by default. */
  concurrency?: number;
  /** Names the work in its log lines ("backfill" by default). */
  name?: string;
}

/** A stretch of a series the exchange has no candles for: its answers went on past it. */
export interface UnavailableRange {
  symbol: string;
  timeframe: Timeframe;
  from: number;
  to: number;
}

export interface BackfillReport {
  /** Series planned for (every tracked coin × timeframe). */
  series: number;
  /** Ranges fetched (planned). */
  ranges: number;
  /** Candles the exchange answered with. */
  fetched: number;
  written: number;
  /** Stretches of the ranges the exchange skipped (a listing date, an outage of its own). */
  unavailable: UnavailableRange[];
  failed: { symbol: string; timeframe: Timeframe; error: string }[];
  /** Stopped by `signal` before every range was fetched. */
  stopped: boolean;
}

/** Largest page asked for; exchanges cap OHLCV pages around 500-1500 (a smaller answer is continued). */
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
 * Fetches the planned ranges (history/ranges.ts plans them: only what is missing), each page's size
 * fitted to what is left of its range, so a gap of k candles costs about k candles fetched.
 * A stretch the exchange's answers skip (its listing came later, an outage of its own) is
 * reported as unavailable; the caller records it, so it is not asked for again.
 *
 * A database outage is waited out, as the ticks do: fetched candles stay pending,
 * every range waits for the write (the pending batch stays bounded), the outage
 * is one story in the log (rt.outage), and the backfill resumes where it was once
 * a write succeeds. A range fails only on the exchange's errors.
 */
export async function backfill(rt: BotRuntime, options: BackfillOptions): Promise<BackfillReport> {
  const signal = options.signal ?? new AbortController().signal;
  const name = options.name ?? "backfill";
  const report: BackfillReport = { series: rt.symbols.length * rt.timeframes.length, ranges: 0, fetched: 0, written: 0, unavailable: [], failed: [], stopped: false };
  const now = rt.market.now();
  const ranges = await untilAnswered(rt, "reading the stored candles' coverage", signal, (db) => options.plan(db, now));
  if (ranges === undefined) return { ...report, stopped: true };
  report.ranges = ranges.length;

  const progress = createProgress(name, options.tty, ranges.length, rt.logger);
  const writes = backgroundWrites(rt, report, signal);

  await settleAll(ranges, options.concurrency ?? rt.config.tick.concurrency, async (range) => {
    if (signal.aborted) return;
    try {
      await fetchRange(rt, range, report, writes, signal);
    } catch (error) {
      report.failed.push({ symbol: range.symbol, timeframe: range.timeframe, error: describeError(error) });
      rt.logger.warn(`${name} of a series failed`, { symbol: range.symbol, timeframe: range.timeframe, error: describeError(error) });
    } finally {
      rt.status.lastProgressAt = new Date();
      progress.advance(report);
    }
  });
  await writes.finish();
  report.stopped = signal.aborted;
  progress.stop(report, now);
  return report;
}

/**
 * Fetches one range page by page, each asking for no more than what is left of it, and notes the
 * stretches the exchange skipped: a candle it answered with, later than the one expected, shows it
 * has none before (a stretch at the end with no later answer is not known to be missing: it may come).
 */
async function fetchRange(rt: BotRuntime, range: FetchRange, report: BackfillReport, writes: BackgroundWrites, signal: AbortSignal): Promise<void> {
  const step = TIMEFRAME_MS[range.timeframe];
  let cursor = range.from;
  while (!signal.aborted && cursor <= range.to) {
    const limit = Math.min(PAGE, Math.floor((range.to - cursor) / step) + 1);
    const page = (await rt.market.fetchCandles(range.symbol, range.timeframe, cursor, limit)).filter((candle) => candle.openTime >= cursor);
    // Candles past the range (the exchange skipped to them) are stored already, or the next range's.
    const added = rt.candles.add(range.symbol, range.timeframe, page.filter((candle) => candle.openTime <= range.to));
    report.fetched += page.length;
    if (added.deferred > 0) {
      // The pending batch was full: wait for a write, then fetch the same page again (its deferred candles fit now).
      await writes.full();
      continue;
    }
    await writes.afterPage();
    let expected = cursor;
    for (const candle of page) {
      if (expected > range.to) break;
      if (candle.openTime > expected) report.unavailable.push({ symbol: range.symbol, timeframe: range.timeframe, from: expected, to: Math.min(candle.openTime - step, range.to) });
      expected = candle.openTime + step;
    }
    const last = page.at(-1);
    if (!last) break;
    cursor = last.openTime + step;
  }
}

type BackgroundWrites = ReturnType<typeof backgroundWrites>;

/**
 * The backfill's writes, in the background of its fetching (which a write used to stop: the bot
 * and PostgreSQL took turns, half of a backfill's time): one at a time, started once WRITE_BATCH
 * candles wait; a fetch waits for the running one once MOST_UNWRITTEN candles are unwritten, and
 * so through an outage too (writePending waits it out).
 */
function backgroundWrites(rt: BotRuntime, report: BackfillReport, signal: AbortSignal) {
  let writing: Promise<void> | undefined;
  const write = (): Promise<void> =>
    (writing ??= writePending(rt, report, signal).finally(() => {
      writing = undefined;
      // Whatever queued meanwhile goes next: the database waits for no fetch (a few percent of a backfill).
      if (!signal.aborted && rt.candles.pendingCount >= WRITE_ON_MIN) void write();
    }));
  return {
    /** After a page is queued: starts a write, or waits for the running one when too much is unwritten. */
    async afterPage(): Promise<void> {
      const unwritten = rt.candles.pendingCount;
      if (unwritten >= WRITE_BATCH && writing === undefined) void write();
      else if (unwritten >= MOST_UNWRITTEN) await writing;
      // A fetch that answers at once (the sim) would run the next one before the write's I/O gets a turn.
      if (writing !== undefined) await nextTurn();
    },
    /** The pending batch is full (MAX_PENDING_CANDLES): the running write, or a new one. */
    full: (): Promise<void> => write(),
    /** The fetching is over: the running write, then what is left (unless stopped: the shutdown writes it). */
    async finish(): Promise<void> {
      await writing;
      if (!signal.aborted) await write();
    },
  };
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
export async function untilAnswered<T>(rt: BotRuntime, operation: string, signal: AbortSignal, read: (db: Database) => Promise<T>): Promise<T | undefined> {
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

function createProgress(name: string, tty: boolean, total: number, logger: Logger) {
  let done = 0;
  let lastLog = 0;
  const bar = tty ? new SingleBar({ format: `${name} [{bar}] {value}/{total} ranges | {fetched} candles | {eta_formatted} left`, hideCursor: true }) : undefined;
  bar?.start(total, 0, { fetched: 0 });
  return {
    advance(report: BackfillReport) {
      done += 1;
      bar?.update(done, { fetched: report.fetched });
      if (!bar && (Date.now() - lastLog >= PROGRESS_LOG_MS || done === total)) {
        lastLog = Date.now();
        logger.info(`${name} progress`, { done, total, percent: Math.round((done / Math.max(1, total)) * 100), fetched: report.fetched });
      }
    },
    stop(report: BackfillReport, until: number) {
      bar?.stop();
      const fields = {
        series: report.series,
        ranges: report.ranges,
        fetched: report.fetched,
        written: report.written,
        unavailable: report.unavailable.length,
        failed: report.failed.length,
        until: new Date(until).toISOString(),
      };
      if (report.stopped) logger.info(`${name} stopped before it finished; the next run continues it`, fields);
      else logger.info(`${name} finished`, fields);
    },
  };
}
