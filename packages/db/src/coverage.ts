import { TIMEFRAME_MS, recentWindowStart, type Timeframe } from "@candlekeep/core";
import type { Database } from "./connect";
import { readWithoutJit } from "./sql";

export interface SeriesCoverage {
  exchange: string;
  symbol: string;
  timeframe: Timeframe;
  /** null (with lastOpenTime) when the series has no candles. */
  firstOpenTime: number | null;
  lastOpenTime: number | null;
  /**
   * Candles missing between the start of the recent window (or the first candle,
   * when the series starts inside the window) and the last candle.
   */
  recentGaps: number;
}

export interface CoverageQuery {
  exchange: string;
  symbols: readonly string[];
  timeframes: readonly Timeframe[];
  /** The recent window in which gaps are counted ends now and lasts this many candles. */
  windowCandles: number;
  nowMs?: number;
}

interface CoverageRow {
  symbol: string;
  timeframe: Timeframe;
  first_ms: string | number | null;
  last_ms: string | number | null;
  recent_count: string | number;
}

const toNumber = (value: string | number | null) => (value === null ? null : Number(value));

// Per series, three index range scans on the primary key through LATERAL: its
// first and its last candle (one index entry each) and the candles of the recent
// window. So the query reads a bounded number of entries per series however long
// the history grows (counting every stored candle grew with it, on every verify
// run and every dashboard refresh). Index scans keep the plan fast
// even before PostgreSQL has statistics for freshly loaded rows (a grouped LEFT
// JOIN took seconds then); the recent count's aggregate always yields a row, so
// empty series come back too, with null ends.
const SERIES_CANDLES = "FROM candles WHERE exchange = $1 AND symbol = s.symbol AND timeframe = t.timeframe";
const COVERAGE_SQL = `SELECT s.symbol, t.timeframe, f.first_ms, l.last_ms, r.recent_count
FROM unnest($2::text[]) AS s(symbol)
CROSS JOIN unnest($3::text[], $4::int8[]) AS t(timeframe, window_start)
LEFT JOIN LATERAL (SELECT (extract(epoch from open_time) * 1000)::int8 AS first_ms ${SERIES_CANDLES} ORDER BY open_time LIMIT 1) AS f ON true
LEFT JOIN LATERAL (SELECT (extract(epoch from open_time) * 1000)::int8 AS last_ms ${SERIES_CANDLES} ORDER BY open_time DESC LIMIT 1) AS l ON true
CROSS JOIN LATERAL (
  SELECT count(*) AS recent_count ${SERIES_CANDLES}
    AND open_time >= timestamptz 'epoch' + t.window_start * interval '1 millisecond'
) AS r
ORDER BY s.symbol, t.timeframe`;

/**
 * Per-series first/last candle times and recent gaps for every requested
 * (symbol × timeframe), including series with no candles at all, in one query:
 * the primary key index serves each series.
 */
export async function candleCoverage(db: Pick<Database, "kind" | "sql" | "session">, query: CoverageQuery): Promise<SeriesCoverage[]> {
  const nowMs = query.nowMs ?? Date.now();
  // A symbol or timeframe asked for twice would join its candles twice.
  const symbols = [...new Set(query.symbols)];
  const timeframes = [...new Set(query.timeframes)];
  // The window's first candle: now's candle is its last, so it opens windowCandles − 1 candles before that.
  const windowStartFor = (tf: Timeframe) => recentWindowStart(nowMs, tf, query.windowCandles);
  const params = [query.exchange, symbols, timeframes, timeframes.map(windowStartFor)];
  const rows = await readWithoutJit<CoverageRow>(db, COVERAGE_SQL, params);
  return rows.map((row) => {
    const first = toNumber(row.first_ms);
    const last = toNumber(row.last_ms);
    const step = TIMEFRAME_MS[row.timeframe];
    // Expected candles run from the window's start, or from the first candle if the series began later.
    const from = first === null ? null : Math.max(first, windowStartFor(row.timeframe));
    const expected = last === null || from === null || last < from ? 0 : Math.round((last - from) / step) + 1;
    return {
      exchange: query.exchange,
      symbol: row.symbol,
      timeframe: row.timeframe,
      firstOpenTime: first,
      lastOpenTime: last,
      recentGaps: Math.max(0, expected - Number(row.recent_count)),
    };
  });
}
