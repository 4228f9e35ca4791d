import { acquireBotLock, BotAlreadyRunningError } from "./bot-lock";
import { captureLogger, createServerTestDatabase, openOnTestDatabase, type TestDatabase } from "./testing";

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
