import { UserFacingError, plural } from "@candlekeep/core";
import { countOrdersByMode, positionBacking, type Database, type TradingMode } from "@candlekeep/db";

/**
 * TRADING_MODE differs from the mode of the exchange's books in the database (a configuration error).
 * Positions, trades and balances are what the orders add up to, so one database keeps one mode's
 * books per exchange: a live bot would trade paper positions as if the exchange account held them,
 * a paper bot would close live ones on paper while they stay open on the exchange, and either would
 * mix paper and real money in the trades and the dashboard's figures.
 */
export class TradingModeConflictError extends UserFacingError {
  override readonly name = "TradingModeConflictError";
}

const listed = (items: readonly string[]) => (items.length <= 5 ? items.join(", ") : `${items.slice(0, 5).join(", ")} and ${items.length - 5} more`);

/**
 * Refuses to start in `mode` while the database holds `exchange`'s orders or open positions of the
 * other mode. A position's mode is its entry order's; one from before the order ledger was paper
 * (live trading came with the ledger).
 */
export async function assertOneTradingMode(db: Pick<Database, "sql">, options: { exchange: string; mode: TradingMode }): Promise<void> {
  const other: TradingMode = options.mode === "live" ? "paper" : "live";
  const orders = (await countOrdersByMode(db, { exchange: options.exchange }))[other];
  const positions = (await positionBacking(db, options.exchange)).filter((position) => (position.entry?.mode ?? "paper") === other).map((position) => position.symbol);
  if (orders === 0 && positions.length === 0) return;
  const held = [plural(orders, "order"), ...(positions.length > 0 ? [`${plural(positions.length, "open position")} (${listed(positions)})`] : [])].join(", ");
  const fix =
    options.mode === "live"
      ? "Give live trading a database of its own (DATABASE_URL, or CANDLEKEEP_DATA_DIR for the embedded one)."
      : "Give paper trading a database of its own (DATABASE_URL, or CANDLEKEEP_DATA_DIR for the embedded one), or run TRADING_MODE=live with the exchange's keys.";
  throw new TradingModeConflictError(
    `TRADING_MODE=${options.mode}, but this database holds ${options.exchange}'s ${other} trading (${held}): one database keeps one mode's orders, positions and balances per exchange, so paper and real money never mix. ${fix}`,
  );
}
