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

/** Realised PnL of closing `quantity` from `entryPrice` at `exitPrice`, after fees. */
export function realizedPnl(side: PositionSide, quantity: number, entryPrice: number, exitPrice: number, fees: number): Prisma.Decimal {
  const move = toDecimal(exitPrice).minus(toDecimal(entryPrice));
  const gross = toDecimal(quantity).times(side === "LONG" ? move : move.negated());
  return gross.minus(toDecimal(fees));
}

/**
 * Closes the open position and records its trade in one transaction: either both
 * happen or neither. Retrying with the same exitOrderId returns the trade already
 * written instead of writing it twice. Critical: logs and raises.
 */
export function closePositionWithTrade(db: Pick<Database, "prisma" | "logger">, close: ClosePositionInput): Promise<TradeRecord> {
  const { exchange, symbol } = close;
  return critical(db, "closePositionWithTrade", { exchange, symbol, exitOrderId: close.exitOrderId }, () =>
    db.prisma.$transaction(async (tx) => {
      const existing = await tx.trade.findUnique({ where: { exchange_exitOrderId: { exchange, exitOrderId: close.exitOrderId } } });
      if (existing) {
        await tx.position.deleteMany({ where: { exchange, symbol, entryOrderId: existing.entryOrderId } });
        return toTradeRecord(existing);
      }
      const position = await tx.position.findUnique({ where: { exchange_symbol: { exchange, symbol } } });
      if (!position) throw new Error(`no open position for ${symbol} on ${exchange} to close`);
      const quantity = position.quantity.toNumber();
      const entryPrice = position.entryPrice.toNumber();
      const trade = await tx.trade.create({
        data: {
          exchange,
          symbol,
          side: position.side,
          quantity: position.quantity,
          entryPrice: position.entryPrice,
          exitPrice: toDecimal(close.exitPrice),
          entryTime: position.openedAt,
          exitTime: close.exitTime,
          fees: toDecimal(close.fees),
          realizedPnl: realizedPnl(position.side, quantity, entryPrice, close.exitPrice, close.fees),
          exitReason: close.exitReason,
          entryOrderId: position.entryOrderId,
          exitOrderId: close.exitOrderId,
        },
      });
      await tx.position.delete({ where: { id: position.id } });
      return toTradeRecord(trade);
    }),
  );
}
