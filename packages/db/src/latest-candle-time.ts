import { TIMEFRAME_MS, TIMEFRAMES } from "@candlekeep/core";
import type { Database } from "./connect";
import { distinctValuesCte } from "./sql";

/**
 * The latest market time the stored candles of `exchange` show, of any coin and
 * timeframe: a closed candle's close, a forming one's open (epoch ms); undefined
 * when none is stored. The simulated exchange resumes its clock there, so adding
 * a coin never moves it back behind what other coins stored.
 *
 * Distinct symbols are found by skipping through the primary key, and each
 * series' newest candle is one probe of it, so the cost grows with symbols ×
 * timeframes, not with stored candles.
 */
export async function latestCandleTime(db: Pick<Database, "sql">, query: { exchange: string }): Promise<number | undefined> {
  const result = await db.sql.query<{ reached_ms: string | number | null }>(
    `WITH RECURSIVE ${distinctValuesCte("symbols", "candles", "symbol", "exchange = $1")}
     SELECT (extract(epoch from max(newest.reached)) * 1000)::int8 AS reached_ms
     FROM symbols s
     CROSS JOIN unnest($2::text[], $3::int8[]) AS t(timeframe, step_ms)
     CROSS JOIN LATERAL (
       SELECT c.open_time + CASE WHEN c.is_closed THEN t.step_ms * interval '1 millisecond' ELSE interval '0' END AS reached
       FROM candles c
       WHERE c.exchange = $1 AND c.symbol = s.value AND c.timeframe = t.timeframe
       ORDER BY c.open_time DESC LIMIT 1
     ) AS newest
     WHERE s.value IS NOT NULL`,
    [query.exchange, [...TIMEFRAMES], TIMEFRAMES.map((timeframe) => TIMEFRAME_MS[timeframe])],
  );
  const reached = result.rows[0]?.reached_ms;
  return reached === null || reached === undefined ? undefined : Number(reached);
}
