import { Prisma } from "./generated/prisma/client";
import type { Database } from "./connect";
import { critical } from "./critical";
import { amountProblem } from "./amounts";

export type PositionSide = "LONG" | "SHORT";
export type ExitReason = "TAKE_PROFIT" | "STOP_LOSS" | "SIGNAL" | "MANUAL";
export type JsonObject = { [key: string]: Prisma.InputJsonValue | null };

export interface PositionInput {
  exchange: string;
  symbol: string;
  side: PositionSide;
  quantity: number;
  entryPrice: number;
  takeProfit: number | null;
  stopLoss: number | null;
  entryOrderId: string;
  openedAt: Date;
  /** The entry fee (quote currency) attributed to the remaining quantity. */
  entryFee?: number;
  metadata?: JsonObject;
}

export interface OpenPosition extends PositionInput {
  id: number;
  entryFee: number;
  updatedAt: Date;
  metadata: JsonObject;
}

export interface TradeRecord {
  id: number;
  exchange: string;
  symbol: string;
  side: PositionSide;
  quantity: number;
  entryPrice: number;
  exitPrice: number;
  entryTime: Date;
  exitTime: Date;
  fees: number;
  realizedPnl: number;
  exitReason: ExitReason;
  entryOrderId: string;
  exitOrderId: string;
}

export interface ClosePositionInput {
  exchange: string;
  symbol: string;
  exitPrice: number;
  exitTime: Date;
  exitReason: ExitReason;
  /** The exchange's id of the closing order: makes the close idempotent. */
  exitOrderId: string;
  /** Total fees of entry and exit, in quote currency. */
  fees: number;
}

/** Columns positions and trades share, as the raw SQL paths read them (numeric as text). */
interface StoredHoldingRow {
  id: number | string;
  exchange: string;
  symbol: string;
  side: PositionSide;
  quantity: string | number;
  entry_price: string | number;
  entry_order_id: string;
}

export interface StoredPositionRow extends StoredHoldingRow {
  entry_fee: string | number;
  take_profit: string | number | null;
  stop_loss: string | number | null;
  opened_at: Date | string;
  updated_at: Date | string;
  metadata: JsonObject | null;
}

export const POSITION_COLUMNS = `id, exchange, symbol, side, quantity, entry_price, take_profit, stop_loss, entry_order_id, entry_fee, opened_at, updated_at, metadata`;
const optionalNumber = (value: string | number | null) => (value === null ? null : Number(value));

/** The fields positions and trades share, from a raw row. */
function holdingFromRow(row: StoredHoldingRow) {
  return {
    id: Number(row.id),
    exchange: row.exchange,
    symbol: row.symbol,
    side: row.side,
    quantity: Number(row.quantity),
    entryPrice: Number(row.entry_price),
    entryOrderId: row.entry_order_id,
  };
}

export function toPosition(row: StoredPositionRow): OpenPosition {
  return {
    ...holdingFromRow(row),
    entryFee: Number(row.entry_fee),
    takeProfit: optionalNumber(row.take_profit),
    stopLoss: optionalNumber(row.stop_loss),
    openedAt: new Date(row.opened_at),
    updatedAt: new Date(row.updated_at),
    metadata: row.metadata ?? {},
  };
}

// One statement, written here rather than through Prisma's upsert: an entry
// saves its position twice (the intent, then the fill) one entry after another
// in the tick, and Prisma's client-side work per write showed in the tick's
// decisions. Amounts travel as their shortest decimal text
// (what the bot computed) into exact numeric columns.
const SAVE_POSITION = `
INSERT INTO positions (exchange, symbol, side, quantity, entry_price, take_profit, stop_loss, entry_order_id, opened_at, updated_at, metadata, entry_fee)
VALUES ($1, $2, $3::position_side, $4::numeric, $5::numeric, $6::numeric, $7::numeric, $8, $9::timestamptz, now(), $10::jsonb, $11::numeric)
ON CONFLICT (exchange, symbol) DO UPDATE
SET side = EXCLUDED.side, quantity = EXCLUDED.quantity, entry_price = EXCLUDED.entry_price, take_profit = EXCLUDED.take_profit,
    stop_loss = EXCLUDED.stop_loss, entry_order_id = EXCLUDED.entry_order_id, opened_at = EXCLUDED.opened_at, entry_fee = EXCLUDED.entry_fee,
    updated_at = EXCLUDED.updated_at, metadata = EXCLUDED.metadata
RETURNING ${POSITION_COLUMNS}`;

/** Creates or updates the open position of (exchange, symbol). Critical: logs and raises. */
export function savePosition(db: Pick<Database, "sql" | "logger">, position: PositionInput): Promise<OpenPosition> {
  const { exchange, symbol } = position;
  return critical(db, "savePosition", { exchange, symbol }, async () => {
    const problem =
      amountProblem("quantity", position.quantity) ?? amountProblem("entryPrice", position.entryPrice) ?? amountProblem("takeProfit", position.takeProfit) ?? amountProblem("stopLoss", position.stopLoss);
    if (problem !== undefined) throw new Error(`saving the position of ${symbol}: ${problem}`);
    const decimal = (value: number | null) => (value === null ? null : String(value));
    const result = await db.sql.query<StoredPositionRow>(SAVE_POSITION, [
      exchange,
      symbol,
      position.side,
      String(position.quantity),
      String(position.entryPrice),
      decimal(position.takeProfit),
      decimal(position.stopLoss),
      position.entryOrderId,
      position.openedAt,
      JSON.stringify(position.metadata ?? {}),
      String(position.entryFee ?? 0),
    ]);
    const row = result.rows[0];
    if (!row) throw new Error(`saving the position of ${symbol}: the database returned no row`);
    return toPosition(row);
  });
}

