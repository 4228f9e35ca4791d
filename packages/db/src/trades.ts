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
