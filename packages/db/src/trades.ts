import type { Database } from "./connect";
import { toTradeRecord, type TradeRecord } from "./positions";

export async function listTrades(
  db: Pick<Database, "prisma">,
  filter: { exchange?: string; symbol?: string; limit?: number } = {},
): Promise<TradeRecord[]> {
  const rows = await db.prisma.trade.findMany({
    where: { exchange: filter.exchange, symbol: filter.symbol },
    orderBy: { exitTime: "desc" },
    take: filter.limit ?? 100,
  });
  return rows.map(toTradeRecord);
}

/**
 * When the newest entry of each of `symbols` that has a closed trade on `exchange`
 * was made (the latest entry_time per coin). The bot reads it at start-up so a
 * signal it already traded is not traded again after a restart. In SQL, like
 * accountHistory, so that start-up never loads Prisma.
 */
export async function latestTradeEntries(db: Pick<Database, "sql">, filter: { exchange: string; symbols: readonly string[] }): Promise<Map<string, Date>> {
  const result = await db.sql.query<{ symbol: string; entry_time: Date }>(
    "SELECT symbol, max(entry_time) AS entry_time FROM trades WHERE exchange = $1 AND symbol = ANY($2::text[]) GROUP BY symbol",
    [filter.exchange, [...filter.symbols]],
  );
  return new Map(result.rows.map((row) => [row.symbol, row.entry_time]));
}
