import type { Database } from "./connect";
import { critical } from "./critical";
import { toDecimal } from "./decimal";

export interface AccountSnapshot {
  time: Date;
  exchange: string;
  currency: string;
  free: number;
  used: number;
  total: number;
  /** Total value including open positions at the last price, in `currency`. */
  equity: number;
}


/** Stores balance snapshots (one per currency). Critical: logs and raises. */
export function saveAccountState(db: Pick<Database, "prisma" | "logger">, snapshots: readonly AccountSnapshot[]): Promise<number> {
  return critical(db, "saveAccountState", { currencies: snapshots.map((s) => s.currency) }, async () => {
    const result = await db.prisma.accountState.createMany({
      data: snapshots.map((s) => ({
        time: s.time,
        exchange: s.exchange,
        currency: s.currency,
        free: toDecimal(s.free),
        used: toDecimal(s.used),
        total: toDecimal(s.total),
        equity: toDecimal(s.equity),
      })),
    });
    return result.count;
  });
}

/** Snapshots of one exchange and currency, newest first. */
export async function accountHistory(
  db: Pick<Database, "prisma">,
  filter: { exchange: string; currency?: string; limit?: number },
): Promise<AccountSnapshot[]> {
  const rows = await db.prisma.accountState.findMany({
    where: { exchange: filter.exchange, currency: filter.currency },
    orderBy: { time: "desc" },
    take: filter.limit ?? 1,
  });
  return rows.map((row) => ({
    time: row.time,
    exchange: row.exchange,
    currency: row.currency,
    free: row.free.toNumber(),
    used: row.used.toNumber(),
    total: row.total.toNumber(),
    equity: row.equity.toNumber(),
  }));
}
