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

export interface BotLockOptions {
  /**
   * How long to wait for another bot holding the lock to stop (0: fail at once).
   * During a deploy the new bot may start before the old one has finished its
   * last tick; waiting lets it take over instead of exiting.
   */
  waitMs?: number;
  /** How often the lock is tried while waiting. */
  pollMs?: number;
  /** Stops waiting (the process is shutting down). */
  signal?: AbortSignal;
}

const DEFAULT_LOCK_POLL_MS = 1000;

function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done);
  });
}

/**
 * Makes sure one bot per (database, exchange) trades: two would each open the
 * same positions. Server: a session advisory lock on a connection held for the
 * bot's life. Embedded: the data-directory lock already excludes other processes.
 * With `waitMs`, a lock held by another bot is tried again until it is free or
 * the time is up (then BotAlreadyRunningError).
 */
export async function acquireBotLock(db: Pick<Database, "kind" | "pool" | "logger">, identity: string, options: BotLockOptions = {}): Promise<BotLock> {
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
      // (A dying connection may report several errors; the first one is logged.)
      if (client === next && held) db.logger.warn("bot lock connection lost", { identity, error: describeError(error) });
      if (client === next) held = false;
    });
    client = next;
    held = true;
  };

  const waitMs = Math.max(0, options.waitMs ?? 0);
  const deadline = Date.now() + waitMs;
  for (let waiting = false; ; ) {
    try {
      await take();
      if (waiting) db.logger.info("bot lock taken; the other bot has stopped", { identity });
      break;
    } catch (error) {
      const left = deadline - Date.now();
      if (!(error instanceof BotAlreadyRunningError) || left <= 0 || options.signal?.aborted) {
        if (error instanceof BotAlreadyRunningError && options.signal?.aborted) {
          throw new BotAlreadyRunningError(`Stopped while waiting for the other bot running for "${identity}" on this database to stop.`);
        }
        if (error instanceof BotAlreadyRunningError && waitMs > 0) {
          throw new BotAlreadyRunningError(
            `Another bot is still running for "${identity}" on this database after waiting ${waitMs >= 1000 ? `${Math.round(waitMs / 1000)} s` : `${waitMs} ms`} for it to stop. Stop it first, or give this one another EXCHANGE or database.`,
          );
        }
        throw error;
      }
      if (!waiting) {
        waiting = true;
        db.logger.warn("another bot holds the bot lock; waiting for it to stop", { identity, waitMs });
      }
      await pause(Math.min(options.pollMs ?? DEFAULT_LOCK_POLL_MS, left), options.signal);
    }
  }
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
