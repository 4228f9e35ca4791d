import pg from "pg";
import { describeError, type Logger } from "@candlekeep/core";
import type { PrismaClient } from "./generated/prisma/client";
import { openEmbedded } from "./embedded";
import { DatabaseUnreachableError, errorCode } from "./errors";
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
  /** Runs `fn` on one dedicated connection (session locks, explicit transactions). */
  session<T>(fn: (connection: SqlRunner) => Promise<T>): Promise<T>;
  /** Where repository functions report what they log-and-swallow or log-and-raise. */
  readonly logger: Logger;
  /** The server pool, for COPY; undefined on the embedded engine. */
  readonly pool: pg.Pool | undefined;
  close(): Promise<void>;
}

export interface DbOptions {
  /** Unset → embedded engine under `dataDir`. */
  databaseUrl?: string | undefined;
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
  logger: Logger;
  /** Where migrations live; defaults to the repository's prisma/migrations. */
  migrationsDir?: string;
}

export const DEFAULT_POOL_MAX = 30;
/** How long a connection attempt may take unless DATABASE_URL's connect_timeout says otherwise. */
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

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

/** Turns a failed first connection into one line the operator can act on. */
function unreachableMessage(url: DatabaseUrl, error: unknown, attempts: number): string {
  const where = isSocketHost(url.host) ? `the socket ${url.host}/.s.PGSQL.${url.port}` : `${url.host}:${url.port}`;
  const code = errorCode(error);
  const reason = describeError(error);
  if (code === "28P01" || code === "28000") {
    return `PostgreSQL at ${where} rejected user "${url.user}" (${reason.replace(/"[^"]*"/g, `"${url.user}"`)}). Check the user and password in DATABASE_URL; special characters in the password must be percent-encoded.`;
  }
  if (code === "3D000") {
    return `Database "${url.database}" does not exist on ${where}. Create it (CREATE DATABASE "${url.database}") or fix the name in DATABASE_URL.`;
  }
  if (code === "ENOTFOUND") {
    return `Cannot resolve host "${url.host}" from DATABASE_URL. Check the host name.`;
  }
  if (/certificate|self.signed|SSL/i.test(reason)) {
    return `TLS to PostgreSQL at ${where} failed (${reason}). Set DATABASE_CA_CERT to the server's CA certificate, or adjust sslmode in DATABASE_URL.`;
  }
  return `Cannot reach PostgreSQL at ${where} (database "${url.database}") after ${attempts} attempt${attempts === 1 ? "" : "s"}: ${reason}. Check that the server is running and that DATABASE_URL's host and port are right.`;
}

/** `close` may be called again (a test's afterAll, a second shutdown signal): later calls share the first. */
function once(close: () => Promise<void>): () => Promise<void> {
  let closing: Promise<void> | undefined;
  return () => (closing ??= close());
}

class PoolRunner implements SqlRunner {
  constructor(private readonly client: pg.Pool | pg.PoolClient) {}
  async query<Row extends object>(text: string, params?: readonly unknown[]) {
    const result = await this.client.query<Row>(text, params ? [...params] : undefined);
    return { rows: result.rows, rowCount: result.rowCount ?? 0 };
  }
  async exec(text: string) {
    await this.client.query(text);
  }
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

async function openServer(url: DatabaseUrl, options: DbOptions): Promise<Database> {
  if (url.unusedParameters.length > 0) {
    // Names only: a value may be a secret. Prisma's connection_limit is the usual one here.
    options.logger.warn("DATABASE_URL has query parameters that Candlekeep does not use; remove them (the pool's size is DATABASE_POOL_MAX)", {
      parameters: url.unusedParameters.join(", "),
    });
  }
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
  });
  // An idle client losing its server (restart, failover) must not crash the process;
  // the next query on the pool reconnects or fails where it can be handled.
  pool.on("error", idleConnectionLossReporter(options.logger));
  // The pool listens for errors only while a client is idle. A connection dropped
  // while a client is checked out (by Prisma's adapter, a COPY, a lock) emits
  // 'error' on the client itself, which would crash the process if nobody
  // listens; the failed query already reports it to its caller, and the pool
  // discards the client when it is released (pg marks it no longer queryable).
  pool.on("connect", (client) => {
    client.on("error", () => undefined);
  });
  try {
    await withRetry(
      async () => {
        const client = await pool.connect();
        client.release();
      },
      options.retry ?? DEFAULT_RETRY,
      { isRetryable: isRetryableConnectError, logger: options.logger, what: `connecting to ${url.redacted}` },
    );
  } catch (error) {
    await pool.end().catch(() => undefined);
    const cause = error instanceof RetryExhaustedError ? error.lastError : error;
    const attempts = error instanceof RetryExhaustedError ? error.attempts : 1;
    throw new DatabaseUnreachableError(unreachableMessage(url, cause, attempts));
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
    async session(fn) {
      // A lost connection fails the running query (the listener added on 'connect'
      // keeps its 'error' event harmless), and the pool discards it on release.
      const client = await pool.connect();
      try {
        return await fn(new PoolRunner(client));
      } finally {
        client.release();
      }
    },
    close: once(async () => {
      await prisma.disconnect();
      await pool.end();
    }),
  };
}

/**
 * Opens the database named by the options: validates DATABASE_URL first, retries
 * the first connection with backoff, then applies (or checks) migrations.
 */
export async function openDatabase(options: DbOptions): Promise<Database> {
  const url = options.databaseUrl === undefined ? undefined : parseDatabaseUrl(options.databaseUrl);
  const db = url ? await openServer(url, options) : await openEmbedded(options);
  try {
    if (options.autoMigrate) {
      await applyMigrations(db, { logger: options.logger, migrationsDir: options.migrationsDir });
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
  if (options.databaseUrl !== undefined) parseDatabaseUrl(options.databaseUrl); // fail fast on a bad URL
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
