import { UserFacingError } from "@candlekeep/core";
import { listUnsettledOrders, positionBacking, type Database, type TradingMode } from "@candlekeep/db";

/**
 * TRADING_MODE differs from the mode of open positions or unsettled orders the database holds for the
 * exchange (a configuration error): a live bot would sell paper positions the exchange account does not
 * hold, a paper bot would close live positions on paper while they stay open on the exchange.
 */
export class TradingModeConflictError extends UserFacingError {
  override readonly name = "TradingModeConflictError";
}

const listed = (items: readonly string[]) => (items.length <= 5 ? items.join(", ") : `${items.slice(0, 5).join(", ")} and ${items.length - 5} more`);

/**
 * Refuses to start in `mode` while `exchange`'s open positions or unsettled orders in this database
 * belong to the other mode. A position's mode is its entry order's; a position from before the order
 * ledger was paper (live trading came with the ledger).
 */
export async function assertOneTradingMode(db: Pick<Database, "sql">, options: { exchange: string; mode: TradingMode }): Promise<void> {
  const other: TradingMode = options.mode === "live" ? "paper" : "live";
  const positions = (await positionBacking(db, options.exchange)).filter((position) => (position.entry?.mode ?? "paper") === other).map((position) => position.symbol);
  const orders = (await listUnsettledOrders(db, { exchange: options.exchange, mode: other })).map((order) => `${order.symbol} ${order.clientOrderId}`);
  if (positions.length === 0 && orders.length === 0) return;
  const held = [
    ...(positions.length > 0 ? [`${positions.length} open ${other} position${positions.length === 1 ? "" : "s"} (${listed(positions)})`] : []),
    ...(orders.length > 0 ? [`${orders.length} unsettled ${other} order${orders.length === 1 ? "" : "s"} (${listed(orders)})`] : []),
  ].join(" and ");
  const why =
    options.mode === "live"
      ? "a live bot would trade them as if the exchange account held them"
      : "a paper bot would settle them on paper while they stay open on the exchange";
  const fix =
    options.mode === "live"
      ? "Give live trading a database of its own (DATABASE_URL, or CANDLEKEEP_DATA_DIR for the embedded one), or run TRADING_MODE=paper until they are closed."
      : "Run TRADING_MODE=live (with the exchange's keys) to manage them, or give paper trading a database of its own (DATABASE_URL, or CANDLEKEEP_DATA_DIR for the embedded one).";
  throw new TradingModeConflictError(`TRADING_MODE=${options.mode}, but this database holds ${held} on ${options.exchange}: ${why}. ${fix}`);
}