/** Removes the open position of (exchange, symbol), if any. Critical: logs and raises. */
export function deletePosition(db: Pick<Database, "sql" | "logger">, key: { exchange: string; symbol: string }): Promise<boolean> {
  return critical(db, "deletePosition", key, async () => {
    const result = await db.sql.query("DELETE FROM positions WHERE exchange = $1 AND symbol = $2", [key.exchange, key.symbol]);
    return result.rowCount > 0;
  });
}

export async function listOpenPositions(db: Pick<Database, "sql">, filter: { exchange?: string } = {}): Promise<OpenPosition[]> {
  const result = await db.sql.query<StoredPositionRow>(
    `SELECT ${POSITION_COLUMNS} FROM positions WHERE ($1::text IS NULL OR exchange = $1) ORDER BY exchange, symbol`,
    [filter.exchange ?? null],
  );
  return result.rows.map(toPosition);
}

/**
 * Closes the open position and records its trade in one statement (so one
 * round trip, and either both happen or neither). Retrying with the same
 * exitOrderId returns the trade already written instead of writing it twice,
 * and removes the position it closed if that is still there. The PnL is computed
 * in exact numeric arithmetic from the stored quantity and entry price. Critical:
 * logs and raises.
 */
export function closePositionWithTrade(db: Pick<Database, "sql" | "logger">, close: ClosePositionInput): Promise<TradeRecord> {
  const { exchange, symbol } = close;
  return critical(db, "closePositionWithTrade", { exchange, symbol, exitOrderId: close.exitOrderId }, async () => {
    const problem = amountProblem("exitPrice", close.exitPrice) ?? amountProblem("fees", close.fees);
    if (problem !== undefined) throw new Error(`closing ${symbol}: ${problem}`);
    const result = await db.sql.query<StoredTradeRow>(CLOSE_POSITION, [
      exchange,
      symbol,
      close.exitOrderId,
      String(close.exitPrice),
      close.exitTime,
      String(close.fees),
      close.exitReason,
    ]);
    const row = result.rows[0];
    if (!row) throw new Error(`no open position for ${symbol} on ${exchange} to close`);
    return tradeFromRow(row);
  });
}

/** A trade as the drivers return its columns: numerics as text (or numbers), times as Dates (or text). */
export interface StoredTradeRow extends StoredHoldingRow {
  exit_price: string | number;
  entry_time: Date | string;
  exit_time: Date | string;
  fees: string | number;
  realized_pnl: string | number;
  exit_reason: ExitReason;
  exit_order_id: string;
}

export function tradeFromRow(row: StoredTradeRow): TradeRecord {
  return {
    ...holdingFromRow(row),
    exitPrice: Number(row.exit_price),
    entryTime: new Date(row.entry_time),
    exitTime: new Date(row.exit_time),
    fees: Number(row.fees),
    realizedPnl: Number(row.realized_pnl),
    exitReason: row.exit_reason,
    exitOrderId: row.exit_order_id,
  };
}

// $1 exchange, $2 symbol, $3 exit order id, $4 exit price, $5 exit time, $6 fees, $7 exit reason.
// All parts see the same snapshot: `existing` is a trade written by an earlier
// attempt of this close; only without it is the position closed into a new trade.
export const TRADE_COLUMNS = `id, exchange, symbol, side, quantity, entry_price, exit_price, entry_time, exit_time, fees, realized_pnl, exit_reason, entry_order_id, exit_order_id`;
const CLOSE_POSITION = `
WITH existing AS (
  SELECT ${TRADE_COLUMNS} FROM trades WHERE exchange = $1 AND exit_order_id = $3
), cleared AS (
  DELETE FROM positions p USING existing e
  WHERE p.exchange = $1 AND p.symbol = $2 AND p.entry_order_id = e.entry_order_id
), closed AS (
  DELETE FROM positions
  WHERE exchange = $1 AND symbol = $2 AND NOT EXISTS (SELECT 1 FROM existing)
  RETURNING exchange, symbol, side, quantity, entry_price, opened_at, entry_order_id
), created AS (
  INSERT INTO trades (exchange, symbol, side, quantity, entry_price, exit_price, entry_time, exit_time, fees, realized_pnl, exit_reason, entry_order_id, exit_order_id)
  SELECT exchange, symbol, side, quantity, entry_price, $4::numeric, opened_at, $5::timestamptz, $6::numeric,
         quantity * (CASE side WHEN 'LONG' THEN $4::numeric - entry_price ELSE entry_price - $4::numeric END) - $6::numeric,
         $7::exit_reason, entry_order_id, $3
  FROM closed
  RETURNING ${TRADE_COLUMNS}
)
SELECT ${TRADE_COLUMNS} FROM created
UNION ALL
SELECT ${TRADE_COLUMNS} FROM existing`;
