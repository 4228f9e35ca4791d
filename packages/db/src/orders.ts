import type { Database } from "./connect";
import { critical } from "./critical";
import { amountProblem } from "./amounts";
import { POSITION_COLUMNS, TRADE_COLUMNS, toPosition, tradeFromRow, type ExitReason, type JsonObject, type OpenPosition, type StoredPositionRow, type StoredTradeRow, type TradeRecord } from "./positions";

export type OrderStatus = "intent" | "sent" | "open" | "partially_filled" | "filled" | "canceled" | "rejected" | "expired" | "unknown";
export type OrderSide = "buy" | "sell";
export type OrderPurpose = "entry" | "exit";
export type TradingMode = "paper" | "live";
/** market: sent to fill now; stop_loss: rests on the exchange until its stop price trades. */
export type OrderType = "market" | "stop_loss";

/** Statuses after which an order never changes again. */
export const FINAL_ORDER_STATUSES: readonly OrderStatus[] = ["filled", "canceled", "rejected", "expired"];
/** The final statuses as an SQL list, for `status IN (…)`. */
export const FINAL_SQL = FINAL_ORDER_STATUSES.map((status) => `'${status}'`).join(", ");

export function isFinalOrderStatus(status: OrderStatus): boolean {
  return FINAL_ORDER_STATUSES.includes(status);
}

/** A stop-loss resting on the exchange: a standing order whose state is known, not one waiting to be settled. */
export function isRestingStop(order: Pick<LedgerOrder, "type" | "status">): boolean {
  return order.type === "stop_loss" && (order.status === "open" || order.status === "partially_filled");
}
const RESTING_STOP_SQL = `(type = 'stop_loss' AND status IN ('open', 'partially_filled'))`;

/** One fee of an order, in the currency it was paid in, and what it was worth in the quote currency (null: no price for it). */
export interface OrderFee {
  currency: string;
  cost: number;
  quoteValue: number | null;
}

/** An order the bot is about to send: saved before it leaves, so a crash after it is settled from here. */
export interface OrderIntent {
  exchange: string;
  mode: TradingMode;
  symbol: string;
  side: OrderSide;
  purpose: OrderPurpose;
  /** Market unless given. */
  type?: OrderType;
  clientOrderId: string;
  /** The entry order's client id: the position this order opens or closes. */
  positionKey: string;
  exitReason: ExitReason | null;
  requestedAmount: number;
  /** Quote to spend, for a buy sent by cost. */
  requestedCost: number | null;
  /** The price the order was sized at (or the stop it executes). */
  referencePrice: number;
  /** Entries: the levels their position gets. */
  takeProfit: number | null;
  stopLoss: number | null;
  /** Exchange time of the decision. */
  createdAt: Date;
}

/** What the exchange says an order has done so far. */
export interface OrderProgress {
  status: Exclude<OrderStatus, "intent">;
  exchangeOrderId: string | null;
  /** Base amount executed, before any fee taken in the base coin. */
  filledAmount: number;
  averagePrice: number | null;
  /** Quote amount executed. */
  filledCost: number;
  /** Every fee valued in the quote currency. */
  feeQuote: number;
  /** The part of the fees paid in the base coin (a buy receives filledAmount − feeBase). */
  feeBase: number;
  fees: OrderFee[];
  error: string | null;
  /** Exchange time of the latest fill (or of the answer). */
  time: Date;
}

export interface LedgerOrder extends OrderIntent, Omit<OrderProgress, "status" | "time"> {
  id: number;
  type: OrderType;
  status: OrderStatus;
  updatedAt: Date;
}

interface StoredOrderRow {
  id: number | string;
  exchange: string;
  mode: TradingMode;
  symbol: string;
  side: OrderSide;
  purpose: OrderPurpose;
  type: OrderType;
  client_order_id: string;
  exchange_order_id: string | null;
  position_key: string;
  exit_reason: ExitReason | null;
  requested_amount: string | number;
  requested_cost: string | number | null;
  reference_price: string | number;
  take_profit: string | number | null;
  stop_loss: string | number | null;
  status: OrderStatus;
  filled_amount: string | number;
  average_price: string | number | null;
  filled_cost: string | number;
  fee_quote: string | number;
  fee_base: string | number;
  fees: unknown;
  error: string | null;
  created_at: Date | string;
  updated_at: Date | string;
}

