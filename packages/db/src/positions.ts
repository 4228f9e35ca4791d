import { Prisma } from "./generated/prisma/client";
import type { Position as PositionRow, Trade as TradeRow } from "./generated/prisma/client";
import type { Database } from "./connect";
import { critical } from "./critical";
import { toDecimal } from "./decimal";

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
  metadata?: JsonObject;
}

export interface OpenPosition extends PositionInput {
  id: number;
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

const optionalDecimal = (value: number | null) => (value === null ? null : toDecimal(value));

function toPosition(row: PositionRow): OpenPosition {
  return {
    id: row.id,
    exchange: row.exchange,
    symbol: row.symbol,
    side: row.side,
    quantity: row.quantity.toNumber(),
    entryPrice: row.entryPrice.toNumber(),
    takeProfit: row.takeProfit?.toNumber() ?? null,
    stopLoss: row.stopLoss?.toNumber() ?? null,
    entryOrderId: row.entryOrderId,
    openedAt: row.openedAt,
    updatedAt: row.updatedAt,
    metadata: (row.metadata ?? {}) as JsonObject,
  };
}

export function toTradeRecord(row: TradeRow): TradeRecord {
  return {
    id: row.id,
    exchange: row.exchange,
    symbol: row.symbol,
    side: row.side,
    quantity: row.quantity.toNumber(),
    entryPrice: row.entryPrice.toNumber(),
    exitPrice: row.exitPrice.toNumber(),
    entryTime: row.entryTime,
    exitTime: row.exitTime,
    fees: row.fees.toNumber(),
    realizedPnl: row.realizedPnl.toNumber(),
    exitReason: row.exitReason,
    entryOrderId: row.entryOrderId,
    exitOrderId: row.exitOrderId,
  };
}

/** Creates or updates the open position of (exchange, symbol). Critical: logs and raises. */
export function savePosition(db: Pick<Database, "prisma" | "logger">, position: PositionInput): Promise<OpenPosition> {
  const values = {
    side: position.side,
    quantity: toDecimal(position.quantity),
    entryPrice: toDecimal(position.entryPrice),
    takeProfit: optionalDecimal(position.takeProfit),
    stopLoss: optionalDecimal(position.stopLoss),
    entryOrderId: position.entryOrderId,
    openedAt: position.openedAt,
    updatedAt: new Date(),
    metadata: position.metadata ?? {},
  };
  return critical(db, "savePosition", { exchange: position.exchange, symbol: position.symbol }, async () =>
    toPosition(
      await db.prisma.position.upsert({
        where: { exchange_symbol: { exchange: position.exchange, symbol: position.symbol } },
        create: { exchange: position.exchange, symbol: position.symbol, ...values },
        update: values,
      }),
    ),
  );
}

/** Removes the open position of (exchange, symbol), if any. Critical: logs and raises. */
export function deletePosition(db: Pick<Database, "prisma" | "logger">, key: { exchange: string; symbol: string }): Promise<boolean> {
  return critical(db, "deletePosition", key, async () => {
    const result = await db.prisma.position.deleteMany({ where: key });
    return result.count > 0;
  });
}

export async function listOpenPositions(db: Pick<Database, "prisma">, filter: { exchange?: string } = {}): Promise<OpenPosition[]> {
  const rows = await db.prisma.position.findMany({ where: filter, orderBy: [{ exchange: "asc" }, { symbol: "asc" }] });
  return rows.map(toPosition);
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
    for (const field of ["exitPrice", "fees"] as const) {
      if (!Number.isFinite(close[field])) throw new Error(`closing ${symbol}: ${field} must be a finite number, got ${close[field]}`);
    }
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
    return {
      id: Number(row.id),
      exchange: row.exchange,
      symbol: row.symbol,
      side: row.side,
      quantity: Number(row.quantity),
      entryPrice: Number(row.entry_price),
      exitPrice: Number(row.exit_price),
      entryTime: new Date(row.entry_time),
      exitTime: new Date(row.exit_time),
      fees: Number(row.fees),
      realizedPnl: Number(row.realized_pnl),
      exitReason: row.exit_reason,
      entryOrderId: row.entry_order_id,
      exitOrderId: row.exit_order_id,
    };
  });
}

interface StoredTradeRow {
  id: number | string;
  exchange: string;
  symbol: string;
  side: PositionSide;
  quantity: string | number;
  entry_price: string | number;
  exit_price: string | number;
  entry_time: Date | string;
  exit_time: Date | string;
  fees: string | number;
  realized_pnl: string | number;
  exit_reason: ExitReason;
  entry_order_id: string;
  exit_order_id: string;
}

// $1 exchange, $2 symbol, $3 exit order id, $4 exit price, $5 exit time, $6 fees, $7 exit reason.
// All parts see the same snapshot: `existing` is a trade written by an earlier
// attempt of this close; only without it is the position closed into a new trade.
const TRADE_COLUMNS = `id, exchange, symbol, side, quantity, entry_price, exit_price, entry_time, exit_time, fees, realized_pnl, exit_reason, entry_order_id, exit_order_id`;
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
