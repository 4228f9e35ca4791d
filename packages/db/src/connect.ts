import pg from "pg";
import { describeError, type Logger } from "@candlekeep/core";
import type { PrismaClient } from "./generated/prisma/client";
import { openEmbedded } from "./embedded";
import { DatabaseUnreachableError, errorCode, isServerError } from "./errors";
import { applyMigrations, assertNoPendingMigrations } from "./migrate";
import { serverPrisma } from "./prisma-client";
import { DEFAULT_RETRY, RetryExhaustedError, withRetry, type RetryPolicy } from "./retry";
import type { SqlRunner } from "./sql";
import { isSocketHost, parseDatabaseUrl, type DatabaseUrl } from "./url";

export type DatabaseKind = "server" | "embedded";

/** An open database: `sql` for the repository functions, Prisma (made on first use, see LazyPrisma) for typed reads. */
export interface Database {
  readonly kind: DatabaseKind;
  /** Where it points, safe to log (password redacted / data directory). */
  readonly target: string;
  readonly prisma: PrismaClient;
  readonly sql: SqlRunner;
  /**
   * Runs `fn` on one dedicated connection (session locks, explicit transactions).
   * A failure other than the server's own error (a timeout, a lost connection,
   * a bug in `fn`) closes that connection instead of pooling it: its state is unknown.
   */
  session<T>(fn: (connection: SqlRunner) => Promise<T>, options?: SessionOptions): Promise<T>;
  /** Where repository functions report what they log-and-swallow or log-and-raise. */
  readonly logger: Logger;
  /** The server pool, for COPY; undefined on the embedded engine. */
  readonly pool: pg.Pool | undefined;
  close(): Promise<void>;
}

export interface SessionOptions {
  /**
   * Server: how long each statement of the session may go unanswered, in ms,
   * instead of DbOptions.queryTimeoutMs; 0 for no bound (migrations: an index
   * build on a large table, a wait for another migrator's lock).
   */
  queryTimeoutMs?: number;
}

export interface DbOptions {
  /** Unset → embedded engine under `dataDir`. */
  databaseUrl?: string | undefined;
  /** The setting `databaseUrl` came from, named in its errors and warnings (DATABASE_URL unless given). */
  databaseUrlSetting?: string;
  /** PEM text of the server's CA (managed PostgreSQL). */
  caCert?: string | undefined;
  poolMax?: number;
  /** Embedded database directory; the database lives in `<dataDir>/pgdata`. */
  dataDir: string;
  /** Apply pending migrations when opening (true), or refuse to open with pending ones (false). */
  autoMigrate: boolean;
  /**
   * With autoMigrate false: refuse to open with pending, failed or modified
   * migrations (true, the default), or open without looking (false), for tools
   * that report migration status themselves (apps/verify).
   */
  checkMigrations?: boolean;
  retry?: RetryPolicy;
  /** Server: ends the connection retries at once when it aborts (a stop requested while the database is down). */
  signal?: AbortSignal | undefined;
  logger: Logger;
  /** Where migrations live; defaults to the repository's prisma/migrations. */
  migrationsDir?: string;
  /**
   * Server: how long a statement may go unanswered before its connection is
   * taken for dead (DEFAULT_QUERY_TIMEOUT_MS; 0: never).
   */
  queryTimeoutMs?: number;
  /** Server: the sessions' idle_session_timeout, in ms (IDLE_SESSION_TIMEOUT_MS); shorter in tests. */
  idleSessionTimeoutMs?: number;
}

export const DEFAULT_POOL_MAX = 30;
const DEFAULT_URL_SETTING = "DATABASE_URL";
/** How long a connection attempt may take unless DATABASE_URL's connect_timeout says otherwise. */
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/**
 * How long a statement may go unanswered on a server connection before the
 * connection is taken for dead (pg's client-side `query_timeout`). A connection
 * that stops carrying bytes without a reset (a vanished NAT entry, a failed-over
 * managed database) sends no error, ever: without a bound its caller waits for
 * good. The repositories' statements (an order, a position, an event batch, an
 * account snapshot, a lock) take milliseconds; 30 s without an answer is not a
 * slow server but a dead path. Work that may legitimately take longer carries
 * its own bound: the candle write its CANDLE_WRITE_TIMEOUT_MS (a server-side
 * statement_timeout; the client waits a little longer, so the server's cancel
 * arrives first), migrations none (Database.session's queryTimeoutMs 0). No
 * server-side statement_timeout is set for every session: it would cut exactly
 * that work, and a dead connection would never deliver its cancel anyway.
 */
