import type { Database } from "./connect";
import { TRADE_COLUMNS, tradeFromRow, type StoredTradeRow, type TradeRecord } from "./positions";

// Served by an index either way: (exchange, symbol, exit_time) for one coin's
// trades, (exchange, exit_time) for all of an exchange's, so a page of the newest
// trades reads that page, not every trade stored.
const LATEST_TRADES = `SELECT ${TRADE_COLUMNS} FROM trades
WHERE ($1::text IS NULL OR exchange = $1) AND ($2::text IS NULL OR symbol = $2)
ORDER BY exit_time DESC, id DESC LIMIT $3`;

/** The newest closed trades (of an exchange, of a coin), newest first. */
export async function listTrades(db: Pick<Database, "sql">, filter: { exchange?: string; symbol?: string; limit?: number } = {}): Promise<TradeRecord[]> {
  const result = await db.sql.query<StoredTradeRow>(LATEST_TRADES, [filter.exchange ?? null, filter.symbol ?? null, filter.limit ?? 100]);
  return result.rows.map(tradeFromRow);
}

// A coin holds one position at a time (positions are unique per exchange and coin), so its
// trades follow one another and the newest entry is the newest exit's: one index entry per
// coin through (exchange, symbol, exit_time), where max(entry_time) read every trade of the coins.
const LATEST_ENTRIES = `SELECT s.symbol, t.entry_time
FROM unnest($2::text[]) AS s(symbol)
CROSS JOIN LATERAL (
  SELECT entry_time FROM trades WHERE exchange = $1 AND symbol = s.symbol ORDER BY exit_time DESC, id DESC LIMIT 1
) AS t`;

/**
 * When the newest entry of each of `symbols` that has a closed trade on `exchange`
 * was made (the entry of its newest trade). The bot reads it at start-up so a
 * signal it already traded is not traded again after a restart.
 */
export async function latestTradeEntries(db: Pick<Database, "sql">, filter: { exchange: string; symbols: readonly string[] }): Promise<Map<string, Date>> {
  const result = await db.sql.query<{ symbol: string; entry_time: Date }>(LATEST_ENTRIES, [filter.exchange, [...filter.symbols]]);
  return new Map(result.rows.map((row) => [row.symbol, row.entry_time]));
}
