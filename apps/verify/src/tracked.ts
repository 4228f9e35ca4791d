import { SIM_DEFAULT_SYMBOLS } from "@candlekeep/core";
import { storedCandleSymbols, type Database } from "@candlekeep/db";
import type { VerifyConfig } from "./config";

/** The bot's default on a real exchange when SYMBOLS is unset (apps/bot startup: top 20). */
export const DEFAULT_TOP_COINS = 20;

export interface TrackedCoins {
  symbols: string[];
  /** Where the list came from, for the report. */
  source: string;
}

/**
 * The coins the bot tracks, as far as verify can know without the exchange:
 * an explicit list (--symbols, then SYMBOLS) as given; on the simulated exchange
 * without SYMBOLS its default coins; otherwise (top:N, resolved by the bot from
 * live volumes) the N coins whose candles were written most recently, so coins
 * that dropped out of the top N long ago are not reported as stale forever.
 */
export async function resolveTrackedCoins(db: Pick<Database, "sql">, config: VerifyConfig): Promise<TrackedCoins> {
  const selection = config.symbols;
  if (selection?.kind === "list") return { symbols: selection.symbols, source: config.symbolsFromFlag ? "--symbols" : "SYMBOLS" };
  if (selection === undefined && config.exchange === "sim") return { symbols: [...SIM_DEFAULT_SYMBOLS], source: "the simulated exchange's default coins" };
  const count = selection?.count ?? DEFAULT_TOP_COINS;
  const stored = await storedCandleSymbols(db, { exchange: config.exchange, timeframes: config.timeframes });
  if (stored.length === 0) return { symbols: [], source: `SYMBOLS is top:${count} (picked by the bot from live volumes) and no candles are stored for ${config.exchange}` };
  return {
    symbols: stored.slice(0, count).map((s) => s.symbol),
    source: `top:${count} on ${config.exchange}: the ${count} coins with the newest stored candles (${stored.length} coins have candles)`,
  };
}