export const DEFAULT_QUERY_TIMEOUT_MS = 30_000;
/** setTimeout's largest delay: "no bound" for a statement (pg reads 0 as "the pool's bound"). */
const NO_QUERY_TIMEOUT_MS = 2_147_483_647;

/**
 * Set by the server on every session of the pool (PostgreSQL 14+ for the first;
 * a server without a setting skips it): a session idle this long, or idle this
 * long inside a transaction, is ended and its locks released. The pool closes
 * its own idle connections after 30 s, the bot lock's session is pinged every
 * 10 s (bot-lock.ts), and no transaction of ours waits on anything but the
 * database, so only a session whose client vanished gets there: a vanished
 * bot's lock is free again within a minute instead of when the server's TCP
 * keepalive (2 h by default) gives up.
 */
const IDLE_SESSION_TIMEOUT_MS = 60_000;
const IDLE_IN_TRANSACTION_SESSION_TIMEOUT_MS = 60_000;

/**
 * TCP keepalive unless DATABASE_URL's keepalives_* say otherwise: the first probe
 * after 30 s of silence, then every 10 s; 3 unanswered and the connection is
 * dropped, 60 s after the peer went silent (tcp_user_timeout the same 60 s,
 * for data that stays unacknowledged). Applied on the bot's socket (node sets the
 * first probe's delay only) and, through the session's tcp_keepalives_* and
 * tcp_user_timeout, on the server's end, where a vanished bot's lock is held.
 */
const DEFAULT_KEEPALIVES_IDLE_MS = 30_000;
const DEFAULT_KEEPALIVES_INTERVAL_MS = 10_000;
const DEFAULT_KEEPALIVES_COUNT = 3;

/** A connection we closed whose server has not closed its end within this long (a silent path) is destroyed. */
const CLOSE_LINGER_MS = 5000;
/**
 * Closing the database cuts connections still in use after this long: the bot's shutdown keeps 8 s
 * for the lock's release (at most 3 s on a silent path) and this.
 */
const CLOSE_CUT_MS = 2000;

function poolSsl(url: DatabaseUrl, caCert: string | undefined): pg.PoolConfig["ssl"] {
  // libpq ignores sslmode on a Unix socket: the connection never leaves the machine.
  if (isSocketHost(url.host)) return false;
  const mode = url.sslMode ?? (caCert ? "verify-full" : "disable");
  if (mode === "disable") return false;
  if (mode === "verify-ca" || mode === "verify-full" || caCert) {
    return { rejectUnauthorized: true, ...(caCert ? { ca: caCert } : {}) };
  }
  // require / prefer / allow / no-verify: encrypted, certificate not checked (libpq's meaning).
  return { rejectUnauthorized: false };
}

const RETRYABLE_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "EAI_AGAIN", "ENOENT", "57P03", "53300", "08006", "08001"]);

function isRetryableConnectError(error: unknown): boolean {
  const code = errorCode(error);
  if (code !== undefined) return RETRYABLE_CODES.has(code);
  return /timeout|terminated|Connection terminated/i.test(describeError(error));
}

/** Turns a failed first connection into one line the operator can act on; `setting` names where the URL came from. */
function unreachableMessage(url: DatabaseUrl, setting: string, error: unknown, attempts: number): string {
  const where = isSocketHost(url.host) ? `the socket ${url.host}/.s.PGSQL.${url.port}` : `${url.host}:${url.port}`;
  const code = errorCode(error);
  const reason = describeError(error);
  if (code === "28P01" || code === "28000") {
    return `PostgreSQL at ${where} rejected user "${url.user}" (${reason.replace(/"[^"]*"/g, `"${url.user}"`)}). Check the user and password in ${setting}; special characters in the password must be percent-encoded.`;
  }
  if (code === "3D000") {
    return `Database "${url.database}" does not exist on ${where}. Create it (CREATE DATABASE "${url.database}") or fix the name in ${setting}.`;
  }
  if (code === "ENOTFOUND") {
    return `Cannot resolve host "${url.host}" from ${setting}. Check the host name.`;
  }
  if (/certificate|self.signed|SSL/i.test(reason)) {
    return `TLS to PostgreSQL at ${where} failed (${reason}). Set DATABASE_CA_CERT to the server's CA certificate, or adjust sslmode in ${setting}.`;
  }
  return `Cannot reach PostgreSQL at ${where} (database "${url.database}") after ${attempts} attempt${attempts === 1 ? "" : "s"}: ${reason}. Check that the server is running and that ${setting}'s host and port are right.`;
}

