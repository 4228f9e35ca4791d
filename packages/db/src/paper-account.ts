import type { Database } from "./connect";
import { critical } from "./critical";

/** How a paper account was opened: its currency and starting balance. */
export interface PaperAccount {
  currency: string;
  startingBalance: number;
}

// Recorded once per exchange as a system event with a fixed key: the first start
// writes it, every later start reads the same one back.
const OPEN_PAPER_ACCOUNT = `
WITH inserted AS (
  INSERT INTO system_events (time, type, level, payload, event_key)
  VALUES (now(), 'PAPER_ACCOUNT', 'info', jsonb_build_object('currency', $2::text, 'startingBalance', $3::numeric), $1)
  ON CONFLICT (event_key) DO NOTHING
  RETURNING payload
)
SELECT payload FROM inserted
UNION ALL
SELECT payload FROM system_events WHERE event_key = $1 AND NOT EXISTS (SELECT 1 FROM inserted)`;

export function paperAccountKey(exchange: string): string {
  return `paper-account:${exchange}`;
}

/**
 * The paper account of an exchange: opened with `opening` the first time, and as
 * it was opened every time after, whatever the settings say now. Critical.
 */
export function openPaperAccount(db: Pick<Database, "sql" | "logger">, opening: PaperAccount & { exchange: string }): Promise<PaperAccount> {
  return critical(db, "openPaperAccount", { exchange: opening.exchange }, async () => {
    const result = await db.sql.query<{ payload: unknown }>(OPEN_PAPER_ACCOUNT, [paperAccountKey(opening.exchange), opening.currency, String(opening.startingBalance)]);
    const payload: unknown = typeof result.rows[0]?.payload === "string" ? JSON.parse(result.rows[0].payload) : result.rows[0]?.payload;
    const currency: unknown = typeof payload === "object" && payload !== null ? Reflect.get(payload, "currency") : undefined;
    const startingBalance: unknown = typeof payload === "object" && payload !== null ? Reflect.get(payload, "startingBalance") : undefined;
    if (typeof currency !== "string" || typeof startingBalance !== "number") {
      throw new Error(`the paper account record of ${opening.exchange} (system_events ${paperAccountKey(opening.exchange)}) is malformed; delete that row to open the account again`);
    }
    return { currency, startingBalance };
  });
}
