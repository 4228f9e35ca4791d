import { describeError } from "@candlekeep/core";
import type { Database } from "./connect";
import { isWriteOutage } from "./errors";

/**
 * Critical writes (positions, trades, balances): a failure is logged with its
 * context and re-raised, so the caller's unit of work (one coin's tick) fails
 * visibly instead of continuing on state the database never saw. A database
 * that cannot write at all (its disk full, the embedded engine stopped) is not
 * logged here: every write would log it, one line per coin and tick; the
 * caller reports that outage once (the bot's DatabaseOutage).
 */
export async function critical<T>(db: Pick<Database, "logger">, operation: string, context: Record<string, unknown>, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (!isWriteOutage(error)) db.logger.error(`${operation} failed`, { ...context, error: describeError(error) });
    throw error;
  }
}