/** `close` may be called again (a test's afterAll, a second shutdown signal): later calls share the first. */
function once(close: () => Promise<void>): () => Promise<void> {
  let closing: Promise<void> | undefined;
  return () => (closing ??= close());
}

/** A statement with its own bound on the wait for its answer (pg reads `query_timeout` from the query's config). */
interface BoundedQueryConfig extends pg.QueryConfig {
  query_timeout: number;
}

class PoolRunner implements SqlRunner {
  /** `queryTimeoutMs`: each statement's bound instead of the pool's (0: none). */
  constructor(
    private readonly client: pg.Pool | pg.PoolClient,
    private readonly queryTimeoutMs?: number,
  ) {}
  async query<Row extends object>(text: string, params?: readonly unknown[]) {
    const values = params ? [...params] : undefined;
    const result = this.queryTimeoutMs === undefined ? await this.client.query<Row>(text, values) : await this.client.query<Row>(this.bounded(text, values));
    return { rows: result.rows, rowCount: result.rowCount ?? 0 };
  }
  async exec(text: string) {
    if (this.queryTimeoutMs === undefined) await this.client.query(text);
    else await this.client.query(this.bounded(text, undefined));
  }
  private bounded(text: string, values: unknown[] | undefined): BoundedQueryConfig {
    return { text, ...(values ? { values } : {}), query_timeout: this.queryTimeoutMs || NO_QUERY_TIMEOUT_MS };
  }
}

/** pg's client-side query_timeout fired: the statement got no answer in time. */
function isQueryTimeout(error: unknown): boolean {
  return error instanceof Error && error.message === "Query read timeout";
}

/** At most one "idle database connection lost" line per this long. */
const IDLE_LOSS_LOG_INTERVAL_MS = 60_000;

/**
 * When the server goes away every idle pooled connection fails at once: one
 * warning per interval, counting the connections lost since the previous one,
 * instead of a line per connection.
 */
function idleConnectionLossReporter(logger: Logger): (error: Error) => void {
  let lastLoggedAt = Number.NEGATIVE_INFINITY;
  let lost = 0;
  return (error) => {
    lost += 1;
    if (Date.now() - lastLoggedAt < IDLE_LOSS_LOG_INTERVAL_MS) return;
    lastLoggedAt = Date.now();
    logger.warn("idle database connection lost", { connections: lost, error: describeError(error) });
    lost = 0;
  };
}

/**
 * What every session of the pool sets on the server: the idle timeouts, and the
 * server's TCP keepalive and user timeout from DATABASE_URL's libpq parameters
 * or the defaults above (left to the server when `keepalives=0`).
 */
function sessionSettings(url: DatabaseUrl, idleSessionTimeoutMs: number): Array<[name: string, value: string]> {
  const settings: Array<[string, string]> = [
    ["idle_session_timeout", String(idleSessionTimeoutMs)],
    ["idle_in_transaction_session_timeout", String(IDLE_IN_TRANSACTION_SESSION_TIMEOUT_MS)],
  ];
  if (url.keepalives !== false) {
    const idleS = (url.keepalivesIdleMs ?? DEFAULT_KEEPALIVES_IDLE_MS) / 1000;
    const intervalS = (url.keepalivesIntervalMs ?? DEFAULT_KEEPALIVES_INTERVAL_MS) / 1000;
    const count = url.keepalivesCount ?? DEFAULT_KEEPALIVES_COUNT;
    settings.push(["tcp_keepalives_idle", String(idleS)], ["tcp_keepalives_interval", String(intervalS)], ["tcp_keepalives_count", String(count)]);
    // Unless given, as long as keepalive takes to give up (when none of its parts is the system's default).
    const userTimeoutMs = url.tcpUserTimeoutMs ?? (idleS > 0 && intervalS > 0 && count > 0 ? (idleS + intervalS * count) * 1000 : 0);
    settings.push(["tcp_user_timeout", String(userTimeoutMs)]);
  } else if (url.tcpUserTimeoutMs !== undefined) {
    settings.push(["tcp_user_timeout", String(url.tcpUserTimeoutMs)]);
  }
  return settings;
}

