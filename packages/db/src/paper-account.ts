import type { Database } from "./connect";
import { critical } from "./critical";

/** How a paper account was opened: its currency and starting balance. */
export interface PaperAccount {
  currency: string;
  startingBalance: number;
}

/** system_events type of the record of a paper account's start. */
export const PAPER_ACCOUNT_EVENT = "PAPER_ACCOUNT";

/** The event key of `exchange`'s paper account record: one per exchange, written once. */
export const paperAccountEventKey = (exchange: string) => `paper-account:${exchange}`;

// Recorded once per exchange as a system event with a fixed key: the first start
// writes it, every later start reads the same one back.
const OPEN_PAPER_ACCOUNT = `
WITH inserted AS (
  INSERT INTO system_events (time, type, level, payload, event_key)
  VALUES (now(), '${PAPER_ACCOUNT_EVENT}', 'info', jsonb_build_object('currency', $2::text, 'startingBalance', $3::numeric), $1)
  ON CONFLICT (event_key) DO NOTHING
  RETURNING time, payload
)
SELECT time, payload FROM inserted
UNION ALL
SELECT time, payload FROM system_events WHERE event_key = $1 AND NOT EXISTS (SELECT 1 FROM inserted)`;

/** Where a paper account started, as recorded when it was opened. */
export interface PaperAccountStart extends PaperAccount {
  recordedAt: Date;
}

/** The record's payload, or an error naming the event when it lacks the currency or the balance. */
function accountFromRow(key: string, row: { time: Date | string; payload: unknown } | undefined): PaperAccountStart | undefined {
  if (!row) return undefined;
  const payload: unknown = typeof row.payload === "string" ? JSON.parse(row.payload) : row.payload;
  const currency: unknown = typeof payload === "object" && payload !== null ? Reflect.get(payload, "currency") : undefined;
  const startingBalance: unknown = typeof payload === "object" && payload !== null ? Reflect.get(payload, "startingBalance") : undefined;
  if (typeof currency !== "string" || typeof startingBalance !== "number" || !Number.isFinite(startingBalance) || startingBalance < 0) {
    throw new Error(`the ${PAPER_ACCOUNT_EVENT} event "${key}" needs a payload like {"currency":"USDT","startingBalance":10000}, got ${JSON.stringify(payload)}; delete that row to open the account again`);
  }
  return { currency, startingBalance, recordedAt: new Date(row.time) };
}

/** The PAPER_ACCOUNT record of `exchange`, or undefined when the account was never opened. */
export async function paperAccountStart(db: Pick<Database, "sql">, exchange: string): Promise<PaperAccountStart | undefined> {
  const key = paperAccountEventKey(exchange);
  const result = await db.sql.query<{ time: Date; payload: unknown }>(`SELECT time, payload FROM system_events WHERE event_key = $1 AND type = $2`, [key, PAPER_ACCOUNT_EVENT]);
  return accountFromRow(key, result.rows[0]);
}

/**
 * The paper account of an exchange: opened with `opening` the first time, and as
 * it was opened every time after, whatever the settings say now. Critical.
 */
export function openPaperAccount(db: Pick<Database, "sql" | "logger">, opening: PaperAccount & { exchange: string }): Promise<PaperAccount> {
  return critical(db, "openPaperAccount", { exchange: opening.exchange }, async () => {
    const key = paperAccountEventKey(opening.exchange);
    const result = await db.sql.query<{ time: Date; payload: unknown }>(OPEN_PAPER_ACCOUNT, [key, opening.currency, String(opening.startingBalance)]);
    const account = accountFromRow(key, result.rows[0]);
    if (!account) throw new Error(`opening the paper account of ${opening.exchange}: the database returned no row`);
    return { currency: account.currency, startingBalance: account.startingBalance };
  });
}
