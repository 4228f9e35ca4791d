import { randomBytes } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { silentLogger } from "@candlekeep/core";
import { createDb, DEFAULT_POOL_MAX, openDatabase, type Database, type DbOptions } from "./connect";
import { DatabaseUnreachableError, InvalidDatabaseUrlError } from "./errors";
import { recordEvent, latestEvents } from "./events";
import { useProxiedServerDatabase } from "./test-database-hooks";
import { captureLogger, createServerTestDatabase, NO_RETRY, openOnTestDatabase, rejection, TEST_ADMIN_URL, TEST_SOCKET_DIR, type TestDatabase } from "./testing";

const PASSWORD = "Pa55w0rdNeverShown";

/** A port on 127.0.0.1 that nothing listens on (taken from the OS, then released). */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no TCP address");
  return address.port;
}

/**
 * A TCP server that counts connections and hangs up on each, so an attempt to
 * connect is visible; `silent`: it keeps them open and never answers, as a
 * server behind a black-holing network path.
 */
async function countingServer(silent = false): Promise<{ port: number; connections: () => number; close: () => Promise<void> }> {
  let connections = 0;
  const sockets: net.Socket[] = [];
  const server = net.createServer((socket) => {
    connections += 1;
    if (silent) sockets.push(socket);
    else socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no TCP address");
  const close = () => {
    for (const socket of sockets) socket.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return { port: address.port, connections: () => connections, close };
}

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "candlekeep-connect-"));
}

const admin = new URL(TEST_ADMIN_URL);
/** A URL to the local server with a password (trust auth ignores it) and the given database. */
function localUrl(database: string): string {
  return `postgresql://${admin.username || "postgres"}:${PASSWORD}@${admin.hostname}:${admin.port || "5432"}/${database}`;
}