/**
 * Sets `settings` on a new session, skipping those the server does not have
 * (idle_session_timeout before PostgreSQL 14). A server that refuses them (a
 * connection pooler in front of it, say) is reported once and the session used
 * as it is; a connection that fails here is not used.
 */
function sessionSetter(settings: ReadonlyArray<[string, string]>, logger: Logger): (client: pg.PoolClient) => Promise<void> {
  let reported = false;
  const names = settings.map(([name]) => name);
  const values = settings.map(([, value]) => value);
  return async (client) => {
    try {
      await client.query("SELECT set_config(s.name, s.value, false) FROM unnest($1::text[], $2::text[]) AS s(name, value) WHERE s.name IN (SELECT name FROM pg_settings)", [names, values]);
    } catch (error) {
      if (!isServerError(error)) throw error;
      if (!reported) logger.warn("the database refused the session's timeouts and TCP keepalive settings; going on without them", { error: describeError(error) });
      reported = true;
    }
  };
}

/**
 * A statement that got no answer within its bound fails, and the pool closes its
 * connection (pg destroys a socket with a statement still on it). The pool's
 * idle connections most likely went the same way (a failover, a NAT table
 * flushed), and each would hold the next statement for another whole bound:
 * they are closed at once too, as a reset would close them, and the next
 * statements get new connections. One warning per minute at most.
 */
function closeSilentConnections(pool: pg.Pool, logger: Logger, queryTimeoutMs: number): void {
  const idle = new Set<pg.PoolClient>();
  let lastLoggedAt = Number.NEGATIVE_INFINITY;
  pool.on("acquire", (client) => idle.delete(client));
  pool.on("remove", (client) => idle.delete(client));
  pool.on("release", (error, client) => {
    if (!error) {
      idle.add(client);
      return;
    }
    idle.delete(client);
    if (!isQueryTimeout(error)) return;
    const closing = [...idle];
    idle.clear();
    for (const other of closing) other.connection.stream.destroy();
    if (Date.now() - lastLoggedAt < IDLE_LOSS_LOG_INTERVAL_MS) return;
    lastLoggedAt = Date.now();
    logger.warn("a database connection went silent (no answer to a statement in time); it and the idle connections were closed, new ones are opened", {
      queryTimeoutMs,
      idleClosed: closing.length,
    });
  });
}

/**
 * Closing a connection sends the server a goodbye and waits for it to hang up;
 * on a silent path it never does, and the pool's end would wait for ever. A
 * connection not closed CLOSE_LINGER_MS after ours is destroyed.
 */
function boundClose(client: pg.PoolClient): void {
  const socket = client.connection.stream;
  socket.once("finish", () => {
    const timer = setTimeout(() => socket.destroy(), CLOSE_LINGER_MS);
    timer.unref();
    socket.once("close", () => clearTimeout(timer));
  });
}