const ORDER_COLUMNS = `id, exchange, mode, symbol, side, purpose, type, client_order_id, exchange_order_id, position_key, exit_reason, requested_amount, requested_cost,
  reference_price, take_profit, stop_loss, status, filled_amount, average_price, filled_cost, fee_quote, fee_base, fees, error, created_at, updated_at`;

const optionalNumber = (value: string | number | null) => (value === null ? null : Number(value));

function feesFromJson(value: unknown): OrderFee[] {
  if (!Array.isArray(value)) return [];
  return value.flatMap((entry: unknown) => {
    if (typeof entry !== "object" || entry === null) return [];
    const currency: unknown = Reflect.get(entry, "currency");
    const cost: unknown = Reflect.get(entry, "cost");
    const quoteValue: unknown = Reflect.get(entry, "quoteValue");
    if (typeof currency !== "string" || typeof cost !== "number") return [];
    return [{ currency, cost, quoteValue: typeof quoteValue === "number" ? quoteValue : null }];
  });
}

function toOrder(row: StoredOrderRow): LedgerOrder {
  return {
    id: Number(row.id),
    exchange: row.exchange,
    mode: row.mode,
    symbol: row.symbol,
    side: row.side,
    purpose: row.purpose,
    type: row.type,
    clientOrderId: row.client_order_id,
    exchangeOrderId: row.exchange_order_id,
    positionKey: row.position_key,
    exitReason: row.exit_reason,
    requestedAmount: Number(row.requested_amount),
    requestedCost: optionalNumber(row.requested_cost),
    referencePrice: Number(row.reference_price),
    takeProfit: optionalNumber(row.take_profit),
    stopLoss: optionalNumber(row.stop_loss),
    status: row.status,
    filledAmount: Number(row.filled_amount),
    averagePrice: optionalNumber(row.average_price),
    filledCost: Number(row.filled_cost),
    feeQuote: Number(row.fee_quote),
    feeBase: Number(row.fee_base),
    fees: feesFromJson(typeof row.fees === "string" ? JSON.parse(row.fees) : row.fees),
    error: row.error,
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
}

const INSERT_INTENT = `
WITH inserted AS (
  INSERT INTO orders (exchange, mode, symbol, side, purpose, client_order_id, position_key, exit_reason, requested_amount, requested_cost, reference_price, take_profit, stop_loss, status, created_at, type)
  VALUES ($1, $2::trading_mode, $3, $4::order_side, $5::order_purpose, $6, $7, $8::exit_reason, $9::numeric, $10::numeric, $11::numeric, $13::numeric, $14::numeric, 'intent', $12::timestamptz, $15)
  ON CONFLICT (exchange, client_order_id) DO NOTHING
  RETURNING ${ORDER_COLUMNS}
)
SELECT true AS created, ${ORDER_COLUMNS} FROM inserted
UNION ALL
SELECT false AS created, ${ORDER_COLUMNS} FROM orders WHERE exchange = $1 AND client_order_id = $6 AND NOT EXISTS (SELECT 1 FROM inserted)`;

/**
 * Saves an order before it is sent. The client order id is unique per exchange:
 * when it is already in the ledger (the same decision acted on before a crash),
 * nothing is written and the existing order is returned with `created` false, so
 * the caller settles it instead of sending it again. Critical: logs and raises.
 */
export function recordOrderIntent(db: Pick<Database, "sql" | "logger">, intent: OrderIntent): Promise<{ order: LedgerOrder; created: boolean }> {
  const { exchange, symbol, clientOrderId } = intent;
  return critical(db, "recordOrderIntent", { exchange, symbol, clientOrderId }, async () => {
    const problem =
      amountProblem("requestedAmount", intent.requestedAmount) ??
      amountProblem("requestedCost", intent.requestedCost) ??
      amountProblem("referencePrice", intent.referencePrice) ??
      amountProblem("takeProfit", intent.takeProfit) ??
      amountProblem("stopLoss", intent.stopLoss);
    if (problem !== undefined) throw new Error(`saving the ${intent.side} order of ${symbol}: ${problem}`);
    const result = await db.sql.query<StoredOrderRow & { created: boolean }>(INSERT_INTENT, [
      exchange,
      intent.mode,
      symbol,
      intent.side,
      intent.purpose,
      clientOrderId,
      intent.positionKey,
      intent.exitReason,
      String(intent.requestedAmount),
      intent.requestedCost === null ? null : String(intent.requestedCost),
      String(intent.referencePrice),
      intent.createdAt,
      intent.takeProfit === null ? null : String(intent.takeProfit),
      intent.stopLoss === null ? null : String(intent.stopLoss),
      intent.type ?? "market",
    ]);
    const row = result.rows[0];
    if (!row) throw new Error(`saving the ${intent.side} order ${clientOrderId} of ${symbol}: the database returned no row`);
    return { order: toOrder(row), created: row.created };
  });
}

/** The progress columns of an UPDATE: $2 status … $10 error, $11 time of the latest fill. */
const PROGRESS_SET = `status = $2::order_status, exchange_order_id = coalesce($3, exchange_order_id), filled_amount = $4::numeric, average_price = $5::numeric,
  filled_cost = $6::numeric, fee_quote = $7::numeric, fee_base = $8::numeric, fees = $9::jsonb, error = $10, updated_at = now()`;

function progressParams(orderId: number, progress: OrderProgress): unknown[] {
  return [
    orderId,
    progress.status,
    progress.exchangeOrderId,
    String(progress.filledAmount),
    progress.averagePrice === null ? null : String(progress.averagePrice),
    String(progress.filledCost),
    String(progress.feeQuote),
    String(progress.feeBase),
    JSON.stringify(progress.fees),
    progress.error,
    progress.time,
  ];
}

function progressProblem(progress: OrderProgress): string | undefined {
  for (const [name, value] of [
    ["filledAmount", progress.filledAmount],
    ["averagePrice", progress.averagePrice],
    ["filledCost", progress.filledCost],
    ["feeQuote", progress.feeQuote],
    ["feeBase", progress.feeBase],
  ] as const) {
    const problem = amountProblem(name, value);
    if (problem !== undefined) return problem;
    if (value !== null && value < 0) return `${name} must not be negative, got ${value}`;
  }
  if (progress.filledAmount > 0 && !(progress.averagePrice !== null && progress.averagePrice > 0)) return "a filled order needs its average price";
  return undefined;
}

// Only an order not yet final is updated: replaying a report (a retry, a restart)
// changes nothing, so a fill is never counted twice.
const UPDATE_PROGRESS = `UPDATE orders SET ${PROGRESS_SET} WHERE id = $1 AND status NOT IN (${FINAL_SQL}) RETURNING ${ORDER_COLUMNS}`;

// $12 metadata. The position is what the entry
// filled: the amount received (less a fee taken in the coin) at the average price.
// It is set, not added to, so a report read again gives the same position.
const APPLY_ENTRY = `
WITH o AS (${UPDATE_PROGRESS}),
p AS (
  INSERT INTO positions (exchange, symbol, side, quantity, entry_price, take_profit, stop_loss, entry_order_id, entry_fee, opened_at, updated_at, metadata)
  SELECT exchange, symbol, 'LONG', filled_amount - fee_base, average_price, take_profit, stop_loss, client_order_id, fee_quote, $11::timestamptz, now(), $12::jsonb
  FROM o WHERE filled_amount - fee_base > 0
  ON CONFLICT (exchange, symbol) DO UPDATE
  SET quantity = EXCLUDED.quantity, entry_price = EXCLUDED.entry_price, entry_fee = EXCLUDED.entry_fee, updated_at = now()
  WHERE positions.entry_order_id = EXCLUDED.entry_order_id
  RETURNING ${POSITION_COLUMNS}
)
SELECT ${ORDER_COLUMNS}, (SELECT row_to_json(p) FROM p) AS position FROM o`;

/**
 * Records what an entry order has done and makes its position what it filled, in
 * one statement (both or neither). Nothing changes when the order is already
 * final in the ledger: `order` is then undefined. Critical: logs and raises.
 */
export function applyEntryProgress(
  db: Pick<Database, "sql" | "logger">,
  order: Pick<LedgerOrder, "id" | "exchange" | "symbol" | "clientOrderId">,
  progress: OrderProgress,
  metadata: JsonObject,
): Promise<{ order: LedgerOrder | undefined; position: OpenPosition | undefined }> {
  return critical(db, "applyEntryProgress", { exchange: order.exchange, symbol: order.symbol, clientOrderId: order.clientOrderId }, async () => {
    const problem = progressProblem(progress);
    if (problem !== undefined) throw new Error(`recording entry ${order.clientOrderId} of ${order.symbol}: ${problem}`);
    const result = await db.sql.query<StoredOrderRow & { position: StoredPositionRow | string | null }>(APPLY_ENTRY, [...progressParams(order.id, progress), JSON.stringify(metadata)]);
    const row = result.rows[0];
    if (!row) return { order: undefined, position: undefined };
    const position = typeof row.position === "string" ? (JSON.parse(row.position) as StoredPositionRow) : row.position;
    if (progress.filledAmount - progress.feeBase > 0 && position === null) {
      throw new Error(`entry ${order.clientOrderId} of ${order.symbol} filled, but another position of ${order.symbol} is open; check the positions table`);
    }
    return { order: toOrder(row), position: position === null ? undefined : toPosition(position) };
  });
}

// $12 dust: a remainder at or below it closes the position (the exchange cannot sell it).
// $13 pending exit: kept on a position an exit only partly sold, so the rest is sold too.
// Only a final report with a fill closes (part of) the position: one trade per exit order.
const APPLY_EXIT = `
WITH o AS (${UPDATE_PROGRESS}),
closing AS (
  SELECT p.id AS position_id, p.quantity, p.entry_fee, p.entry_price, p.opened_at, p.side, p.entry_order_id,
         o.exchange, o.symbol, o.client_order_id, o.exit_reason, o.average_price, o.fee_quote,
         least(o.filled_amount, p.quantity) AS sold,
         CASE WHEN o.filled_amount >= p.quantity THEN p.entry_fee ELSE p.entry_fee * o.filled_amount / p.quantity END AS entry_fee_share
  FROM o JOIN positions p ON p.exchange = o.exchange AND p.symbol = o.symbol AND p.entry_order_id = o.position_key
  WHERE o.status IN (${FINAL_SQL}) AND o.filled_amount > 0
),
t AS (
  INSERT INTO trades (exchange, symbol, side, quantity, entry_price, exit_price, entry_time, exit_time, fees, realized_pnl, exit_reason, entry_order_id, exit_order_id)
  SELECT exchange, symbol, side, sold, entry_price, average_price, opened_at, $11::timestamptz, entry_fee_share + fee_quote,
         sold * (average_price - entry_price) - (entry_fee_share + fee_quote), coalesce(exit_reason, 'MANUAL'), entry_order_id, client_order_id
  FROM closing
  ON CONFLICT (exchange, exit_order_id) DO NOTHING
  RETURNING ${TRADE_COLUMNS}
),
gone AS (
  DELETE FROM positions p USING closing c WHERE p.id = c.position_id AND c.quantity - c.sold <= $12::numeric RETURNING p.id
),
kept AS (
  UPDATE positions p SET quantity = c.quantity - c.sold, entry_fee = c.entry_fee - c.entry_fee_share, updated_at = now(), metadata = p.metadata || $13::jsonb
  FROM closing c WHERE p.id = c.position_id AND c.quantity - c.sold > $12::numeric
  RETURNING ${POSITION_COLUMNS.split(", ").map((column) => `p.${column}`).join(", ")}
)
SELECT ${ORDER_COLUMNS}, (SELECT row_to_json(t) FROM t) AS trade, (SELECT row_to_json(kept) FROM kept) AS position, EXISTS (SELECT 1 FROM gone) AS closed FROM o`;

/**
 * Records what an exit order has done. Once it is final with a fill, the sold part
 * becomes a trade (with its share of the entry fee) and the position shrinks by it,
 * or is removed when what is left is dust; all in one statement. Nothing changes
 * when the order is already final in the ledger (`order` undefined). Critical:
 * logs and raises.
 */
export function applyExitProgress(
  db: Pick<Database, "sql" | "logger">,
  order: Pick<LedgerOrder, "id" | "exchange" | "symbol" | "clientOrderId" | "exitReason">,
  progress: OrderProgress,
  options: { dust: number },
): Promise<{ order: LedgerOrder | undefined; trade: TradeRecord | undefined; position: OpenPosition | undefined; closed: boolean }> {
  return critical(db, "applyExitProgress", { exchange: order.exchange, symbol: order.symbol, clientOrderId: order.clientOrderId }, async () => {
    const problem = progressProblem(progress) ?? amountProblem("dust", options.dust);
    if (problem !== undefined) throw new Error(`recording exit ${order.clientOrderId} of ${order.symbol}: ${problem}`);
    const result = await db.sql.query<StoredOrderRow & { trade: StoredTradeRow | string | null; position: StoredPositionRow | string | null; closed: boolean }>(APPLY_EXIT, [
      ...progressParams(order.id, progress),
      String(options.dust),
      JSON.stringify({ pendingExit: order.exitReason ?? "MANUAL" }),
    ]);
    const row = result.rows[0];
    if (!row) return { order: undefined, trade: undefined, position: undefined, closed: false };
    const trade = typeof row.trade === "string" ? (JSON.parse(row.trade) as StoredTradeRow) : row.trade;
    const position = typeof row.position === "string" ? (JSON.parse(row.position) as StoredPositionRow) : row.position;
    return { order: toOrder(row), trade: trade === null ? undefined : tradeFromRow(trade), position: position === null ? undefined : toPosition(position), closed: row.closed };
  });
}

/** Sets an order's status without a fill: sent (answer lost), unknown (cannot be asked), rejected or canceled with nothing filled. */
export function markOrder(
  db: Pick<Database, "sql" | "logger">,
  order: Pick<LedgerOrder, "id" | "exchange" | "symbol" | "clientOrderId">,
  change: { status: "sent" | "unknown" | "rejected" | "canceled" | "expired"; error: string | null; exchangeOrderId?: string | null },
): Promise<LedgerOrder | undefined> {
  return critical(db, "markOrder", { exchange: order.exchange, symbol: order.symbol, clientOrderId: order.clientOrderId, status: change.status }, async () => {
    const result = await db.sql.query<StoredOrderRow>(
      `UPDATE orders SET status = $2::order_status, error = $3, exchange_order_id = coalesce($4, exchange_order_id), updated_at = now()
       WHERE id = $1 AND status NOT IN (${FINAL_SQL}) AND filled_amount = 0 RETURNING ${ORDER_COLUMNS}`,
      [order.id, change.status, change.error, change.exchangeOrderId ?? null],
    );
    const row = result.rows[0];
    return row && toOrder(row);
  });
}

/** Orders not final yet (intent, sent, open, partially filled, unknown) of an exchange and mode, oldest first. */
export async function listUnsettledOrders(db: Pick<Database, "sql">, filter: { exchange: string; mode: TradingMode }): Promise<LedgerOrder[]> {
  const result = await db.sql.query<StoredOrderRow>(
    `SELECT ${ORDER_COLUMNS} FROM orders WHERE exchange = $1 AND mode = $2::trading_mode AND status NOT IN (${FINAL_SQL}) ORDER BY id`,
    [filter.exchange, filter.mode],
  );
  return result.rows.map(toOrder);
}

/** How many exit orders the position has had: the next exit's sequence number, for its client id. */
export async function countExitOrders(db: Pick<Database, "sql">, key: { exchange: string; positionKey: string }): Promise<number> {
  const result = await db.sql.query<{ n: string | number }>(`SELECT count(*) AS n FROM orders WHERE exchange = $1 AND position_key = $2 AND purpose = 'exit'`, [key.exchange, key.positionKey]);
  return Number(result.rows[0]?.n ?? 0);
}

/** The newest orders (of an exchange, of a coin), newest first. */
export async function listOrders(db: Pick<Database, "sql">, filter: { exchange?: string; symbol?: string; limit?: number } = {}): Promise<LedgerOrder[]> {
  const result = await db.sql.query<StoredOrderRow>(
    `SELECT ${ORDER_COLUMNS} FROM orders WHERE ($1::text IS NULL OR exchange = $1) AND ($2::text IS NULL OR symbol = $2) ORDER BY created_at DESC, id DESC LIMIT $3`,
    [filter.exchange ?? null, filter.symbol ?? null, filter.limit ?? 100],
  );
  return result.rows.map(toOrder);
}

/** What a paper account's filled orders add up to: the change of its cash, and the coins held per market. */
export interface PaperLedgerTotals {
  /** Sales less their fees, minus purchases plus their fees, in the quote currency. */
  cashChange: number;
  holdings: Map<string, number>;
  /** Fees paid, in the quote currency. */
  fees: number;
}

// Summed in numeric: the totals are exact sums of what each fill recorded. A buy's fee
// taken in the coin is paid from what it bought (fee_base), not from the cash.
const PAPER_TOTALS = `
SELECT symbol,
  sum(sum(CASE side WHEN 'sell' THEN filled_cost - fee_quote ELSE -(filled_cost + fee_quote - fee_base * average_price) END)) OVER ()::text AS cash_change,
  sum(CASE side WHEN 'buy' THEN filled_amount - fee_base ELSE -filled_amount END)::text AS held,
  sum(sum(fee_quote)) OVER ()::text AS fees
FROM orders WHERE exchange = $1 AND mode = 'paper' AND filled_amount > 0
GROUP BY symbol ORDER BY symbol`;

export async function paperLedgerTotals(db: Pick<Database, "sql">, filter: { exchange: string }): Promise<PaperLedgerTotals> {
  const result = await db.sql.query<{ symbol: string; cash_change: string; held: string; fees: string }>(PAPER_TOTALS, [filter.exchange]);
  const totals: PaperLedgerTotals = { cashChange: 0, holdings: new Map(), fees: 0 };
  for (const row of result.rows) {
    totals.cashChange = Number(row.cash_change);
    totals.fees = Number(row.fees);
    const held = Number(row.held);
    if (held !== 0) totals.holdings.set(row.symbol, held);
  }
  return totals;
}

/** How many orders of an exchange (either mode) are unknown, and how many others are not final yet (intent, sent, open, partially filled). */
export async function countUnsettledOrders(db: Pick<Database, "sql">, filter: { exchange: string }): Promise<{ unknown: number; unsettled: number }> {
  const result = await db.sql.query<{ unknown: string | number; unsettled: string | number }>(
    `SELECT count(*) FILTER (WHERE status = 'unknown') AS unknown, count(*) FILTER (WHERE status <> 'unknown') AS unsettled
     FROM orders WHERE exchange = $1 AND status NOT IN (${FINAL_SQL}) AND NOT ${RESTING_STOP_SQL}`,
    [filter.exchange],
  );
  const row = result.rows[0];
  return { unknown: Number(row?.unknown ?? 0), unsettled: Number(row?.unsettled ?? 0) };
}

/** How many orders of an exchange each trading mode has, in the whole ledger. */
export async function countOrdersByMode(db: Pick<Database, "sql">, filter: { exchange: string }): Promise<Record<TradingMode, number>> {
  const result = await db.sql.query<{ paper: string | number; live: string | number }>(
    `SELECT count(*) FILTER (WHERE mode = 'paper') AS paper, count(*) FILTER (WHERE mode = 'live') AS live FROM orders WHERE exchange = $1`,
    [filter.exchange],
  );
  const row = result.rows[0];
  return { paper: Number(row?.paper ?? 0), live: Number(row?.live ?? 0) };
}

// A position saved before the ledger existed has no entry order: one is written for it,
// filled at its entry price, so the ledger backs it and a paper account holds its coins.
const CARRY_OVER_POSITIONS = `
INSERT INTO orders (exchange, mode, symbol, side, purpose, client_order_id, position_key, requested_amount, reference_price, take_profit, stop_loss,
  status, filled_amount, average_price, filled_cost, fee_quote, error, created_at)
SELECT p.exchange, $2::trading_mode, p.symbol, 'buy', 'entry', p.entry_order_id, p.entry_order_id, p.quantity, p.entry_price, p.take_profit, p.stop_loss,
  'filled', p.quantity, p.entry_price, p.quantity * p.entry_price, p.entry_fee, 'carried over: the position was opened before the order ledger', p.opened_at
FROM positions p
WHERE p.exchange = $1 AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.exchange = p.exchange AND o.client_order_id = p.entry_order_id)
ON CONFLICT (exchange, client_order_id) DO NOTHING
RETURNING (filled_cost + fee_quote)::text AS paid`;

/**
 * Writes a filled entry order for every open position of `exchange` that the
 * ledger does not back (one saved before the ledger existed), and returns what
 * they cost with their fees, in the quote currency. Critical: logs and raises.
 */
export function carryOverPositions(db: Pick<Database, "sql" | "logger">, filter: { exchange: string; mode: TradingMode }): Promise<{ positions: number; paid: number }> {
  return critical(db, "carryOverPositions", { exchange: filter.exchange }, async () => {
    const result = await db.sql.query<{ paid: string }>(CARRY_OVER_POSITIONS, [filter.exchange, filter.mode]);
    return { positions: result.rows.length, paid: result.rows.reduce((sum, row) => sum + Number(row.paid), 0) };
  });
}
