import type pg from "pg";
import { describeError, UserFacingError } from "@candlekeep/core";
import type { Database } from "./connect";
import { isServerError } from "./errors";

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
  /** How often the lock's connection is asked whether it still answers (LOCK_HEARTBEAT_MS). */
  heartbeatMs?: number;
  /** How long that question may go unanswered before the connection is taken for lost (LOCK_HEARTBEAT_TIMEOUT_MS). */
  heartbeatTimeoutMs?: number;
}

const DEFAULT_LOCK_POLL_MS = 1000;

/**
 * The lock's connection sits idle for the bot's life, so nothing would tell the
 * bot that it went silent (a vanished NAT entry, a failed-over server): it is
 * asked `SELECT 1` this often. The same question keeps the session from the
 * server's idle_session_timeout (a minute, see connect.ts), which ends the
 * session, and frees the lock, of a bot that vanished.
 */
export const LOCK_HEARTBEAT_MS = 10_000;
/** An unanswered heartbeat for this long: the connection is lost (trading pauses until the lock is taken again). */
export const LOCK_HEARTBEAT_TIMEOUT_MS = 10_000;
/** The goodbye (pg_advisory_unlock) at release waits this long at most; the server frees the lock with the session anyway. */
const UNLOCK_TIMEOUT_MS = 3000;
/** After ending this bot's own earlier session, how long the server may take to free its lock. */
const STALE_SESSION_EXIT_MS = 5000;

/** The server session that took the lock: its backend's pid and start time (together unique, where a pid alone is reused). */
interface LockSession {
  pid: number;
  startedAt: string;
}

/** A statement with its own bound on the wait for its answer (pg's query_timeout). */
interface BoundedQuery extends pg.QueryConfig {
  query_timeout: number;
}

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
  let heartbeat: NodeJS.Timeout | undefined;
  /** The session that held the lock when its connection was lost: the server may still hold the lock for it. */
  let lostSession: LockSession | undefined;
  let session: LockSession | undefined;
  const heartbeatMs = options.heartbeatMs ?? LOCK_HEARTBEAT_MS;
  const heartbeatTimeoutMs = options.heartbeatTimeoutMs ?? LOCK_HEARTBEAT_TIMEOUT_MS;

  /** The lock's connection is lost: noted once (the server drops the lock with the session), and the connection closed. */
  const lose = (lost: pg.PoolClient, error: unknown) => {
    if (client !== lost) return;
    if (held) db.logger.warn("bot lock connection lost", { identity, error: describeError(error) });
    held = false;
    client = undefined;
    lostSession = session;
    clearTimeout(heartbeat);
    // A timed-out question is still on the connection: releasing with the error closes it.
    lost.release(error instanceof Error ? error : new Error(describeError(error)));
  };

  const beat = (current: pg.PoolClient) => {
    heartbeat = setTimeout(() => {
      const ping: BoundedQuery = { text: "SELECT 1", query_timeout: heartbeatTimeoutMs };
      current.query(ping).then(
        () => {
          if (client === current) beat(current);
        },
        (error: unknown) => lose(current, error),
      );
    }, heartbeatMs);
    heartbeat.unref();
  };

  /**
   * Ends this bot's own earlier session (its connection lost without the server
   * noticing yet), which still holds the lock, and waits for the lock to come
   * free. False when that session is gone already: someone else holds the lock.
   */
  const endLostSession = async (connection: pg.PoolClient, lost: LockSession): Promise<boolean> => {
    const stillThere = `The bot lock for "${identity}" is still held by this bot's earlier session (pid ${lost.pid}), whose connection was lost without the server noticing`;
    let ended: pg.QueryResult<{ ended: boolean }>;
    try {
      ended = await connection.query<{ ended: boolean }>(
        "SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity WHERE pid = $1 AND extract(epoch FROM backend_start)::text = $2",
        [lost.pid, lost.startedAt],
      );
    } catch (error) {
      if (!isServerError(error)) throw error;
      throw new Error(`${stillThere}, and it may not be ended (${describeError(error)}); trading stays paused until the server ends it (within a minute).`);
    }
    if (ended.rows.length === 0) return false;
    if (!ended.rows[0]?.ended) throw new Error(`${stillThere}, and it could not be ended; trading stays paused until the server ends it (within a minute).`);
    db.logger.info("the bot lock was still held by this bot's own lost connection; that session was ended", { identity, pid: lost.pid });
    for (const deadline = Date.now() + STALE_SESSION_EXIT_MS; Date.now() < deadline; ) {
      if ((await connection.query<{ locked: boolean }>("SELECT pg_try_advisory_lock($1, hashtext($2)) AS locked", [LOCK_NAMESPACE, identity])).rows[0]?.locked) return true;
      await pause(100, undefined);
    }
    return false;
  };

  const take = async () => {
    const next = await pool.connect();
    let taken: LockSession | undefined;
    try {
      const result = await next.query<{ locked: boolean; pid: number; started: string }>(
        "SELECT pg_try_advisory_lock($1, hashtext($2)) AS locked, pg_backend_pid() AS pid, (SELECT extract(epoch FROM backend_start)::text FROM pg_stat_activity WHERE pid = pg_backend_pid()) AS started",
        [LOCK_NAMESPACE, identity],
      );
      const row = result.rows[0];
      const locked = Boolean(row?.locked) || (lostSession !== undefined && (await endLostSession(next, lostSession)));
      if (!locked) {
        throw new BotAlreadyRunningError(
          `Another bot is already running for "${identity}" on this database. Stop it first, or give this one another EXCHANGE or database.`,
        );
      }
      taken = { pid: Number(row?.pid), startedAt: String(row?.started) };
    } catch (error) {
      // The connection is pooled again unless it failed (a lost or silent one is closed).
      next.release(error instanceof BotAlreadyRunningError || isServerError(error) ? undefined : error instanceof Error ? error : new Error(describeError(error)));
      throw error;
    }
    next.on("error", (error) => lose(next, error));
    client = next;
    session = taken;
    lostSession = undefined;
    held = true;
    beat(next);
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
      await take();
    },
    async release() {
      clearTimeout(heartbeat);
      lostSession = undefined;
      if (!client) return;
      const current = client;
      client = undefined;
      held = false;
      try {
        const unlock: BoundedQuery = { text: "SELECT pg_advisory_unlock($1, hashtext($2))", values: [LOCK_NAMESPACE, identity], query_timeout: UNLOCK_TIMEOUT_MS };
        await current.query(unlock);
        current.release();
      } catch (error) {
        current.release(error instanceof Error ? error : true);
      }
    },
  };
}
