import { TIMEFRAME_MS, alignToTimeframe, type Timeframe } from "@candlekeep/core";

/**
 * What to fetch to complete a series' history: the ranges of candles missing from what is stored,
 * and only those. Pure planning: the callers read what is stored (the audit's state, the known gaps,
 * the coverage) and fetch the ranges (backfill.ts).
 */

/** Where a range lies: before the first stored candle, between two stored ones, or after the newest (a whole empty series too). */
export type RangeKind = "before" | "gap" | "after";

/** Open times of a series' candles, both ends included. */
export interface Span {
  from: number;
  to: number;
}

export interface FetchRange extends Span {
  symbol: string;
  timeframe: Timeframe;
  kind: RangeKind;
}

/** A range of a series that is missing: a known gap, possibly one the exchange has no candles for. */
export interface MissingSpan extends Span {
  symbol: string;
  timeframe: Timeframe;
  /** The exchange has no candles there (recorded once): never fetched again. */
  unavailable: boolean;
}

/** A series' stored history as the last audit saw it. */
export interface AuditedSeries {
  symbol: string;
  timeframe: Timeframe;
  firstOpenTime: number;
  /** The newest stored closed candle: everything from firstOpenTime up to it is stored or a known gap. */
  auditedUntil: number;
}

/** A series' stored ends and the candles missing in its recent window (candleCoverage). */
export interface CoveredSeries {
  symbol: string;
  timeframe: Timeframe;
  firstOpenTime: number | null;
  lastOpenTime: number | null;
  recentGaps: number;
}

/** Candles a span holds on `timeframe`'s grid. */
export function candlesIn(span: Span, timeframe: Timeframe): number {
  return span.to < span.from ? 0 : Math.floor((span.to - span.from) / TIMEFRAME_MS[timeframe]) + 1;
}

/** The parts of `span` that none of `covered` holds, oldest first (all on `timeframe`'s grid). */
export function subtractSpans(span: Span, covered: readonly Span[], timeframe: Timeframe): Span[] {
  const step = TIMEFRAME_MS[timeframe];
  let pieces: Span[] = span.to < span.from ? [] : [span];
  for (const cut of covered) {
    pieces = pieces.flatMap((piece) => {
      if (cut.to < piece.from || cut.from > piece.to) return [piece];
      const kept: Span[] = [];
      if (cut.from > piece.from) kept.push({ from: piece.from, to: cut.from - step });
      if (cut.to < piece.to) kept.push({ from: cut.to + step, to: piece.to });
      return kept;
    });
  }
  return pieces;
}

const seriesKey = (symbol: string, timeframe: Timeframe) => `${symbol} ${timeframe}`;

/** Known gaps by series. */
function gapsBySeries(gaps: readonly MissingSpan[]): Map<string, MissingSpan[]> {
  const bySeries = new Map<string, MissingSpan[]>();
  for (const gap of gaps) {
    const key = seriesKey(gap.symbol, gap.timeframe);
    const list = bySeries.get(key);
    if (list) list.push(gap);
    else bySeries.set(key, [gap]);
  }
  return bySeries;
}

/** `span` of a series as ranges of `kind`, less what the exchange is known not to have. */
function rangesOf(symbol: string, timeframe: Timeframe, kind: RangeKind, span: Span, unavailable: readonly Span[]): FetchRange[] {
  return subtractSpans(span, unavailable, timeframe).map((piece) => ({ symbol, timeframe, kind, ...piece }));
}

export interface RepairPlanInput {
  symbols: readonly string[];
  timeframes: readonly Timeframe[];
  /** Every stored series, as the audit just left it. */
  audited: readonly AuditedSeries[];
  /** Known gaps of those series, the unavailable ones included. */
  gaps: readonly MissingSpan[];
  now: number;
  /**
   * The oldest open time wanted per timeframe (`backfill --days N`): what is missing before the
   * first stored candle is fetched too, and an empty series whole. Without it, only what lies
   * between and after stored candles.
   */
  startFor?: (timeframe: Timeframe) => number;
  /** Closed candles after the newest stored too (a running bot's ticks fetch those themselves). */
  after: boolean;
  /** The oldest open time CANDLE_RETENTION_DAYS keeps per timeframe (undefined: all): nothing before it is fetched, as the next retention pass would delete it. */
  firstKept?: (timeframe: Timeframe) => number | undefined;
}

