import { setTimeout as sleep } from "node:timers/promises";
import { acquireBotLock, BotAlreadyRunningError, type BotLock } from "./bot-lock";
import type { Database, DbOptions } from "./connect";
import { useProxiedServerDatabase } from "./test-database-hooks";
import { captureLogger, createServerTestDatabase, openOnTestDatabase, type TestDatabase } from "./testing";

/** Waits up to `ms` for `lock` to be noticed lost. */
async function lost(lock: BotLock, ms: number): Promise<void> {
  for (const deadline = Date.now() + ms; lock.held && Date.now() < deadline; ) await sleep(20);
}

/** Sessions of this database holding a Candlekeep bot lock. */
async function lockHolders(db: Database): Promise<number[]> {
  const result = await db.sql.query<{ pid: number }>(
    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    [0x436b6570],
  );
  return result.rows.map((row) => row.pid);
}

describe("acquireBotLock on the server", () => {
  let testDb: TestDatabase;
  beforeAll(async () => {
    testDb = await createServerTestDatabase();
  });
  afterAll(async () => {
    await testDb.drop();
  });
  const open = () => openOnTestDatabase(testDb, { logger: captureLogger() });

  it("lets one bot per identity run; a second gets a clear error until the first releases", async () => {
    const [a, b] = [await open(), await open()];
    try {
      const lock = await acquireBotLock(a, "sim");
      await expect(acquireBotLock(b, "sim")).rejects.toThrow(BotAlreadyRunningError);
      await expect(acquireBotLock(b, "sim")).rejects.toThrow('Another bot is already running for "sim" on this database');
      const other = await acquireBotLock(b, "binance");
      await other.release();
      await lock.release();
      const again = await acquireBotLock(b, "sim");
      expect(again.held).toBe(true);
      await again.release();
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("with waitMs, waits for the holder to release the lock and then takes it", async () => {
    const [a, b] = [await open(), await open()];
    try {
      const lock = await acquireBotLock(a, "sim");
      const waiting = acquireBotLock(b, "sim", { waitMs: 20_000, pollMs: 50 });
      await new Promise((r) => setTimeout(r, 300));
      await lock.release();
      const taken = await waiting;
      expect(taken.held).toBe(true);
      await taken.release();
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("with waitMs, gives up with a clear error when the holder does not release in time, or when told to stop", async () => {
    const [a, b] = [await open(), await open()];
    try {
      const lock = await acquireBotLock(a, "sim");
      await expect(acquireBotLock(b, "sim", { waitMs: 300, pollMs: 50 })).rejects.toThrow('Another bot is still running for "sim" on this database after waiting 300 ms for it to stop.');
      const stop = new AbortController();
      const waiting = acquireBotLock(b, "sim", { waitMs: 60_000, pollMs: 50, signal: stop.signal });
      stop.abort();
      await expect(waiting).rejects.toThrow(BotAlreadyRunningError);
      await expect(waiting).rejects.toThrow("Stopped while waiting");
      await lock.release();
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("notices when the server drops the lock's connection and takes the lock again", async () => {
    const [a, admin] = [await open(), await open()];
    try {
      const lock = await acquireBotLock(a, "sim");
      await admin.sql.query(
        "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        [0x436b6570],
      );
      for (let i = 0; i < 50 && lock.held; i += 1) await new Promise((r) => setTimeout(r, 20));
      expect(lock.held).toBe(false);
      await lock.reacquire();
      expect(lock.held).toBe(true);
      await expect(acquireBotLock(admin, "sim")).rejects.toThrow(BotAlreadyRunningError);
      await lock.release();
    } finally {
      await a.close();
      await admin.close();
    }
  });
});

describe("acquireBotLock when the lock's connection goes silent (no reset: a vanished NAT entry or host)", () => {
  const bed = useProxiedServerDatabase();
  const logger = captureLogger();
  async function openVia(route: "proxy" | "direct", overrides: Partial<DbOptions> = {}): Promise<Database> {
    return bed.opened(await openOnTestDatabase({ ...bed.testDb, url: bed.url(route === "direct").toString() }, { autoMigrate: false, logger, ...overrides }));
  }
  const quick = { heartbeatMs: 200, heartbeatTimeoutMs: 500 };

  it("notices within its heartbeat, and takes the lock again at once by ending its own earlier session, which the server still keeps", async () => {
    const [bot, other] = [await openVia("proxy"), await openVia("direct")];
    const lock = await acquireBotLock(bot, "sim", quick);
    const [before] = await lockHolders(other);
    bed.proxy.blackhole();
    await lost(lock, 3000);
    expect(lock.held).toBe(false);
    expect(logger.lines.some((l) => l.message === "bot lock connection lost")).toBe(true);
    // The server never heard of it: the old session still holds the lock, and another bot is still kept out.
    expect(await lockHolders(other)).toEqual([before]);
    await expect(acquireBotLock(other, "sim")).rejects.toThrow(BotAlreadyRunningError);
    await lock.reacquire();
    expect(lock.held).toBe(true);
    const after = await lockHolders(other);
    expect(after).toHaveLength(1);
    expect(after).not.toEqual([before]);
    expect(logger.lines.some((l) => l.message === "the bot lock was still held by this bot's own lost connection; that session was ended")).toBe(true);
    await expect(acquireBotLock(other, "sim")).rejects.toThrow(BotAlreadyRunningError);
    await lock.release();
    expect(await lockHolders(other)).toEqual([]);
  });

  it("leaves another bot's lock alone: once its own lost session is gone and another bot holds the lock, taking it again fails", async () => {
    const [bot, other] = [await openVia("proxy"), await openVia("direct")];
    const lock = await acquireBotLock(bot, "sim", quick);
    bed.proxy.blackhole();
    await lost(lock, 3000);
    expect(lock.held).toBe(false);
    // The server ends the silent session (as its idle timeout would), and the other bot takes over.
    await other.sql.query("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 AND granted", [0x436b6570]);
    const otherLock = await acquireBotLock(other, "sim", { waitMs: 5000, pollMs: 50 });
    const holder = await lockHolders(other);
    await expect(lock.reacquire()).rejects.toThrow(BotAlreadyRunningError);
    expect(lock.held).toBe(false);
    expect(otherLock.held).toBe(true);
    expect(await lockHolders(other)).toEqual(holder);
    await otherLock.release();
  });

  it("keeps a live bot's lock past the server's idle session timeout (its heartbeat), and the server frees a vanished bot's lock after it", async () => {
    const idle = { idleSessionTimeoutMs: 1500 };
    const [bot, other] = [await openVia("proxy", idle), await openVia("direct", idle)];
    const lock = await acquireBotLock(bot, "sim", { heartbeatMs: 300, heartbeatTimeoutMs: 3000 });
    await sleep(3000);
    expect(lock.held).toBe(true);
    await expect(acquireBotLock(other, "sim")).rejects.toThrow(BotAlreadyRunningError);
    // The bot's host vanishes: nothing it sends arrives, nothing is closed.
    bed.proxy.blackhole({ newConnections: "silent" });
    const vanished = Date.now();
    const taken = await acquireBotLock(other, "sim", { waitMs: 10_000, pollMs: 50 });
    expect(Date.now() - vanished).toBeLessThan(1500 + 300 + 1000);
    expect(taken.held).toBe(true);
    await taken.release();
    // And the vanished bot, were it still running, would know it lost the lock.
    await lost(lock, 5000);
    expect(lock.held).toBe(false);
  });
});
