import { TIMEFRAME_MS, type Timeframe } from "@candlekeep/core";
import { auditHistory, seriesAuditStates, type Database, type HistoryAuditResult } from "@candlekeep/db";
import { backfill, untilAnswered, type BackfillReport } from "../backfill";
import { firstKeptCandle } from "../retention/cutoffs";
import type { BotRuntime } from "../runtime";
import { knownGaps, recordUnavailable } from "./gaps";
import { candlesIn, repairRanges, type RangeKind } from "./ranges";

const DAY_MS = 86_400_000;

/** `backfill --days N`'s startFor: N days before `now`, and one candle more, so the candle open then is whole. */
export function daysBack(now: number, days: number): (timeframe: Timeframe) => number {
  return (timeframe) => now - days * DAY_MS - TIMEFRAME_MS[timeframe];
}

export interface RepairOptions {
  /** `backfill --days N`: the oldest open time wanted per timeframe (what lies before the first stored candle, and empty series whole). */
  startFor?: (timeframe: Timeframe) => number;
  /** Closed candles after the newest stored too (`backfill`); a running bot's ticks fetch those themselves. */
  after: boolean;
  tty: boolean;
  signal?: AbortSignal;
  /** Ranges fetched at once (CONCURRENCY by default). */
  concurrency?: number;
  /** Names the work in its log lines ("backfill" by default). */
  name?: string;
}

/** What a repair found and did: `backfill --json` prints it. */
export interface RepairReport {
  series: number;
  /** The audit before the repair; undefined when stopped before it answered. */
  audit: Pick<HistoryAuditResult, "scannedCandles" | "gaps" | "missingCandles" | "ms"> | undefined;
  rangesFound: Record<RangeKind, number> & { total: number };
  candlesFetched: number;
  candlesStored: number;
  /** Stretches the exchange has no candles for, found and recorded now (not fetched again). */
  rangesUnavailable: number;
  candlesUnavailable: number;
  /** Gaps still missing after the repair (the exchange failed them, or the repair was stopped), unavailable ones not counted. */
  gapsLeft: number;
  candlesMissingLeft: number;
  failed: BackfillReport["failed"];
  stopped: boolean;
}

const AUDIT_PROGRESS_LOG_MS = 5000;

/** A repair's report as the fields of one log line: what the audit found, what was fetched and stored, what is left. */
export function repairFields(report: RepairReport): Record<string, number | undefined> {
  return {
    series: report.series,
    scannedCandles: report.audit?.scannedCandles,
    auditMs: report.audit?.ms,
    gaps: report.rangesFound.gap,
    candlesMissing: report.audit?.missingCandles,
    rangesBefore: report.rangesFound.before,
    rangesAfter: report.rangesFound.after,
    candlesFetched: report.candlesFetched,
    candlesStored: report.candlesStored,
    rangesUnavailable: report.rangesUnavailable,
    gapsLeft: report.gapsLeft,
    candlesMissingLeft: report.candlesMissingLeft,
    failed: report.failed.length,
  };
}

/**
 * Fetches only what is missing of the tracked series: the audit (incremental: it reads what is new
 * since the last one) finds the gaps between stored candles; the ranges are those gaps, what lies
 * before the first stored candle (back to startFor) and after the newest (when `after`), less what
 * the exchange is known not to have and what CANDLE_RETENTION_DAYS no longer keeps. The written
 * candles are audited again, so the gaps filled leave the list, and the stretches the exchange
 * skipped are recorded as unavailable.
 */
export async function repairHistory(rt: BotRuntime, options: RepairOptions): Promise<RepairReport> {
  const signal = options.signal ?? new AbortController().signal;
  const scope = { exchange: rt.market.id, symbols: rt.symbols, timeframes: rt.timeframes };
  const report: RepairReport = {
    series: rt.symbols.length * rt.timeframes.length,
    audit: undefined,
    rangesFound: { before: 0, gap: 0, after: 0, total: 0 },
    candlesFetched: 0,
    candlesStored: 0,
    rangesUnavailable: 0,
    candlesUnavailable: 0,
    gapsLeft: 0,
    candlesMissingLeft: 0,
    failed: [],
    stopped: true,
  };
  const audit = await untilAnswered(rt, "auditing the stored history", signal, (db) => auditTracked(db, rt, scope));
  if (audit === undefined) return report;
  report.audit = { scannedCandles: audit.scannedCandles, gaps: audit.gaps, missingCandles: audit.missingCandles, ms: audit.ms };

  const fetched = await backfill(rt, {
    tty: options.tty,
    signal,
    ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
    ...(options.name === undefined ? {} : { name: options.name }),
    plan: async (db, now) => {
      const audited = await seriesAuditStates(db, scope);
      const gaps = await knownGaps(db, rt, { unavailableOnly: false });
      const firstKept = (timeframe: Timeframe) => firstKeptCandle(rt.config.retention, timeframe, now);
      const ranges = repairRanges({ ...scope, audited, gaps, now, after: options.after, firstKept, ...(options.startFor ? { startFor: options.startFor } : {}) });
      for (const range of ranges) report.rangesFound[range.kind] += 1;
      report.rangesFound.total = ranges.length;
      return ranges;
    },
  });
  report.candlesFetched = fetched.fetched;
  report.candlesStored = fetched.written;
  report.failed = fetched.failed;
  if (fetched.stopped) return report;

  // The gaps filled leave the list; one filled in part is split, so what the exchange skipped is a gap of its own.
  if ((await untilAnswered(rt, "auditing the stored history", signal, (db) => auditTracked(db, rt, scope))) === undefined) return report;
  report.rangesUnavailable = await recordUnavailable(rt, fetched.unavailable, signal);
  report.candlesUnavailable = fetched.unavailable.slice(0, report.rangesUnavailable).reduce((sum, range) => sum + candlesIn(range, range.timeframe), 0);
  const left = await untilAnswered(rt, "reading the known gaps", signal, (db) => knownGaps(db, rt, { unavailableOnly: false }));
  if (left === undefined) return report;
  const missing = left.filter((gap) => !gap.unavailable);
  report.gapsLeft = missing.length;
  report.candlesMissingLeft = missing.reduce((sum, gap) => sum + candlesIn(gap, gap.timeframe), 0);
  report.stopped = signal.aborted;
  return report;
}

/** The incremental audit of the tracked series, its progress logged every few seconds when it takes long (a first audit of a large history). */
function auditTracked(db: Database, rt: BotRuntime, scope: { exchange: string; symbols: readonly string[]; timeframes: readonly Timeframe[] }): Promise<HistoryAuditResult> {
  let lastLog = Date.now();
  return auditHistory(db, {
    ...scope,
    onProgress: (done, total) => {
      if (Date.now() - lastLog < AUDIT_PROGRESS_LOG_MS) return;
      lastLog = Date.now();
      rt.logger.info("history audit progress", { done, total, percent: Math.round((done / Math.max(1, total)) * 100) });
    },
  });
}
