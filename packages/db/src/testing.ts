import { execFile, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import pg from "pg";
import { silentLogger, type Logger } from "@candlekeep/core";
import { openDatabase, type Database, type DatabaseKind, type DbOptions } from "./connect";
import type { OrderIntent } from "./orders";
import type { SqlRunner } from "./sql";

export { TcpProxy } from "./tcp-proxy";

/**
 * Test support: a fresh, uniquely named database on the local PostgreSQL server
 * (or a fresh embedded data directory) per test file, dropped afterwards.
 * Not used by production code.
 */

/** Admin connection used to create and drop test databases. */
export const TEST_ADMIN_URL = process.env.TEST_DATABASE_ADMIN_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";
/** The directory of that server's Unix socket (Debian's default), for tests that connect over it. */
export const TEST_SOCKET_DIR = process.env.TEST_DATABASE_SOCKET_DIR ?? "/var/run/postgresql";

export interface TestDatabase {
  /** DATABASE_URL of the fresh server database, or undefined for the embedded engine. */
  url: string | undefined;
  /** Data directory (embedded: holds the database; server: scratch space). */
  dataDir: string;
  drop(): Promise<void>;
}

export async function createServerTestDatabase(prefix = "candlekeep_test", adminUrl = TEST_ADMIN_URL): Promise<TestDatabase> {
  const name = `${prefix}_${randomBytes(5).toString("hex")}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "candlekeep-test-"));
  return {
    url: url.toString(),
    dataDir,
    async drop() {
      const client = new pg.Client({ connectionString: adminUrl });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await client.end();
      }
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export function createEmbeddedTestDatabase(): TestDatabase {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "candlekeep-test-"));
  return {
    url: undefined,
    dataDir,
    async drop() {
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export function createTestDatabase(kind: DatabaseKind): Promise<TestDatabase> {
  return kind === "server" ? createServerTestDatabase() : Promise.resolve(createEmbeddedTestDatabase());
}

/** A retry policy that gives up at once: a test learns of a failure without waiting through backoff. */
export const NO_RETRY = { retries: 0, initialDelayMs: 0 };

/**
 * Opens `testDb` (migrated, silent, no retries unless `overrides` say
 * otherwise); the caller closes it, and `testDb` stays.
 */
export function openOnTestDatabase(testDb: TestDatabase, overrides: Partial<Omit<DbOptions, "databaseUrl" | "dataDir">> = {}): Promise<Database> {
  return openDatabase({ databaseUrl: testDb.url, dataDir: testDb.dataDir, autoMigrate: true, logger: silentLogger, retry: NO_RETRY, ...overrides });
}

/** Fresh migrated database of the given kind; `close()` also drops it. */
export async function openTestDatabase(kind: DatabaseKind, logger: Logger = silentLogger): Promise<Database & { testDb: TestDatabase }> {
  const testDb = await createTestDatabase(kind);
  const db = await openOnTestDatabase(testDb, { logger });
  return {
    ...db,
    testDb,
    async close() {
      await db.close();
      await testDb.drop();
    },
  };
}

/**
 * Runs `fn` on one server connection inside a transaction that is rolled back
 * afterwards, and counts what its queries read from `table`: the rows its
 * sequential scans returned and the entries every index of it returned
 * (PostgreSQL's statistics of the current transaction). For tests that a read
 * does not grow with the rows stored.
 */
export async function countTableReads<T>(db: Pick<Database, "session">, table: string, fn: (connection: SqlRunner) => Promise<T>): Promise<{ result: T; read: number }> {
  return db.session(async (connection) => {
    await connection.exec("BEGIN");
    try {
      const result = await fn(connection);
      const stats = await connection.query<{ read: string }>(
        "SELECT sum(pg_stat_get_xact_tuples_returned(oid)) AS read FROM pg_class WHERE oid = $1::regclass OR oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = $1::regclass)",
        [table],
      );
      return { result, read: Number(stats.rows[0]?.read) };
    } finally {
      await connection.exec("ROLLBACK");
    }
  });
}

/**
 * Runs `sql` on one server connection, then has that connection hand its
 * statistics to the server at once (pg_stat_force_next_flush) instead of within
 * the next seconds: what it wrote is counted in pg_stat_user_tables when this
 * returns, as a long-running bot's writes are.
 */
export async function execCounted(db: Pick<Database, "session">, sql: string): Promise<void> {
  await db.session(async (connection) => {
    await connection.exec(sql);
    await connection.query("SELECT pg_stat_force_next_flush()");
  });
}

/**
 * SQL inserting `perSeries` 15m candles into each of `series` series
 * (symbols S0/USDT, S1/USDT, …, open times from 2026-01-01) in the order a
 * running bot writes them: one candle of every series per tick. Each tick adds
 * an entry at the end of every series' key range, in the middle of the primary
 * key, so its pages split in half: the index ends up well above its rebuilt size.
 */
export function tickOrderCandlesSql(options: { exchange?: string; series: number; perSeries: number }): string {
  const total = options.series * options.perSeries;
  return `INSERT INTO candles (exchange, symbol, timeframe, open_time, open, high, low, close, volume, is_closed)
SELECT '${options.exchange ?? "sim"}', 'S' || (i % ${options.series}) || '/USDT', '15m', timestamptz '2026-01-01 00:00Z' + (i / ${options.series}) * interval '15 minutes', 100, 101, 99, 100.5, 5, true
FROM generate_series(0, ${total - 1}) AS i`;
}

/** Rows a day that growthSeedSql writes into each table it fills, and the days its rows span there. */
export const SEEDED_GROWTH = {
  candles: { rowsPerDay: 240, rows: 7_200, windowDays: 7 },
  decision_traces: { rowsPerDay: 1_000, rows: 30_000, windowDays: 7 },
  system_events: { rowsPerDay: 10, rows: 300, windowDays: 7 },
  account_state: { rowsPerDay: 1_440, rows: 4_320, windowDays: 3 },
  candle_gaps: { rowsPerDay: 1, rows: 14, windowDays: 7 },
} as const;

/**
 * SQL writing rows at known times before `nowMs`, evenly spaced, for tests of
 * growth per day (SEEDED_GROWTH has the figures): 30 days of candles of two
 * coins in 15m and 1h (240 a day), 30 days of decision traces (1,000 a day)
 * and ERROR events (10 a day), 3 days of account snapshots (one a minute) and
 * 14 days of candle gaps (one found a day). Each row is a whole step before
 * the next, the newest one step before `nowMs`.
 */
export function growthSeedSql(nowMs: number): string {
  const now = `timestamptz '${new Date(nowMs).toISOString()}'`;
  return `INSERT INTO candles (exchange, symbol, timeframe, open_time, open, high, low, close, volume, is_closed)
SELECT 'sim', s.symbol, tf.timeframe, ${now} - (i + 1) * tf.step, 100, 101, 99, 100.5, 5, true
FROM (VALUES ('GROW/USDT'), ('MORE/USDT')) AS s(symbol)
CROSS JOIN (VALUES ('15m', interval '15 minutes', 96), ('1h', interval '1 hour', 24)) AS tf(timeframe, step, per_day)
CROSS JOIN LATERAL generate_series(0, 30 * tf.per_day - 1) AS i;
INSERT INTO decision_traces (exchange, symbol, time, level, payload)
SELECT 'sim', 'GROW/USDT', ${now} - (i + 1) * interval '86.4 seconds', 'info', '{"action":"NO_SIGNAL","reasons":["seeded"]}'
FROM generate_series(0, 29999) AS i;
INSERT INTO system_events (time, type, level, payload)
SELECT ${now} - (i + 1) * interval '2.4 hours', 'ERROR', 'error', '{"message":"seeded"}'
FROM generate_series(0, 299) AS i;
INSERT INTO account_state (time, exchange, currency, free, used, total, equity)
SELECT ${now} - (i + 1) * interval '1 minute', 'sim', 'USDT', 9000, 1000, 10000, 10000
FROM generate_series(0, 4319) AS i;
INSERT INTO candle_gaps (exchange, symbol, timeframe, from_time, to_time, missing, found_at)
SELECT 'sim', 'GROW/USDT', '1h', ${now} - (i + 2) * interval '1 day', ${now} - (i + 2) * interval '1 day', 1, ${now} - (i + 1) * interval '1 day'
FROM generate_series(0, 13) AS i`;
}

/**
 * A PostgreSQL server of this machine's installation, started for a test in a
 * temporary directory with its own settings (autovacuum on, while the machine's
 * shared server runs with it off), reachable on a Unix socket only. initdb
 * refuses to run as root, so as root it runs as the `postgres` user.
 */
export interface PrivateServer {
  /** The superuser's URL to its `postgres` database. */
  readonly adminUrl: string;
  /** The directory of its Unix socket. */
  readonly socketDir: string;
  createDatabase(): Promise<TestDatabase>;
  stop(): void;
}

/** Runs one of the installation's programs, as the `postgres` user when this process is root. */
function pgProgram(): (program: string, args: readonly string[]) => void {
  const asRoot = process.getuid?.() === 0;
  const bin = execFileSync("pg_config", ["--bindir"], { encoding: "utf8" }).trim();
  return (program, args) => {
    const [command, ...rest] = asRoot ? ["runuser", "-u", "postgres", "--", path.join(bin, program), ...args] : [path.join(bin, program), ...args];
    execFileSync(command as string, rest, { stdio: "pipe" });
  };
}

/** A scratch directory the server's user may write to. */
function serverDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  if (process.getuid?.() === 0) execFileSync("chown", ["postgres", dir]);
  return dir;
}

/** Starts the server whose data directory is `<dir>/data`, listening on a socket in `dir` only. */
function startServerIn(dir: string, run: ReturnType<typeof pgProgram>): PrivateServer {
  const data = path.join(dir, "data");
  run("pg_ctl", ["start", "-w", "-D", data, "-l", path.join(dir, "server.log"), "-o", `-c listen_addresses='' -c unix_socket_directories='${dir}'`]);
  const adminUrl = `postgresql://postgres@localhost:5432/postgres?host=${encodeURIComponent(dir)}`;
  return {
    adminUrl,
    socketDir: dir,
    createDatabase: () => createServerTestDatabase("candlekeep_test", adminUrl),
    stop() {
      run("pg_ctl", ["stop", "-D", data, "-m", "fast"]);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function startPrivateServer(settings: Readonly<Record<string, string>>): PrivateServer {
  const run = pgProgram();
  const dir = serverDir("candlekeep-pg-");
  const data = path.join(dir, "data");
  run("initdb", ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync"]);
  // In its configuration file, not on the command line, so that ALTER SYSTEM can change them in a test.
  fs.appendFileSync(path.join(data, "postgresql.conf"), Object.entries(settings).map(([name, value]) => `${name} = '${value}'\n`).join(""));
  return startServerIn(dir, run);
}

/** A hot standby of a private server: read only, replaying what the primary writes. */
export interface Standby {
  /** The URL of `testDb`'s database on the standby (the same name as on the primary). */
  urlOf(testDb: TestDatabase): string;
  stop(): void;
}

/**
 * A hot standby of `primary`: a base backup of it that streams and replays its
 * write-ahead log, as a managed database's read replica does.
 */
export function startStandby(primary: PrivateServer): Standby {
  const run = pgProgram();
  const dir = serverDir("candlekeep-standby-");
  // -R writes standby.signal and primary_conninfo: the copy starts as a standby streaming from the primary.
  run("pg_basebackup", ["-D", path.join(dir, "data"), "-h", primary.socketDir, "-U", "postgres", "-R", "-X", "stream", "--no-sync"]);
  const server = startServerIn(dir, run);
  return {
    urlOf(testDb) {
      const url = new URL(testDb.url ?? "");
      url.searchParams.set("host", dir);
      return url.toString();
    },
    stop: () => server.stop(),
  };
}

/** Deterministic pseudo-random numbers in [0, 1) (mulberry32): every run sees the same data. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** Polls `probe` every 100 ms until it returns a value, which is returned; fails naming `what` after `timeoutMs`. */
export async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

/** The error `promise` rejects with (failing when it resolves, or rejects with a non-Error). */
export async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof Error) return error;
    throw error;
  }
  throw new Error("expected a rejection");
}

export const DATABASE_KINDS: readonly DatabaseKind[] = ["server", "embedded"];

/** A paper entry's intent on the sim, buying 1 of `symbol` at 100 with no levels, its own position; `overrides` for the rest. */
export function entryIntent(symbol: string, clientOrderId: string, overrides: Partial<OrderIntent> = {}): OrderIntent {
  return {
    exchange: "sim",
    mode: "paper",
    symbol,
    side: "buy",
    purpose: "entry",
    clientOrderId,
    positionKey: clientOrderId,
    exitReason: null,
    requestedAmount: 1,
    requestedCost: null,
    referencePrice: 100,
    takeProfit: null,
    stopLoss: null,
    createdAt: new Date(0),
    ...overrides,
  };
}

export interface CapturedLog {
  level: "error" | "warn" | "info" | "debug";
  message: string;
  meta: Record<string, unknown> | undefined;
}

/** A Logger that keeps what it is told, for asserting on logging behaviour. */
export function captureLogger(): Logger & { lines: CapturedLog[] } {
  const lines: CapturedLog[] = [];
  const at = (level: CapturedLog["level"]) => (message: string, meta?: Record<string, unknown>) => {
    lines.push({ level, message, meta });
  };
  return { lines, error: at("error"), warn: at("warn"), info: at("info"), debug: at("debug") };
}

/** What a --smoke benchmark run wrote to its results file, as far as its test reads it. */
export interface SmokeResults {
  sections: Record<string, { smoke: boolean; figures: { id: string; value: number }[] } | undefined>;
}

/** One command of a --smoke run: program, arguments, working directory. */
export type SmokeStep = [command: string, args: readonly string[], cwd: string];

/**
 * For each package's bench.smoke test: runs the steps (building what the
 * benchmark measures, then the benchmark with `--smoke --out <file>`, the file
 * given to `steps`) in order, and returns the results file they wrote. The
 * scratch directory holding it is removed afterwards.
 */
export async function runSmokeBenchmark(steps: (out: string) => SmokeStep[]): Promise<SmokeResults> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "candlekeep-bench-"));
  try {
    const out = path.join(dir, "results.json");
    for (const [command, args, cwd] of steps(out)) await promisify(execFile)(command, args, { cwd });
    return JSON.parse(fs.readFileSync(out, "utf8")) as SmokeResults;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** A results section's figures by id (empty when the section is missing). */
export function figureValues(section: SmokeResults["sections"][string]): Map<string, number> {
  return new Map((section?.figures ?? []).map((f) => [f.id, f.value]));
}

/**
 * What a child process loaded, to check that it never loads Prisma's client,
 * nor the embedded engine when it runs on a server.
 * `nodeOptions` goes into the child's NODE_OPTIONS; its hook appends the
 * modules of every process that loads it (tsx runs a CLI in a second one).
 */
export function loadedModulesProbe(dir: string): { nodeOptions: string; loaded(): { dbPackage: boolean; prisma: string[]; embeddedEngine: string[] } } {
  fs.mkdirSync(dir, { recursive: true });
  const hook = path.join(dir, "list-modules.cjs");
  const listed = path.join(dir, "modules.txt");
  fs.writeFileSync(hook, `process.on("exit", () => require("fs").appendFileSync(${JSON.stringify(listed)}, Object.keys(require.cache).join("\\n") + "\\n"));`);
  return {
    nodeOptions: `--require ${hook}`,
    loaded() {
      const modules = fs.readFileSync(listed, "utf8").split("\n");
      return {
        // That the hook saw this package at all: otherwise "no Prisma" proves nothing.
        dbPackage: modules.some((file) => file.includes(path.join("packages", "db", "dist", "connect.js"))),
        prisma: modules.filter((file) => file.includes(path.join("generated", "prisma")) || file.includes("@prisma")),
        embeddedEngine: modules.filter((file) => file.includes(path.join("@electric-sql", "pglite"))),
      };
    },
  };
}

/**
 * A small tmpfs mounted for a test, to fill and free: a full disk on a real file
 * system, which PostgreSQL meets exactly as it would in production. Mounting
 * needs root (as on these machines); see `tmpfsUnavailable`.
 */
export interface TmpfsMount {
  /** The mount point. */
  readonly dir: string;
  /** Fills the file system with filler files until `leaveBytes` (default 0) or less are free. */
  fill(leaveBytes?: number): void;
  /** Deletes the filler files. */
  free(): void;
  /** Bytes free now. */
  freeBytes(): number;
  unmount(): void;
}

/** Why a tmpfs cannot be mounted here (not root, no mount command), or undefined when it can: tried once. */
export function tmpfsUnavailable(): string | undefined {
  try {
    mountTmpfs(1).unmount();
    return undefined;
  } catch (error) {
    return `cannot mount a tmpfs here (${error instanceof Error ? error.message.split("\n")[0] : String(error)}); these tests need root`;
  }
}

export function mountTmpfs(sizeMb: number): TmpfsMount {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "candlekeep-tmpfs-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${sizeMb}m`, "tmpfs", dir], { stdio: "pipe" });
  } catch (error) {
    fs.rmdirSync(dir);
    throw error;
  }
  const fillers: string[] = [];
  const freeBytes = () => {
    const stats = fs.statfsSync(dir);
    return stats.bavail * stats.bsize;
  };
  return {
    dir,
    freeBytes,
    fill(leaveBytes = 0) {
      const file = path.join(dir, `filler-${fillers.length}`);
      fillers.push(file);
      const fd = fs.openSync(file, "w");
      const chunk = Buffer.alloc(1024 * 1024, 1);
      try {
        for (let size = chunk.length; size >= 4096; size /= 16) {
          while (freeBytes() - size >= leaveBytes) fs.writeSync(fd, chunk, 0, size);
        }
      } catch (error) {
        if (!(error instanceof Error) || !("code" in error) || error.code !== "ENOSPC") throw error;
      } finally {
        fs.closeSync(fd);
      }
    },
    free() {
      for (const file of fillers.splice(0)) fs.rmSync(file, { force: true });
    },
    unmount() {
      try {
        execFileSync("umount", [dir], { stdio: "pipe" });
      } catch {
        execFileSync("umount", ["-l", dir], { stdio: "pipe" }); // a process still holding a file in it
      }
      fs.rmdirSync(dir);
    },
  };
}