describe("createDb", () => {
  const dirs: string[] = [];
  const cleanups: Array<() => Promise<void>> = [];
  const options = (overrides: Partial<DbOptions>): DbOptions => {
    const dataDir = tempDir();
    dirs.push(dataDir);
    return { dataDir, autoMigrate: true, logger: silentLogger, retry: NO_RETRY, ...overrides };
  };
  afterAll(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("does not connect until get() is called", async () => {
    const server = await countingServer();
    cleanups.push(server.close);
    const logger = captureLogger();
    const lazy = createDb(options({ databaseUrl: `postgresql://bot:${PASSWORD}@127.0.0.1:${server.port}/app`, logger }));
    await sleep(100);
    expect(server.connections()).toBe(0);
    expect(logger.lines).toEqual([]);

    await expect(lazy.get()).rejects.toBeInstanceOf(DatabaseUnreachableError);
    expect(server.connections()).toBeGreaterThanOrEqual(1);
  });

  it("does not throw when created for an unused port, and closing it unopened connects to nothing", async () => {
    const port = await freePort();
    const lazy = createDb(options({ databaseUrl: `postgresql://bot:${PASSWORD}@127.0.0.1:${port}/app` }));
    await expect(lazy.close()).resolves.toBeUndefined();
  });

  it("throws InvalidDatabaseUrlError synchronously for an invalid URL, without the password", () => {
    let thrown: unknown;
    try {
      createDb(options({ databaseUrl: `mysql://bot:${PASSWORD}@db:3306/app` }));
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(InvalidDatabaseUrlError);
    expect(String(thrown)).toMatch(/not PostgreSQL/);
    expect(String(thrown)).not.toContain(PASSWORD);
  });

  it("retries an unreachable server with exponential backoff, then names host:port but never the password", async () => {
    const port = await freePort();
    const logger = captureLogger();
    const lazy = createDb(options({ databaseUrl: `postgresql://bot:${PASSWORD}@127.0.0.1:${port}/app`, logger, retry: { retries: 3, initialDelayMs: 50 } }));
    const started = performance.now();
    const error = await rejection(lazy.get());
    const elapsed = performance.now() - started;

    expect(error).toBeInstanceOf(DatabaseUnreachableError);
    expect(error.message).toContain(`127.0.0.1:${port}`);
    expect(error.message).toMatch(/after 4 attempts/);
    expect(error.message).toMatch(/Check that the server is running/);
    expect(error.message).not.toContain(PASSWORD);
    const warnings = logger.lines.filter((l) => l.level === "warn");
    expect(warnings.map((w) => w.meta?.retryInMs)).toEqual([50, 100, 200]);
    expect(warnings.map((w) => w.meta?.attempt)).toEqual([1, 2, 3]);
    expect(JSON.stringify(logger.lines)).not.toContain(PASSWORD);
    // A lower bound on behaviour (it waited between attempts), not a speed test;
    // timers may fire up to 1 ms early by the clock's rounding.
    expect(elapsed).toBeGreaterThanOrEqual(50 + 100 + 200 - 3);
  });

  it("gives up a connection attempt after DATABASE_URL's connect_timeout (libpq's, in seconds), not the default 10 s", async () => {
    const server = await countingServer(true);
    cleanups.push(server.close);
    const lazy = createDb(options({ databaseUrl: `postgresql://bot:${PASSWORD}@127.0.0.1:${server.port}/app?connect_timeout=2` }));
    const started = performance.now();
    const error = await rejection(lazy.get());
    const elapsed = performance.now() - started;
    expect(error).toBeInstanceOf(DatabaseUnreachableError);
    expect(error.message).toMatch(new RegExp(`^Cannot reach PostgreSQL at 127\\.0\\.0\\.1:${server.port} .*timeout`));
    expect(server.connections()).toBe(1);
    // Behaviour, not speed: it waited for the silent server about 2 s, well short of the default 10.
    expect(elapsed).toBeGreaterThanOrEqual(2000 - 3);
    expect(elapsed).toBeLessThan(9000);
  });

  it("retries a Unix socket that is not there (a server restarting removes it), then names the socket", async () => {
    const dir = tempDir();
    dirs.push(dir);
    const logger = captureLogger();
    const lazy = createDb(options({ databaseUrl: `postgresql://bot:${PASSWORD}@localhost/app?host=${dir}`, logger, retry: { retries: 1, initialDelayMs: 10 } }));
    const error = await rejection(lazy.get());
    expect(error).toBeInstanceOf(DatabaseUnreachableError);
    expect(error.message).toMatch(new RegExp(`^Cannot reach PostgreSQL at the socket ${dir}/\\.s\\.PGSQL\\.5432 \\(database "app"\\) after 2 attempts: .*ENOENT`));
    expect(error.message).not.toContain(PASSWORD);
    expect(logger.lines.filter((l) => l.level === "warn")).toHaveLength(1);
  });

  it("fails at once, without retrying, when the database does not exist, saying how to fix it", async () => {
    const missing = `candlekeep_missing_${randomBytes(4).toString("hex")}`;
    const logger = captureLogger();
    const lazy = createDb(options({ databaseUrl: localUrl(missing), logger, retry: { retries: 3, initialDelayMs: 50 } }));
    const error = await rejection(lazy.get());
    expect(error).toBeInstanceOf(DatabaseUnreachableError);
    expect(error.message).toContain(`Database "${missing}" does not exist`);
    expect(error.message).toContain(`CREATE DATABASE "${missing}"`);
    expect(error.message).toMatch(/fix the name in DATABASE_URL/);
    expect(error.message).not.toContain(PASSWORD);
    expect(logger.lines.filter((l) => l.level === "warn")).toEqual([]);
  });

  it("tries again on a later get() after a failed one", async () => {
    const name = `candlekeep_test_late_${randomBytes(4).toString("hex")}`;
    const lazy = createDb(options({ databaseUrl: localUrl(name) }));
    await expect(lazy.get()).rejects.toBeInstanceOf(DatabaseUnreachableError);

    const client = new pg.Client({ connectionString: TEST_ADMIN_URL });
    await client.connect();
    try {
      await client.query(`CREATE DATABASE "${name}"`);
    } finally {
      await client.end();
    }
    cleanups.push(async () => {
      await lazy.close();
      const dropper = new pg.Client({ connectionString: TEST_ADMIN_URL });
      await dropper.connect();
      await dropper.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await dropper.end();
    });
    const db = await lazy.get();
    expect(db.kind).toBe("server");
    expect(db.target).not.toContain(PASSWORD);
  });

  it("shares one open between concurrent get() calls", async () => {
    const logger = captureLogger();
    const lazy = createDb(options({ logger }));
    cleanups.push(() => lazy.close());
    const [a, b, c] = await Promise.all([lazy.get(), lazy.get(), lazy.get()]);
    expect(b).toBe(a);
    expect(c).toBe(a);
    expect(await lazy.get()).toBe(a);
    expect(logger.lines.filter((l) => l.message === "database ready")).toHaveLength(1);
  });
});

describe("the server pool", () => {
  let testDb: TestDatabase;
  const open: Database[] = [];
  beforeAll(async () => {
    testDb = await createServerTestDatabase();
  });
  afterAll(async () => {
    for (const db of open) await db.close();
    await testDb.drop();
  });

  async function openServer(poolMax?: number): Promise<Database> {
    const db = await openOnTestDatabase(testDb, { ...(poolMax === undefined ? {} : { poolMax }) });
    open.push(db);
    return db;
  }

  it("holds at most 30 connections by default", async () => {
    const db = await openServer();
    expect(DEFAULT_POOL_MAX).toBe(30);
    expect(db.pool?.options.max).toBe(30);
  });

  it("holds at most poolMax connections when given (DATABASE_POOL_MAX)", async () => {
    const db = await openServer(7);
    expect(db.pool?.options.max).toBe(7);
  });

  it("can be closed twice, the second close doing nothing", async () => {
    const db = await openServer();
    await db.close();
    await expect(db.close()).resolves.toBeUndefined();
    await expect(db.sql.query("SELECT 1")).rejects.toThrow();
  });

  it("survives its idle connections being killed, warns once for all of them, and serves the next query", async () => {
    const logger = captureLogger();
    const db = await openOnTestDatabase(testDb, { logger });
    open.push(db);
    // Three connections in use at once, then idle in the pool.
    await Promise.all([1, 2, 3].map(() => db.sql.query("SELECT pg_sleep(0.05)")));
    expect(db.pool?.idleCount).toBe(3);
    const admin = new pg.Client({ connectionString: TEST_ADMIN_URL });
    await admin.connect();
    try {
      // Every connection of this test database but the admin's own: as when the server restarts.
      await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", [new URL(testDb.url ?? "").pathname.slice(1)]);
    } finally {
      await admin.end();
    }
    for (let i = 0; i < 50 && (db.pool?.idleCount ?? 0) > 0; i += 1) await sleep(20);
    expect(db.pool?.idleCount).toBe(0);
    const warnings = logger.lines.filter((l) => l.message === "idle database connection lost");
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.meta).toMatchObject({ connections: 1 });
    expect((await db.sql.query<{ one: number }>("SELECT 1 AS one")).rows[0]?.one).toBe(1);
  });

  it("fails a session's query when its connection is killed, without crashing, and discards that connection", async () => {
    const db = await openServer();
    const pids = new Set<number>();
    const killed = db.session(async (connection) => {
      const pid = Number((await connection.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]?.pid);
      pids.add(pid);
      const admin = new pg.Client({ connectionString: TEST_ADMIN_URL });
      await admin.connect();
      try {
        await admin.query("SELECT pg_terminate_backend($1)", [pid]);
      } finally {
        await admin.end();
      }
      await connection.query("SELECT pg_sleep(0.1)");
    });
    await expect(killed).rejects.toThrow();
    const next = await db.session(async (connection) => Number((await connection.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]?.pid));
    expect(pids.has(next)).toBe(false);
  });

  it("redacts the password in the target it reports", async () => {
    const withPassword = new URL(testDb.url ?? "");
    withPassword.password = PASSWORD;
    const db = await openDatabase({ databaseUrl: withPassword.toString(), dataDir: testDb.dataDir, autoMigrate: true, logger: silentLogger });
    open.push(db);
    expect(db.target).not.toContain(PASSWORD);
    expect(db.target).toContain(`${withPassword.hostname}:${withPassword.port || "5432"}`);
  });

  it("connects over the server's Unix socket when DATABASE_URL names its directory (?host=), sslmode notwithstanding", async () => {
    const url = new URL(testDb.url ?? "");
    url.search = `?host=${encodeURIComponent(TEST_SOCKET_DIR)}&sslmode=require`;
    const db = await openDatabase({ databaseUrl: url.toString(), dataDir: testDb.dataDir, autoMigrate: true, logger: silentLogger });
    open.push(db);
    // No server address: the connection is not TCP.
    expect((await db.sql.query("SELECT inet_server_addr() AS address")).rows).toEqual([{ address: null }]);
    expect((await openServer().then((tcp) => tcp.sql.query("SELECT host(inet_server_addr()) AS address"))).rows).toEqual([{ address: url.hostname }]);
  });

  it("warns, by name only, of query parameters it does not use", async () => {
    const url = new URL(testDb.url ?? "");
    url.search = `?connection_limit=5&sslpassword=${PASSWORD}&application_name=bot-a`;
    const logger = captureLogger();
    const db = await openDatabase({ databaseUrl: url.toString(), dataDir: testDb.dataDir, autoMigrate: true, logger });
    open.push(db);
    expect((await db.sql.query("SELECT current_setting('application_name') AS name")).rows).toEqual([{ name: "bot-a" }]);
    const warnings = logger.lines.filter((line) => line.level === "warn");
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.message).toMatch(/query parameters that Candlekeep does not use/);
    expect(warnings[0]?.meta).toEqual({ parameters: "connection_limit, sslpassword" });
    expect(JSON.stringify(logger.lines)).not.toContain(PASSWORD);
  });
});

