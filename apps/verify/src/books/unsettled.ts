import { FINAL_ORDER_STATUSES, isRestingStop, listUnsettledOrders, type Database, type LedgerOrder, type TradingMode } from "@candlekeep/db";
import { listSome, plural } from "../check";
import { sqlLiteral, type BooksPart } from "./part";

const orderLine = (o: LedgerOrder) => `${o.symbol} ${o.side} ${o.purpose} ${o.clientOrderId} (${o.status} since ${o.updatedAt.toISOString()}${o.error === null ? "" : `, last error: ${o.error}`})`;

/**
 * Orders the bot has not settled: `unknown` ones fail (the exchange could not be
 * asked, so the coin trades nothing new until they are); others not final that
 * have not changed for `minutes` warn. Age is the time since the order row last
 * changed (updated_at, the database's clock), not its exchange-time creation,
 * which a simulated exchange replaying the past puts far back.
 */
export async function unsettledOrders(db: Pick<Database, "sql">, options: { exchange: string; mode: TradingMode; minutes: number; nowMs: number }): Promise<BooksPart> {
  const { exchange, mode, minutes, nowMs } = options;
  const listed = await listUnsettledOrders(db, { exchange, mode });
  // Stop-losses resting on the exchange are standing orders, known and looked up every tick.
  const orders = listed.filter((o) => !isRestingStop(o));
  const resting = listed.length - orders.length;
  const unknown = orders.filter((o) => o.status === "unknown");
  const stuck = orders.filter((o) => o.status !== "unknown" && nowMs - o.updatedAt.getTime() > minutes * 60_000);
  const part: BooksPart = {
    summary: orders.length === 0 ? "every order settled" : `${plural(orders.length, "order")} not final yet, none unknown or unchanged for ${minutes} min`,
    failures: [],
    warnings: [],
    notes: resting > 0 ? [`${plural(resting, "stop-loss order")} resting on the exchange`] : [],
    lookInto: [],
    data: { unsettled: orders.map((o) => ({ clientOrderId: o.clientOrderId, symbol: o.symbol, side: o.side, purpose: o.purpose, status: o.status, createdAt: o.createdAt, updatedAt: o.updatedAt, error: o.error })) },
  };
  if (unknown.length > 0) {
    part.failures.push(`${plural(unknown.length, "unknown order")} (the exchange could not be asked about ${unknown.length === 1 ? "it" : "them"}; the coin trades nothing new until settled): ${listSome(unknown.map(orderLine), 5, "; ")}`);
  }
  if (stuck.length > 0) {
    part.warnings.push(`${plural(stuck.length, "order")} not final and unchanged for more than ${minutes} min: ${listSome(stuck.map(orderLine), 5, "; ")}`);
  }
  if (unknown.length + stuck.length > 0) {
    const final = FINAL_ORDER_STATUSES.map((s) => `'${s}'`).join(", ");
    part.lookInto.push(
      `the unsettled orders (the bot settles them at start and every tick once ${exchange} answers; look each client id up on the exchange): SELECT id, symbol, side, purpose, client_order_id, exchange_order_id, status, filled_amount, error, updated_at FROM orders WHERE exchange = ${sqlLiteral(exchange)} AND mode = ${sqlLiteral(mode)} AND status NOT IN (${final}) ORDER BY id`,
    );
  }
  return part;
}
