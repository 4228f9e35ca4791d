import { performance } from "node:perf_hooks";
import { TIMEFRAMES, type Timeframe } from "@candlekeep/core";
import { removeCandles, removeDecisionTraces, vacuumTable, type RetentionTable } from "@candlekeep/db";
import { everyIntervalAfterFirstTick } from "../background";
import type { BotRuntime } from "../runtime";
import { firstKeptCandle, traceCutoff } from "./cutoffs";

/** How often the running bot removes what its retention no longer keeps. */
export const RETENTION_INTERVAL_MS = 3_600_000;
const PROGRESS_LOG_MS = 5000;
/**
 * Rows deleted from a table (over passes) before it is vacuumed: the space waiting for reuse stays
 * small (~4 MB of traces) without a VACUUM every hour on a bot that deletes a few hundred rows an hour.
 */
const VACUUM_AFTER_ROWS = 10_000;

/** What one pass removed. */
export interface RetentionReport {
  /** Decision traces before this time (ISO) were removed; undefined: EVENT_RETENTION_DAYS=0. */
  tracesBefore: string | undefined;
  tracesRemoved: number;
  /** Candles removed per timeframe named in CANDLE_RETENTION_DAYS. */
  candlesRemoved: Partial<Record<Timeframe, number>>;
  vacuumed: RetentionTable[];
  ms: number;
  /** The shutdown ended it; the next pass continues it. */
  stopped: boolean;
}

/** Rows deleted from each table since it was last vacuumed; kept across passes. */
export type Unvacuumed = Record<RetentionTable, number>;

/**
 * The running bot's retention in the background: after the first tick and then every `intervalMs`, a
 * pass removes the decision traces older than EVENT_RETENTION_DAYS and the candles older than
 * CANDLE_RETENTION_DAYS, and says what it removed in one line. Ends when `signal` aborts (between
 * two statements). Nothing to do (0 and unset) ends it at once.
 */
export async function keepRetention(rt: BotRuntime, options: { intervalMs?: number; signal: AbortSignal }): Promise<void> {
  const { signal } = options;
  const { retention } = rt.config;
  if (retention.traceDays === 0 && Object.keys(retention.candleDays).length === 0) return;
  const unvacuumed: Unvacuumed = { decision_traces: 0, candles: 0 };
  const every = { intervalMs: options.intervalMs ?? RETENTION_INTERVAL_MS, signal, failure: "retention pass failed; it runs again in an hour" };
  await everyIntervalAfterFirstTick(rt, every, async () => {
    const report = await retentionPass(rt, { signal, unvacuumed });
    rt.logger.info(report.stopped ? "retention pass stopped by the shutdown; the next start continues it" : "retention pass", { ...report });
  });
}

/**
 * One pass: the traces, then each named timeframe's candles (their audit state with them), in
 * statements of a few thousand rows; then a VACUUM of each table that has had VACUUM_AFTER_ROWS
 * deleted since its last one. A long pass (the first after a year without retention) logs its progress.
 */
export async function retentionPass(rt: BotRuntime, options: { signal: AbortSignal; unvacuumed: Unvacuumed }): Promise<RetentionReport> {
  const { signal, unvacuumed } = options;
  const db = await rt.db();
  const now = rt.market.now();
  const started = performance.now();
  let lastLog = Date.now();
  const progress = (what: string) => (removed: number) => {
    if (Date.now() - lastLog < PROGRESS_LOG_MS) return;
    lastLog = Date.now();
    rt.logger.info("retention progress", { removing: what, removed });
  };
  const report: RetentionReport = { tracesBefore: undefined, tracesRemoved: 0, candlesRemoved: {}, vacuumed: [], ms: 0, stopped: false };

  const before = traceCutoff(rt.config.retention, now);
  if (before !== undefined) {
    report.tracesBefore = new Date(before).toISOString();
    const removed = await removeDecisionTraces(db, { exchange: rt.market.id, before, signal, onProgress: progress("decision traces") });
    report.tracesRemoved = removed.rows;
    unvacuumed.decision_traces += removed.rows;
    report.stopped = removed.stopped;
  }
  for (const timeframe of TIMEFRAMES) {
    const firstKept = firstKeptCandle(rt.config.retention, timeframe, now);
    if (firstKept === undefined || report.stopped) continue;
    const removed = await removeCandles(db, { exchange: rt.market.id, timeframe, before: firstKept, signal, onProgress: progress(`${timeframe} candles`) });
    report.candlesRemoved[timeframe] = removed.rows;
    unvacuumed.candles += removed.rows;
    report.stopped = removed.stopped;
  }
  for (const table of ["decision_traces", "candles"] as const) {
    if (unvacuumed[table] < VACUUM_AFTER_ROWS || signal.aborted) continue;
    await vacuumTable(db, table);
    unvacuumed[table] = 0;
    report.vacuumed.push(table);
  }
  report.ms = Math.round(performance.now() - started);
  return report;
}
