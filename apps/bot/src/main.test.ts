import { latestEvents } from "@candlekeep/db";
import { createServerTestDatabase, loadedModulesProbe, openOnTestDatabase, type TestDatabase } from "@candlekeep/db/testing";
import { spawnBot } from "./testing/process";

/** The real CLI process: start-up validation, signals and exit codes. */

describe("bot CLI", () => {
  it("refuses bad settings with one line per problem and exit code 2, without secrets or stack traces", async () => {
    const bot = spawnBot({ TIMEFRAMES: "15m,7m", EXCHANGE_API_SECRET: "hunter2-secret", TRADING_MODE: "live", DATABASE_POOL_MAX: "-1" }, ["--ticks", "0"]);
    expect(await bot.exited).toBe(2);
    const stderr = bot.stderr();
    expect(stderr).toContain("Invalid configuration:");
    expect(stderr).toContain("  - --ticks must be a whole number ≥ 1");
    expect(stderr).toContain("  - TIMEFRAMES has unknown 7m; use a comma list of 15m, 1h, 4h, 1d");
    expect(stderr).toContain("  - DATABASE_POOL_MAX must be at least 1");
    expect(stderr).not.toContain("hunter2-secret");
    expect(stderr).not.toMatch(/\n\s+at /);
  });

  it("exits 1 with one clear line when the database is unreachable, password redacted", async () => {
    const bot = spawnBot({ DATABASE_URL: "postgresql://bot:p%40ssw0rd@127.0.0.1:1/candlekeep", DATABASE_CONNECT_RETRIES: "0" }, ["--ticks", "1"]);
    expect(await bot.exited).toBe(1);
    const stderr = bot.stderr();
    const errors = stderr.split("\n").filter((l) => l.includes('"level":"error"'));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain("Cannot reach PostgreSQL at 127.0.0.1:1");
    expect(stderr).not.toContain("p%40ssw0rd");
    expect(stderr).not.toContain("p@ssw0rd");
  });

  describe("with a database", () => {
    let testDb: TestDatabase;
    beforeAll(async () => {
      testDb = await createServerTestDatabase();
    });
    afterAll(async () => {
      await testDb.drop();
    });

    it("on SIGTERM finishes the tick, flushes, records SHUTDOWN and exits 0; logs are JSON lines", async () => {
      const bot = spawnBot({ DATABASE_URL: testDb.url ?? "", CANDLEKEEP_DATA_DIR: testDb.dataDir, SYMBOLS: "BTC/USDT,ETH/USDT" });
      await bot.waitForTick(3);
      bot.child.kill("SIGTERM");
      expect(await bot.exited).toBe(0);
      const lines = bot.stderr().trim().split("\n");
      for (const line of lines) expect(() => JSON.parse(line)).not.toThrow();
      expect(lines.some((l) => l.includes("stopping after the current tick"))).toBe(true);

      const db = await openOnTestDatabase(testDb, { autoMigrate: false });
      try {
        const [shutdownEvent] = await latestEvents(db, { type: "SHUTDOWN", limit: 1 });
        expect(shutdownEvent?.payload).toMatchObject({ reason: "signal" });
        expect((await latestEvents(db, { type: "STARTUP", limit: 5 })).length).toBe(1);
      } finally {
        await db.close();
      }
    });

    it("starts and trades on a server without loading Prisma's client (its modules and first query cost ~250 ms and ~30 MB) or the embedded engine", async () => {
      const probe = loadedModulesProbe(testDb.dataDir);
      const bot = spawnBot({ DATABASE_URL: testDb.url ?? "", CANDLEKEEP_DATA_DIR: testDb.dataDir, SYMBOLS: "BTC/USDT,ETH/USDT", NODE_OPTIONS: probe.nodeOptions }, ["--ticks", "3"]);
      expect(await bot.exited).toBe(0);
      expect(probe.loaded()).toEqual({ dbPackage: true, prisma: [], embeddedEngine: [] });
    });
  });
});
