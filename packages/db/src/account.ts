import type { Database } from "./connect";
import { critical } from "./critical";
import { amountProblem } from "./amounts";
import { distinctValuesCte } from "./sql";

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

// One statement per call, written here rather than through Prisma's createMany:
// the bot saves a snapshot every tick, and Prisma compiled and ran each one in
// this process, on the tick's CPU. Amounts travel as their
// shortest decimal text (what the bot computed) into exact numeric columns.
const INSERT_SNAPSHOTS = `
INSERT INTO account_state (time, exchange, currency, free, used, total, equity)
SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::numeric[], $5::numeric[], $6::numeric[], $7::numeric[])`;

const AMOUNTS = ["free", "used", "total", "equity"] as const;

/** Why a snapshot cannot be stored, or undefined. */
function snapshotProblem(snapshot: AccountSnapshot): string | undefined {
  if (!(snapshot.time instanceof Date) || Number.isNaN(snapshot.time.getTime())) return `time must be a valid Date, got ${String(snapshot.time)}`;
  for (const name of AMOUNTS) {
    const problem = amountProblem(name, snapshot[name]);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

/** Stores balance snapshots (one per currency). Critical: logs and raises. */
export function saveAccountState(db: Pick<Database, "sql" | "logger">, snapshots: readonly AccountSnapshot[]): Promise<number> {
  return critical(db, "saveAccountState", { currencies: snapshots.map((s) => s.currency) }, async () => {
    for (const snapshot of snapshots) {
      const problem = snapshotProblem(snapshot);
      if (problem !== undefined) throw new Error(`saving the ${snapshot.currency} balance snapshot: ${problem}`);
    }
    const amounts = (name: (typeof AMOUNTS)[number]) => snapshots.map((s) => String(s[name]));
    const result = await db.sql.query(INSERT_SNAPSHOTS, [
      snapshots.map((s) => s.time.toISOString()),
      snapshots.map((s) => s.exchange),
      snapshots.map((s) => s.currency),
      amounts("free"),
      amounts("used"),
      amounts("total"),
      amounts("equity"),
    ]);
    return result.rowCount;
  });
}

// Per currency (one, or each the exchange has), its newest snapshots through the
// (exchange, currency, time) index, merged: sorting every snapshot of an exchange
// instead grew with the history, on each dashboard refresh and verify run.
const ACCOUNT_HISTORY = `WITH RECURSIVE ${distinctValuesCte("currencies", "account_state", "currency", "exchange = $1")}
SELECT time, exchange, currency, free, used, total, equity FROM currencies
CROSS JOIN LATERAL (
  SELECT id, time, exchange, currency, free::float8 AS free, used::float8 AS used, total::float8 AS total, equity::float8 AS equity
  FROM account_state WHERE exchange = $1 AND currency = currencies.value
  ORDER BY time DESC, id DESC LIMIT $3
) AS a
WHERE currencies.value IS NOT NULL AND ($2::text IS NULL OR currencies.value = $2)
ORDER BY time DESC, id DESC LIMIT $3`;

/**
 * Snapshots of one exchange (and currency, if given), newest first. In SQL rather
 * than through Prisma: the bot (at start-up) and verify read nothing else through
 * Prisma, which then never loads (its first query costs ~160 ms and ~30 MB).
 * The amounts arrive as float8: numeric to double is correctly rounded, as
 * Decimal's toNumber() was.
 */
export async function accountHistory(
  db: Pick<Database, "sql">,
  filter: { exchange: string; currency?: string; limit?: number },
): Promise<AccountSnapshot[]> {
  const result = await db.sql.query<AccountSnapshot>(ACCOUNT_HISTORY, [filter.exchange, filter.currency ?? null, filter.limit ?? 1]);
  return result.rows;
}
