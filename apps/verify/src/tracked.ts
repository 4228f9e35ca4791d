import { trackedCoins, type Database, type TrackedCoins } from "@candlekeep/db";
import type { VerifyConfig } from "./config";

// The rule lives in packages/db so the standalone dashboard tracks the same coins.
export { DEFAULT_TOP_COINS, type TrackedCoins } from "@candlekeep/db";

/** The coins the bot tracks, from verify's settings (--symbols wins over SYMBOLS). */
export function resolveTrackedCoins(db: Pick<Database, "sql">, config: VerifyConfig): Promise<TrackedCoins> {
  return trackedCoins(db, { exchange: config.exchange, selection: config.symbols, timeframes: config.timeframes, listSource: config.symbolsFromFlag ? "--symbols" : "SYMBOLS" });
}
