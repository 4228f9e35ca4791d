import { SIM_DEFAULT_SYMBOLS, type SymbolSelection, type Timeframe } from "@candlekeep/core";
import { storedCandleSymbols } from "./candle-symbols";
import type { Database } from "./connect";

/** The bot's default on a real exchange when SYMBOLS is unset (apps/bot startup: top 20). */
export const DEFAULT_TOP_COINS = 20;

export interface TrackedCoins {
  symbols: string[];
  /** Where the list came from, for reports. */
  source: string;
}

/**
 * The coins the bot tracks, as far as a tool without exchange access can know
 * (verify, the standalone dashboard): an explicit list as given; on the simulated
 * exchange without SYMBOLS its default coins; otherwise (top:N, resolved by the
 * bot from live volumes) the N coins whose candles were written most recently,
 * so coins that dropped out of the top N long ago are not reported as stale forever.
 */
export async function trackedCoins(
  db: Pick<Database, "sql">,
  query: {
    exchange: string;
    selection: SymbolSelection | undefined;
    timeframes: readonly Timeframe[];
    /** How an explicit list is named in `source` ("SYMBOLS", "--symbols"). */
    listSource?: string;
  },
): Promise<TrackedCoins> {
  const { selection, exchange } = query;
  if (selection?.kind === "list") return { symbols: selection.symbols, source: query.listSource ?? "SYMBOLS" };
  if (selection === undefined && exchange === "sim") return { symbols: [...SIM_DEFAULT_SYMBOLS], source: "the simulated exchange's default coins" };
  const count = selection?.count ?? DEFAULT_TOP_COINS;
  const stored = await storedCandleSymbols(db, { exchange, timeframes: query.timeframes });
  if (stored.length === 0) return { symbols: [], source: `SYMBOLS is top:${count} (picked by the bot from live volumes) and no candles are stored for ${exchange}` };
  return {
    symbols: stored.slice(0, count).map((s) => s.symbol),
    source: `top:${count} on ${exchange}: the ${count} coins with the newest stored candles (${stored.length} coins have candles)`,
  };
}