/** `ranges` less what lies before the oldest candle the retention keeps on their timeframe. */
function withinRetention(ranges: FetchRange[], firstKept: RepairPlanInput["firstKept"]): FetchRange[] {
  if (!firstKept) return ranges;
  return ranges.flatMap((range) => {
    const first = firstKept(range.timeframe);
    if (first === undefined || range.from >= first) return [range];
    return range.to < first ? [] : [{ ...range, from: first }];
  });
}

/**
 * The ranges a repair fetches: per series, what is missing before its first stored candle (back
 * to startFor), each known gap, and the closed candles after its newest stored one, less the
 * ranges the exchange is known not to have and what the retention would delete.
 */
export function repairRanges(input: RepairPlanInput): FetchRange[] {
  const audited = new Map(input.audited.map((series) => [seriesKey(series.symbol, series.timeframe), series]));
  const gaps = gapsBySeries(input.gaps);
  const ranges: FetchRange[] = [];
  for (const symbol of input.symbols) {
    for (const timeframe of input.timeframes) {
      const step = TIMEFRAME_MS[timeframe];
      const lastClosed = alignToTimeframe(input.now, timeframe) - step;
      const start = input.startFor ? Math.ceil(input.startFor(timeframe) / step) * step : undefined;
      const known = gaps.get(seriesKey(symbol, timeframe)) ?? [];
      const unavailable = known.filter((gap) => gap.unavailable);
      const series = audited.get(seriesKey(symbol, timeframe));
      if (!series) {
        if (start !== undefined) ranges.push(...rangesOf(symbol, timeframe, "after", { from: start, to: lastClosed }, unavailable));
        continue;
      }
      if (start !== undefined) ranges.push(...rangesOf(symbol, timeframe, "before", { from: start, to: series.firstOpenTime - step }, unavailable));
      for (const gap of known) if (!gap.unavailable) ranges.push({ symbol, timeframe, kind: "gap", from: gap.from, to: gap.to });
      if (input.after) ranges.push(...rangesOf(symbol, timeframe, "after", { from: series.auditedUntil + step, to: lastClosed }, unavailable));
    }
  }
  return withinRetention(ranges, input.firstKept);
}

export interface ResumePlan {
  /** Fetched before the first tick: at most the last `historyCandles` of each series, and its forming candle. */
  ranges: FetchRange[];
  /** Series missing more than the window: the older part is a gap once the window is stored, repaired in the background. */
  behind: number;
}

/**
 * Start-up: each series from its newest stored candle (it may have been forming) up to now. A
 * series missing more than `historyCandles` gets the last `historyCandles` now, what the strategy
 * needs, and its older part later (a gap the background repair fills). An empty series gets the
 * window; so does the part of the window before a short history's first candle (HISTORY_CANDLES
 * raised); a window with candles missing between stored ones is fetched again (one page: which
 * ones are missing is the audit's to say, later). Ranges the exchange is known not to have are left out.
 */
export function resumeRanges(input: { coverage: readonly CoveredSeries[]; unavailable: readonly MissingSpan[]; historyCandles: number; now: number }): ResumePlan {
  const unavailable = gapsBySeries(input.unavailable);
  const ranges: FetchRange[] = [];
  let behind = 0;
  for (const series of input.coverage) {
    const { symbol, timeframe, firstOpenTime: first, lastOpenTime: last } = series;
    const step = TIMEFRAME_MS[timeframe];
    const current = alignToTimeframe(input.now, timeframe);
    const window: Span = { from: current - (input.historyCandles - 1) * step, to: current };
    const absent = unavailable.get(seriesKey(symbol, timeframe)) ?? [];
    const add = (kind: RangeKind, span: Span) => ranges.push(...rangesOf(symbol, timeframe, kind, span, absent));
    if (first === null || last === null || last < window.from - step) {
      if (last !== null) behind += 1;
      add("after", window);
      continue;
    }
    add("after", { from: last, to: current });
    if (first > window.from) add("before", { from: window.from, to: first - step });
    const stored: Span = { from: Math.max(first, window.from), to: last };
    const knownAbsent = absent.reduce((sum, gap) => sum + candlesIn({ from: Math.max(gap.from, stored.from), to: Math.min(gap.to, stored.to) }, timeframe), 0);
    if (series.recentGaps > knownAbsent) add("gap", { from: stored.from, to: last - step });
  }
  return { ranges, behind };
}
