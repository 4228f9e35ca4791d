import type { Database } from "./connect";
import { FINAL_SQL, type OrderStatus, type TradingMode } from "./orders";

/**
 * The reads that check the books (verify's books check): whether open positions
 * are what their orders add up to, and the newest fill. Amounts
 * come back as exact decimal text (numeric, trailing zeros trimmed): a check
 * that says two amounts differ must show the stored digits, not a float's.
 */

/** An open position beside what its orders add up to (position_key = the entry order's client id). */
export interface PositionBacking {
  symbol: string;
  entryOrderId: string;
  /** The position's stored quantity. */
  quantity: string;
  /** The entry order; undefined when no order of the exchange has the position's entry_order_id. */
  entry: { symbol: string; purpose: "entry" | "exit"; status: OrderStatus; mode: TradingMode; filledAmount: string; feeBase: string } | undefined;
  /** What final exit orders of this position sold: the part already taken off the position. */
  exitedAmount: string;
  exitOrders: number;
  /** Filled so far by exit orders not final yet: taken off only once they are. */
  pendingExitAmount: string;
  /** Entry filled − fee taken in the coin − exited; undefined without the entry order. */
  expectedQuantity: string | undefined;
  /** quantity − expectedQuantity, exact; undefined without the entry order. */
  difference: string | undefined;
  /** quantity = expectedQuantity, compared exactly in numeric. */
  matches: boolean;
}

interface BackingRow {
  symbol: string;
  entry_order_id: string;
  quantity: string;
  entry_symbol: string | null;
  entry_purpose: "entry" | "exit" | null;
  entry_status: OrderStatus | null;
  entry_mode: TradingMode | null;
  entry_filled: string | null;
  entry_fee_base: string | null;
  exited: string;
  exit_orders: string | number;
  pending_exit: string;
  expected: string | null;
  difference: string | null;
  matches: boolean | null;
}

// Exits count once final: applyExitProgress takes a fill off the position only then.
const POSITION_BACKING = `
SELECT p.symbol, p.entry_order_id, trim_scale(p.quantity)::text AS quantity,
  e.symbol AS entry_symbol, e.purpose AS entry_purpose, e.status AS entry_status, e.mode AS entry_mode,
  trim_scale(e.filled_amount)::text AS entry_filled, trim_scale(e.fee_base)::text AS entry_fee_base,
  trim_scale(x.exited)::text AS exited, x.exit_orders, trim_scale(x.pending_exit)::text AS pending_exit,
  trim_scale(e.filled_amount - e.fee_base - x.exited)::text AS expected,
  trim_scale(p.quantity - (e.filled_amount - e.fee_base - x.exited))::text AS difference,
  p.quantity = e.filled_amount - e.fee_base - x.exited AS matches
FROM positions p
LEFT JOIN orders e ON e.exchange = p.exchange AND e.client_order_id = p.entry_order_id
CROSS JOIN LATERAL (
  SELECT coalesce(sum(o.filled_amount) FILTER (WHERE o.status IN (${FINAL_SQL})), 0) AS exited,
         count(*) FILTER (WHERE o.status IN (${FINAL_SQL}) AND o.filled_amount > 0) AS exit_orders,
         coalesce(sum(o.filled_amount) FILTER (WHERE o.status NOT IN (${FINAL_SQL})), 0) AS pending_exit
  FROM orders o WHERE o.exchange = p.exchange AND o.position_key = p.entry_order_id AND o.purpose = 'exit'
) AS x
WHERE p.exchange = $1
ORDER BY p.symbol`;

/** Every open position of `exchange` with what its entry and exit orders add up to, in one query. */
export async function positionBacking(db: Pick<Database, "sql">, exchange: string): Promise<PositionBacking[]> {
  const result = await db.sql.query<BackingRow>(POSITION_BACKING, [exchange]);
  return result.rows.map((row) => ({
    symbol: row.symbol,
    entryOrderId: row.entry_order_id,
    quantity: row.quantity,
    entry:
      row.entry_status === null || row.entry_symbol === null || row.entry_purpose === null || row.entry_mode === null
        ? undefined
        : { symbol: row.entry_symbol, purpose: row.entry_purpose, status: row.entry_status, mode: row.entry_mode, filledAmount: row.entry_filled ?? "0", feeBase: row.entry_fee_base ?? "0" },
    exitedAmount: row.exited,
    exitOrders: Number(row.exit_orders),
    pendingExitAmount: row.pending_exit,
    expectedQuantity: row.expected ?? undefined,
    difference: row.difference ?? undefined,
    matches: row.matches === true,
  }));
}

/** The newest order of an exchange and mode that filled anything, by its creation (exchange) time. */
export async function newestFilledOrder(
  db: Pick<Database, "sql">,
  filter: { exchange: string; mode: TradingMode },
): Promise<{ clientOrderId: string; symbol: string; createdAt: Date } | undefined> {
  const result = await db.sql.query<{ client_order_id: string; symbol: string; created_at: Date | string }>(
    `SELECT client_order_id, symbol, created_at FROM orders WHERE exchange = $1 AND mode = $2::trading_mode AND filled_amount > 0 ORDER BY created_at DESC, id DESC LIMIT 1`,
    [filter.exchange, filter.mode],
  );
  const row = result.rows[0];
  return row && { clientOrderId: row.client_order_id, symbol: row.symbol, createdAt: new Date(row.created_at) };
}
