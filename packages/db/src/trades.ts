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
 * signal it already traded is not traded again after a restart.
 */
export async function latestTradeEntries(db: Pick<Database, "prisma">, filter: { exchange: string; symbols: readonly string[] }): Promise<Map<string, Date>> {
  const rows = await db.prisma.trade.groupBy({
    by: ["symbol"],
    where: { exchange: filter.exchange, symbol: { in: [...filter.symbols] } },
    _max: { entryTime: true },
  });
  const entries = new Map<string, Date>();
  for (const row of rows) if (row._max.entryTime) entries.set(row.symbol, row._max.entryTime);
  return entries;
}
