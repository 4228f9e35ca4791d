import { TIMEFRAME_MS, type Timeframe } from "@candlekeep/core";
import type { Database } from "./connect";

export interface SeriesCoverage {
  exchange: string;
  symbol: string;
  timeframe: Timeframe;
  count: number;
  firstOpenTime: number | null;
  lastOpenTime: number | null;
  /** Candles missing between the start of the recent window (or the first candle) and the last candle. */
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
  count: string | number;
  first_ms: string | number | null;
  last_ms: string | number | null;
  recent_count: string | number;
  recent_first_ms: string | number | null;
}

const toNumber = (value: string | number | null) => (value === null ? null : Number(value));

/**
 * Per-series candle counts, first/last times and recent gaps for every requested
 * (symbol × timeframe), including series with no candles at all, in one grouped
 * query: the primary key index serves each series.
 */
export async function candleCoverage(db: Pick<Database, "sql">, query: CoverageQuery): Promise<SeriesCoverage[]> {
  const nowMs = query.nowMs ?? Date.now();
  const windowStart = query.timeframes.map((tf) => nowMs - query.windowCandles * TIMEFRAME_MS[tf]);
  const result = await db.sql.query<CoverageRow>(
    `SELECT s.symbol, t.timeframe,
            count(c.open_time) AS count,
            (extract(epoch from min(c.open_time)) * 1000)::int8 AS first_ms,
            (extract(epoch from max(c.open_time)) * 1000)::int8 AS last_ms,
            count(c.open_time) FILTER (WHERE c.open_time >= timestamptz 'epoch' + t.window_start * interval '1 millisecond') AS recent_count,
            (extract(epoch from min(c.open_time) FILTER (WHERE c.open_time >= timestamptz 'epoch' + t.window_start * interval '1 millisecond')) * 1000)::int8 AS recent_first_ms
     FROM unnest($2::text[]) AS s(symbol)
     CROSS JOIN unnest($3::text[], $4::int8[]) AS t(timeframe, window_start)
     LEFT JOIN candles c ON c.exchange = $1 AND c.symbol = s.symbol AND c.timeframe = t.timeframe
     GROUP BY s.symbol, t.timeframe
     ORDER BY s.symbol, t.timeframe`,
    [query.exchange, [...query.symbols], [...query.timeframes], windowStart],
  );
  return result.rows.map((row) => {
    const count = Number(row.count);
    const last = toNumber(row.last_ms);
    const recentFirst = toNumber(row.recent_first_ms);
    const recentCount = Number(row.recent_count);
    const step = TIMEFRAME_MS[row.timeframe];
    const expected = last === null || recentFirst === null ? 0 : Math.round((last - recentFirst) / step) + 1;
    return {
      exchange: query.exchange,
      symbol: row.symbol,
      timeframe: row.timeframe,
      count,
      firstOpenTime: toNumber(row.first_ms),
      lastOpenTime: last,
      recentGaps: Math.max(0, expected - recentCount),
    };
  });
}
