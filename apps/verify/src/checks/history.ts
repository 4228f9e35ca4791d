import { recentWindowStart, type Logger } from "@candlekeep/core";
import { auditHistory, listCandleGaps, seriesAuditStates, type CandleGap } from "@candlekeep/db";
import { listSome, plural, type Check } from "../check";

/**
 * Every tracked series' whole stored history checked for holes, by the
 * incremental history audit (the first run reads every candle, later runs what
 * is new). Reports the gaps older than the coverage check's recent window
 * (--gap-window), which that check counts, with the backfill that repairs them;
 * ranges the exchange has no data for are listed, not warned about. Runs on
 * DATABASE_URL's database even with a read replica: the audit records what it
 * read (series_audit, candle_gaps), and a replica cannot be written. --full-audit
 * reads every stored candle again (candles removed behind the audited range).
 */

const DAY_MS = 86_400_000;
/** The furthest `backfill --days` reaches back (the bot's own limit). */
const BACKFILL_MAX_DAYS = 3650;
/** A long audit logs a line each time it passes another 5 % of its work. */
const PROGRESS_STEP_PERCENT = 5;

const iso = (ms: number) => new Date(ms).toISOString().replace(/:\d\d\.\d{3}Z$/, "Z");
const describeGap = (gap: CandleGap) => `${gap.symbol} ${gap.timeframe} ${iso(gap.fromTime)} … ${iso(gap.toTime)} (${gap.missing} missing)`;
const gapData = (gap: CandleGap) => ({ symbol: gap.symbol, timeframe: gap.timeframe, from: new Date(gap.fromTime).toISOString(), to: new Date(gap.toTime).toISOString(), missing: gap.missing });

/**
 * The audit's onProgress: a line each time a long audit passes another 5 % of
 * the candle slots it checks. An audit done in one read (every repeat, and a
 * first audit of a short history) logs nothing.
 */
export function auditProgress(logger: Logger, exchange: string): (done: number, total: number) => void {
  let reported = 0;
  return (done, total) => {
    const percent = Math.floor((100 * done) / Math.max(1, total));
    if (done >= total || percent < reported + PROGRESS_STEP_PERCENT) return;
    reported = percent - (percent % PROGRESS_STEP_PERCENT);
    logger.info(`history audit: ${done} of ${total} candle slots checked (${percent} %)`, { exchange, done, total, percent });
  };
}

/** `backfill --days N` reaching back to `oldest`: startFor(tf) = now − N days − one candle. */
function backfillDays(oldest: number, nowMs: number): number {
  return Math.max(1, Math.ceil((nowMs - oldest) / DAY_MS));
}

export const historyCheck: Check = async ({ db, config, nowMs, logger, trackedCoins }) => {
  const tracked = await trackedCoins();
  const { timeframes, gapWindowCandles } = config;
  if (tracked.symbols.length === 0) return { status: "warn", summary: `no coins to check: ${tracked.source}` };
  const selection = { exchange: config.exchange, symbols: tracked.symbols, timeframes };
  const audit = await auditHistory(db, { ...selection, full: config.fullAudit, onProgress: auditProgress(logger, config.exchange) });
  const known = await listCandleGaps(db, { ...selection, includeUnavailable: true });
  const states = await seriesAuditStates(db, selection);

  const old = known.filter((gap) => !gap.unavailable && gap.fromTime < recentWindowStart(nowMs, gap.timeframe, gapWindowCandles));
  const unavailable = known.filter((gap) => gap.unavailable);
  const missing = old.reduce((sum, gap) => sum + gap.missing, 0);
  const oldest = old.reduce((min, gap) => Math.min(min, gap.fromTime), Number.POSITIVE_INFINITY);
  const days = old.length > 0 ? backfillDays(oldest, nowMs) : undefined;
  const repair = days === undefined ? undefined : `pnpm --filter bot start -- backfill --days ${Math.min(days, BACKFILL_MAX_DAYS)}`;

  const scope = `${plural(tracked.symbols.length, "coin")} × ${plural(timeframes.length, "timeframe")} on ${config.exchange}`;
  const read = `${plural(audit.series, "series", "series")} audited, ${plural(audit.scannedCandles, "candle")} read in ${audit.ms} ms`;
  const details = [`coins: ${tracked.source}`, read];
  const gappySeries = new Set(old.map((gap) => `${gap.symbol} ${gap.timeframe}`)).size;
  if (old.length > 0) {
    details.push(`gaps older than the last ${gapWindowCandles} candles (${plural(old.length, "range")}, ${missing} candles missing in ${plural(gappySeries, "series", "series")}): ${listSome(old.map(describeGap), 10, "; ")}`);
    const reach = days !== undefined && days > BACKFILL_MAX_DAYS ? ` (backfill reaches back ${BACKFILL_MAX_DAYS} days at most: gaps before ${iso(nowMs - BACKFILL_MAX_DAYS * DAY_MS)} stay)` : ` (reaches back to the oldest gap, ${iso(oldest)})`;
    details.push(`repair: ${repair}${reach}`);
  }
  if (unavailable.length > 0) {
    details.push(`unavailable at the exchange, not fetched again (${plural(unavailable.length, "range")}): ${listSome(unavailable.map((gap) => describeGap(gap).replace(/ missing\)$/, " candles)")), 10, "; ")}`);
  }
  const data = {
    exchange: config.exchange,
    coins: tracked.symbols.length,
    source: tracked.source,
    timeframes,
    gapWindowCandles,
    audit: { series: audit.series, scannedCandles: audit.scannedCandles, ms: audit.ms },
    gaps: old.map(gapData),
    missingCandles: missing,
    repair: repair ?? null,
    unavailable: unavailable.map(gapData),
    series: states.map((s) => ({ symbol: s.symbol, timeframe: s.timeframe, firstOpenTime: new Date(s.firstOpenTime).toISOString(), completeUpTo: new Date(s.auditedUntil).toISOString() })),
  };

  const unavailableNote = unavailable.length > 0 ? `; ${plural(unavailable.length, "range")} unavailable at the exchange` : "";
  if (old.length > 0) {
    return {
      status: "warn",
      summary: `${scope}: ${plural(old.length, "gap")} older than the last ${gapWindowCandles} candles, ${missing} candles missing in ${plural(gappySeries, "series", "series")}${unavailableNote} — repair: ${repair}`,
      details,
      data,
    };
  }
  return { status: "pass", summary: `${scope}: no gaps older than the last ${gapWindowCandles} candles in the ${plural(audit.series, "series", "series")} audited${unavailableNote}`, details, data };
};