describe("server connections that go silent", () => {
  const bed = useProxiedServerDatabase();

  /** The test database's URL, through the proxy unless `direct`, with `query` appended. */
  function urlOf(query = "", direct = false): string {
    const url = bed.url(direct);
    url.search = query;
    return url.toString();
  }

  async function openAt(databaseUrl: string, overrides: Partial<DbOptions> = {}): Promise<Database> {
    const db = bed.opened(await openDatabase({ databaseUrl, dataDir: bed.testDb.dataDir, autoMigrate: false, checkMigrations: false, logger: silentLogger, retry: NO_RETRY, ...overrides }));
    return db;
  }

  /** The server-side settings of `count` sessions of `db`, used at once (so each is a different connection). */
  async function sessionSettings(db: Database, count: number): Promise<Array<Record<string, string>>> {
    const names = ["idle_session_timeout", "idle_in_transaction_session_timeout", "tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_keepalives_count", "tcp_user_timeout"];
    return Promise.all(
      Array.from({ length: count }, () =>
        db.session(async (connection) => {
          await connection.query("SELECT pg_sleep(0.05)");
          const rows = (await connection.query<{ name: string; setting: string }>("SELECT name, setting FROM pg_settings WHERE name = ANY($1)", [names])).rows;
          return Object.fromEntries(rows.map((row) => [row.name, row.setting]));
        }),
      ),
    );
  }

  it("sets on every session idle timeouts of a minute and the server's TCP keepalive from DATABASE_URL's libpq parameters", async () => {
    const db = await openAt(urlOf("?keepalives_idle=7&keepalives_interval=3&keepalives_count=4", true));
    const settings = await sessionSettings(db, 3);
    expect(settings).toHaveLength(3);
    for (const session of settings) {
      // tcp_user_timeout, not given: as long as the keepalive takes to give up, 7 + 3 × 4 s.
      expect(session).toEqual({
        idle_session_timeout: "60000",
        idle_in_transaction_session_timeout: "60000",
        tcp_keepalives_idle: "7",
        tcp_keepalives_interval: "3",
        tcp_keepalives_count: "4",
        tcp_user_timeout: "19000",
      });
    }
    // The bot's end of each connection: TCP keepalive on, first probe after keepalives_idle.
    expect(db.pool?.options).toMatchObject({ keepAlive: true, keepAliveInitialDelayMillis: 7000, query_timeout: 30_000 });
  });

  it("defaults to keepalive probes from 30 s of silence, every 10 s, 3 of them, and a 60 s tcp_user_timeout; keepalives=0 leaves the server's keepalive alone", async () => {
    const plain = await openAt(urlOf("", true));
    expect(await sessionSettings(plain, 1)).toEqual([
      { idle_session_timeout: "60000", idle_in_transaction_session_timeout: "60000", tcp_keepalives_idle: "30", tcp_keepalives_interval: "10", tcp_keepalives_count: "3", tcp_user_timeout: "60000" },
    ]);
    expect(plain.pool?.options).toMatchObject({ keepAlive: true, keepAliveInitialDelayMillis: 30_000 });
    const off = await openAt(urlOf("?keepalives=0&tcp_user_timeout=25000", true));
    // The server's own keepalive settings, as a plain client's session has them.
    const plainClient = new pg.Client({ connectionString: urlOf("", true) });
    await plainClient.connect();
    const serverDefaults = await plainClient
      .query<{ name: string; setting: string }>("SELECT name, setting FROM pg_settings WHERE name LIKE 'tcp_keepalives_%'")
      .finally(() => plainClient.end());
    expect(await sessionSettings(off, 1)).toEqual([
      { idle_session_timeout: "60000", idle_in_transaction_session_timeout: "60000", tcp_user_timeout: "25000", ...Object.fromEntries(serverDefaults.rows.map((row) => [row.name, row.setting])) },
    ]);
    expect(off.pool?.options.keepAlive).toBe(false);
  });

  it("fails a statement that gets no answer within the query timeout; that connection and the idle ones are closed, the next statement gets a new one", async () => {
    const logger = captureLogger();
    const db = await openAt(urlOf(), { queryTimeoutMs: 1000, logger });
    await Promise.all([1, 2, 3].map(() => db.sql.query("SELECT pg_sleep(0.05)")));
    expect(db.pool?.idleCount).toBe(3);
    bed.proxy.blackhole();
    const started = performance.now();
    await expect(db.sql.query("SELECT 1")).rejects.toThrow("Query read timeout");
    const waited = performance.now() - started;
    expect(waited).toBeGreaterThanOrEqual(900);
    expect(waited).toBeLessThan(5000);
    for (let i = 0; i < 50 && (db.pool?.idleCount ?? 0) > 0; i += 1) await sleep(20);
    expect(db.pool?.idleCount).toBe(0);
    expect((await db.sql.query<{ one: number }>("SELECT 1 AS one")).rows).toEqual([{ one: 1 }]);
    const warnings = logger.lines.filter((l) => l.message.startsWith("a database connection went silent"));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.meta).toMatchObject({ queryTimeoutMs: 1000, idleClosed: 2 });
  });

  it("gives a session's statements their own bound instead of the pool's, 0 for none (migrations)", async () => {
    const db = await openAt(urlOf("", true), { queryTimeoutMs: 400 });
    await expect(db.sql.query("SELECT pg_sleep(0.8)")).rejects.toThrow("Query read timeout");
    await expect(db.session((connection) => connection.query("SELECT pg_sleep(0.8)"), { queryTimeoutMs: 0 })).resolves.toMatchObject({ rowCount: 1 });
    await expect(db.session((connection) => connection.exec("SELECT pg_sleep(0.8)"), { queryTimeoutMs: 5000 })).resolves.toBeUndefined();
    await expect(db.session((connection) => connection.query("SELECT pg_sleep(0.8)"), { queryTimeoutMs: 200 })).rejects.toThrow("Query read timeout");
    expect((await db.sql.query<{ one: number }>("SELECT 1 AS one")).rows).toEqual([{ one: 1 }]);
  });

  it("applies a migration that runs longer than the query timeout", async () => {
    const dir = tempDir();
    fs.mkdirSync(path.join(dir, "20990101000000_slow"));
    fs.writeFileSync(path.join(dir, "20990101000000_slow", "migration.sql"), "SELECT pg_sleep(1.5)");
    const db = await openAt(urlOf("", true), { queryTimeoutMs: 700, autoMigrate: true, migrationsDir: dir });
    expect((await db.sql.query("SELECT finished_at IS NOT NULL AS finished FROM _prisma_migrations WHERE migration_name = '20990101000000_slow'")).rows).toEqual([{ finished: true }]);
  });

  it("closes its connections within seconds when they went silent, though the server never answers the goodbye", async () => {
    const db = await openAt(urlOf());
    await Promise.all([1, 2, 3].map(() => db.sql.query("SELECT pg_sleep(0.05)")));
    let closed = 0;
    // The pool reports a connection removed once its socket has closed.
    db.pool?.on("remove", () => (closed += 1));
    bed.proxy.blackhole({ newConnections: "silent" });
    const started = performance.now();
    await db.close();
    for (let i = 0; i < 100 && closed < 3; i += 1) await sleep(100);
    expect(closed).toBe(3);
    expect(performance.now() - started).toBeLessThan(8000);
  });
});

describe("the embedded database", () => {
  const dataDir = tempDir();
  afterAll(() => {
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it("keeps its data across close and reopen of the same data directory (closing twice is harmless), without migrating again", async () => {
    const first = await openDatabase({ dataDir, autoMigrate: true, logger: silentLogger });
    expect(first.kind).toBe("embedded");
    expect(first.pool).toBeUndefined();
    expect(await recordEvent(first, { type: "STARTUP", payload: { run: 1 } })).toBe(true);
    await first.close();
    await expect(first.close()).resolves.toBeUndefined();

    const logger = captureLogger();
    const second = await openDatabase({ dataDir, autoMigrate: true, logger });
    try {
      expect((await latestEvents(second)).map((e) => e.payload)).toEqual([{ run: 1 }]);
      expect(logger.lines.filter((l) => l.message === "migration applied")).toEqual([]);
    } finally {
      await second.close();
    }
  });
});
