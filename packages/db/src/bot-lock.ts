import type pg from "pg";
import { describeError, UserFacingError } from "@candlekeep/core";
import type { Database } from "./connect";

/** Another bot already trades this exchange on this database. */
export class BotAlreadyRunningError extends UserFacingError {
  override readonly name = "BotAlreadyRunningError";
}

export interface BotLock {
  /** False once the connection holding the lock was lost (the server released it). */
  readonly held: boolean;
  /** Takes the lock again after an outage; throws BotAlreadyRunningError if another bot took it meanwhile. */
  reacquire(): Promise<void>;
  release(): Promise<void>;
}

// Session-level advisory locks are keyed by two int4s: a fixed namespace for
// Candlekeep, and hashtext(name) for the bot identity.
const LOCK_NAMESPACE = 0x436b6570; // "Ckep"

/**
 * Makes sure one bot per (database, exchange) trades: two would each open the
 * same positions. Server: a session advisory lock on a connection held for the
 * bot's life. Embedded: the data-directory lock already excludes other processes.
 */
export async function acquireBotLock(db: Pick<Database, "kind" | "pool" | "logger">, identity: string): Promise<BotLock> {
  const pool = db.pool;
  if (db.kind === "embedded" || !pool) {
    return { held: true, reacquire: async () => undefined, release: async () => undefined };
  }
  let client: pg.PoolClient | undefined;
  let held = false;

  const take = async () => {
    const next = await pool.connect();
    try {
      const result = await next.query<{ locked: boolean }>("SELECT pg_try_advisory_lock($1, hashtext($2)) AS locked", [LOCK_NAMESPACE, identity]);
      if (!result.rows[0]?.locked) {
        throw new BotAlreadyRunningError(
          `Another bot is already running for "${identity}" on this database. Stop it first, or give this one another EXCHANGE or database.`,
        );
      }
    } catch (error) {
      next.release();
      throw error;
    }
    next.on("error", (error) => {
      // The server drops session locks with the connection: note it, so the bot can take the lock again.
      held = false;
      db.logger.warn("bot lock connection lost", { identity, error: describeError(error) });
    });
    client = next;
    held = true;
  };

  await take();
  return {
    get held() {
      return held;
    },
    async reacquire() {
      if (held) return;
      client?.release(true);
      client = undefined;
      await take();
    },
    async release() {
      if (!client) return;
      const current = client;
      client = undefined;
      held = false;
      try {
        await current.query("SELECT pg_advisory_unlock($1, hashtext($2))", [LOCK_NAMESPACE, identity]);
        current.release();
      } catch {
        current.release(true);
      }
    },
  };
}
