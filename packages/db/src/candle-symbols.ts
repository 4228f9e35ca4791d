import type { Timeframe } from "@candlekeep/core";
import type { Database } from "./connect";
import { distinctValuesCte } from "./sql";

export interface StoredSymbol {
  symbol: string;
  /** Open time of the newest candle of any of the requested timeframes, epoch ms. */
  lastOpenTime: number;
}

/**
 * The symbols that have candles on `exchange`, newest-updated first (ties by
 * name), in one query. For a `top:N` deployment this is how a tool without
 * exchange access knows which coins the bot tracks: the ones it keeps writing.
 *
 * Distinct symbols are found by skipping through the primary key, and each
 * symbol's newest candle per timeframe is one index probe, so the cost grows
 * with symbols × timeframes, not with stored candles.
 */
export async function storedCandleSymbols(db: Pick<Database, "sql">, query: { exchange: string; timeframes: readonly Timeframe[] }): Promise<StoredSymbol[]> {
  const result = await db.sql.query<{ symbol: string; last_ms: string | number }>(
    `WITH RECURSIVE ${distinctValuesCte("symbols", "candles", "symbol", "exchange = $1")}
     SELECT s.value AS symbol, (extract(epoch from max(latest.open_time)) * 1000)::int8 AS last_ms
     FROM symbols s
     CROSS JOIN unnest($2::text[]) AS t(timeframe)
     CROSS JOIN LATERAL (
       SELECT c.open_time FROM candles c
       WHERE c.exchange = $1 AND c.symbol = s.value AND c.timeframe = t.timeframe
       ORDER BY c.open_time DESC LIMIT 1
     ) AS latest
     WHERE s.value IS NOT NULL
     GROUP BY s.value
     ORDER BY last_ms DESC, s.value`,
    [query.exchange, [...query.timeframes]],
  );
  return result.rows.map((row) => ({ symbol: row.symbol, lastOpenTime: Number(row.last_ms) }));
}