async function openServer(url: DatabaseUrl, options: DbOptions): Promise<Database> {
  const setting = options.databaseUrlSetting ?? DEFAULT_URL_SETTING;
  if (url.unusedParameters.length > 0) {
    // Names only: a value may be a secret. Prisma's connection_limit is the usual one here.
    options.logger.warn(`${setting} has query parameters that Candlekeep does not use; remove them (the pool's size is DATABASE_POOL_MAX)`, {
      parameters: url.unusedParameters.join(", "),
    });
  }
  const queryTimeoutMs = options.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS;
  const setSession = sessionSetter(sessionSettings(url, options.idleSessionTimeoutMs ?? IDLE_SESSION_TIMEOUT_MS), options.logger);
  const pool = new pg.Pool({
    host: url.host,
    port: url.port,
    user: url.user,
    password: url.password,
    database: url.database,
    ssl: poolSsl(url, options.caCert),
    max: options.poolMax ?? DEFAULT_POOL_MAX,
    connectionTimeoutMillis: url.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    idleTimeoutMillis: 30_000,
    application_name: url.applicationName ?? "candlekeep",
    keepAlive: url.keepalives !== false,
    keepAliveInitialDelayMillis: url.keepalivesIdleMs ?? DEFAULT_KEEPALIVES_IDLE_MS,
    query_timeout: queryTimeoutMs,
    // Runs on each new connection before it is used.
    verify: (client, done) => void setSession(client).then(() => done(), done),
  });
  // An idle client losing its server (restart, failover) must not crash the process;
  // the next query on the pool reconnects or fails where it can be handled.
  pool.on("error", idleConnectionLossReporter(options.logger));
  // The pool listens for errors only while a client is idle. A connection dropped
  // while a client is checked out (by Prisma's adapter, a COPY, a lock) emits
  // 'error' on the client itself, which would crash the process if nobody
  // listens; the failed query already reports it to its caller, and the pool
  // discards the client when it is released (pg marks it no longer queryable).
  const connections = new Set<pg.PoolClient>();
  pool.on("connect", (client) => {
    client.on("error", () => undefined);
    boundClose(client);
    connections.add(client);
  });
  pool.on("remove", (client) => connections.delete(client));
  closeSilentConnections(pool, options.logger, queryTimeoutMs);
  try {
    await withRetry(
      async () => {
        const client = await pool.connect();
        client.release();
      },
      options.retry ?? DEFAULT_RETRY,
      { isRetryable: isRetryableConnectError, logger: options.logger, what: `connecting to ${url.redacted}`, signal: options.signal },
    );
  } catch (error) {
    await pool.end().catch(() => undefined);
    const cause = error instanceof RetryExhaustedError ? error.lastError : error;
    const attempts = error instanceof RetryExhaustedError ? error.attempts : 1;
    throw new DatabaseUnreachableError(unreachableMessage(url, setting, cause, attempts));
  }
  const prisma = serverPrisma(pool);
  return {
    kind: "server",
    target: url.redacted,
    logger: options.logger,
    get prisma() {
      return prisma.get();
    },
    sql: new PoolRunner(pool),
    pool,
    async session(fn, sessionOptions = {}) {
      // A lost connection fails the running query (the listener added on 'connect'
      // keeps its 'error' event harmless), and the pool discards it on release.
      const client = await pool.connect();
      let broken: Error | undefined;
      try {
        return await fn(new PoolRunner(client, sessionOptions.queryTimeoutMs));
      } catch (error) {
        // A statement still running (timed out) or a state we do not know: the connection goes, not back to the pool.
        if (!isServerError(error)) broken = error instanceof Error ? error : new Error(describeError(error));
        throw error;
      } finally {
        client.release(broken);
      }
    },
    close: once(async () => {
      await prisma.disconnect();
      // The pool's end waits for connections still in use; one whose statement waits on a silent
      // path would hold it until that statement's own bound. Past CLOSE_CUT_MS they are cut.
      const cut = setTimeout(() => {
        for (const client of connections) client.connection.stream.destroy();
      }, CLOSE_CUT_MS);
      cut.unref();
      try {
        await pool.end();
      } finally {
        clearTimeout(cut);
      }
    }),
  };
}

/**
 * Opens the database named by the options: validates DATABASE_URL first, retries
 * the first connection with backoff, then applies (or checks) migrations.
 */
export async function openDatabase(options: DbOptions): Promise<Database> {
  const url = options.databaseUrl === undefined ? undefined : parseDatabaseUrl(options.databaseUrl, options.databaseUrlSetting);
  const db = url ? await openServer(url, options) : await openEmbedded(options);
  try {
    if (options.autoMigrate) {
      // No bound on a migration's statements: an index build on a large table, or the wait for another migrator's lock, takes what it takes.
      const unbounded = { session: <T>(fn: (connection: SqlRunner) => Promise<T>) => db.session(fn, { queryTimeoutMs: 0 }) };
      await applyMigrations(unbounded, { logger: options.logger, migrationsDir: options.migrationsDir });
    } else if (options.checkMigrations !== false) {
      await assertNoPendingMigrations(db, { migrationsDir: options.migrationsDir });
    }
  } catch (error) {
    await db.close().catch(() => undefined);
    throw error;
  }
  options.logger.info("database ready", { target: db.target, kind: db.kind });
  return db;
}

/** Lazy handle: nothing connects until the first `get()`; concurrent callers share one open. */
export interface LazyDatabase {
  get(): Promise<Database>;
  close(): Promise<void>;
}

export function createDb(options: DbOptions): LazyDatabase {
  if (options.databaseUrl !== undefined) parseDatabaseUrl(options.databaseUrl, options.databaseUrlSetting); // fail fast on a bad URL
  let opening: Promise<Database> | undefined;
  return {
    get() {
      opening ??= openDatabase(options).catch((error: unknown) => {
        opening = undefined; // a later get() may try again
        throw error;
      });
      return opening;
    },
    async close() {
      const current = opening;
      opening = undefined;
      if (current) await (await current.catch(() => undefined))?.close();
    },
  };
}
