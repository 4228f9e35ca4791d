import { describeError } from "@candlekeep/core";
import { listOpenPositions, type Database, type OpenPosition } from "@candlekeep/db";
import { amount, listSome } from "../check";
import type { BooksPart } from "./part";

/** One currency of an exchange account: what it holds in all (free and in orders). */
export interface ExchangeBalance {
  currency: string;
  total: number;
}

/**
 * Reads the live account's balances: ccxt's `fetchBalance()` (its `total` per
 * currency) with the bot's keys (see ../exchange.ts). Throws one line naming
 * the exchange and the reason when it cannot.
 */
export type BalancesProvider = () => Promise<ExchangeBalance[]>;

/** Exchanges round the balances they report to their own precision: differences up to this fraction of the position pass. */
export const HOLDINGS_TOLERANCE = 1e-6;

export interface HoldingComparison {
  currency: string;
  /** The open positions in this coin. */
  symbols: string[];
  /** What they hold together. */
  held: number;
  /** The exchange's total of the coin; 0 when it lists none. */
  onExchange: number;
  /** onExchange − held. */
  difference: number;
  /** short: the exchange has less than the positions hold; surplus: more (bought by hand, or dust left by closed positions). */
  state: "match" | "short" | "surplus";
}


/** The coin a position holds: BTC of BTC/USDT (and of BTC/USDT:USDT). */
export const baseCurrency = (symbol: string) => symbol.split("/")[0] ?? symbol;

/**
 * Compares the open positions, summed per base coin, with the exchange's
 * balances: a difference beyond `tolerance` × held is short or surplus. Coins
 * the exchange holds without a position are not the bot's and not compared.
 */
export function compareHoldings(positions: readonly Pick<OpenPosition, "symbol" | "quantity">[], balances: readonly ExchangeBalance[], tolerance: number): HoldingComparison[] {
  const onExchange = new Map<string, number>();
  for (const balance of balances) onExchange.set(balance.currency.toUpperCase(), (onExchange.get(balance.currency.toUpperCase()) ?? 0) + balance.total);
  const held = new Map<string, { symbols: string[]; quantity: number }>();
  for (const position of positions) {
    const currency = baseCurrency(position.symbol).toUpperCase();
    const entry = held.get(currency) ?? { symbols: [], quantity: 0 };
    entry.symbols.push(position.symbol);
    entry.quantity += position.quantity;
    held.set(currency, entry);
  }
  return [...held]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([currency, { symbols, quantity }]) => {
      const total = onExchange.get(currency) ?? 0;
      const difference = total - quantity;
      const allowed = tolerance * quantity;
      return { currency, symbols, held: quantity, onExchange: total, difference, state: difference < -allowed ? "short" : difference > allowed ? "surplus" : "match" };
    });
}

/**
 * The live part of the books check: the database's open positions of `exchange`
 * against the exchange's balances from `balances()`. Short coins fail (the
 * database holds what the account does not), surplus coins warn. Without
 * `balances` nothing is compared: a warning naming the settings when the keys
 * are missing (`keysSet` false), a note otherwise. An account that cannot be
 * read fails with its one line.
 */
export async function liveHoldings(db: Pick<Database, "sql">, options: { exchange: string; balances: BalancesProvider | undefined; keysSet: boolean; tolerance?: number }): Promise<BooksPart> {
  const part: BooksPart = { summary: "exchange balances not compared", failures: [], warnings: [], notes: [], lookInto: [], data: { compared: false } };
  const { exchange } = options;
  if (options.balances === undefined) {
    if (exchange === "sim") part.notes.push("exchange balances not compared: the simulated exchange (EXCHANGE=sim) has no account to compare");
    else if (!options.keysSet) part.warnings.push(`exchange balances not compared: verify needs EXCHANGE_API_KEY and EXCHANGE_API_SECRET (the bot's keys, or a read-only pair) to compare the open positions with ${exchange}'s balances`);
    else part.notes.push(`exchange balances not compared: verify was given no connection to ${exchange}; compare the open positions with the account's balances on the exchange`);
    return part;
  }
  let balances: ExchangeBalance[];
  try {
    balances = await options.balances();
  } catch (error) {
    part.failures.push(`exchange balances not compared: ${describeError(error)}`);
    return part;
  }
  const positions = await listOpenPositions(db, { exchange });
  const comparisons = compareHoldings(positions, balances, options.tolerance ?? HOLDINGS_TOLERANCE);
  const line = (c: HoldingComparison) => `${c.currency}: open positions hold ${amount(c.held)} (${c.symbols.join(", ")}), the exchange has ${amount(c.onExchange)}`;
  for (const c of comparisons.filter((c) => c.state === "short")) part.failures.push(`${line(c)}: ${amount(-c.difference)} short`);
  for (const c of comparisons.filter((c) => c.state === "surplus")) part.warnings.push(`${line(c)}: ${amount(c.difference)} more than the positions (bought by hand, or dust of closed positions)`);
  const short = comparisons.filter((c) => c.state === "short").map((c) => c.currency);
  if (short.length > 0) {
    part.lookInto.push(`${exchange}'s trade history of ${listSome(short)} against the orders table: a short coin was sold or withdrawn outside the bot, or an exit filled that the ledger has not recorded`);
  }
  part.summary = `${comparisons.filter((c) => c.state === "match").length}/${comparisons.length} coins held match the exchange's balances`;
  part.data = { compared: true, holdings: comparisons };
  return part;
}
