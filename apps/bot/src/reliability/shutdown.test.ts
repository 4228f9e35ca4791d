import net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { SIM_DEFAULT_SYMBOLS, TIMEFRAMES } from "@candlekeep/core";
import { type Database, type SqlRunner } from "@candlekeep/db";
import { createServerTestDatabase, openOnTestDatabase, type TestDatabase } from "@candlekeep/db/testing";
import { spawnBot, type BotProcess } from "../testing/process";
import { simCandleMismatches } from "../testing/sim-truth";

/**
 * Reliability: every ending goes through one shutdown (final writes within a bound, the
 * bot lock released, the database closed, one last line with the exit code), and a
 * watchdog ends a shutdown that hangs. Real bot processes on a PostgreSQL server.
 */

const SYMBOLS = SIM_DEFAULT_SYMBOLS.slice(0, 12);

describe("process lifecycle (real bot process, PostgreSQL server)", () => {
  let testDb: TestDatabase;
  let db: Database;
  const bots: BotProcess[] = [];
  const cleanups: (() => Promise<void> | void)[] = [];

  beforeEach(async () => {
    testDb = await createServerTestDatabase();
    db = await openOnTestDatabase(testDb, { autoMigrate: true });
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    await Promise.all(bots.splice(0).map((bot) => bot.kill()));
    await db.close();
    await testDb.drop();
  });

  const start = (env: Record<string, string> = {}, args: readonly string[] = []): BotProcess => {
    const bot = spawnBot({ DATABASE_URL: testDb.url ?? "", CANDLEKEEP_DATA_DIR: testDb.dataDir, SYMBOLS: SYMBOLS.join(","), ...env }, args);
    bots.push(bot);
    return bot;
  };

  /** Resolves once the bot has stored candles (its backfill is writing). */
  async function candlesStored(bot: BotProcess): Promise<void> {
    for (;;) {
      const { rows } = await db.sql.query<{ stored: boolean }>("SELECT EXISTS (SELECT 1 FROM candles) AS stored");
      if (rows[0]?.stored) return;
      if (!bot.running) throw new Error("the bot ended before it wrote candles");
      await sleep(20);
    }
  }

  /** Milliseconds from now until `bot` exits, with its code. */
  async function exitOf(bot: BotProcess): Promise<{ code: number | null; ms: number }> {
    const from = Date.now();
    const code = await bot.exited;
    return { code, ms: Date.now() - from };
  }

  it("exits 1 within 10 s when its HTTP port is taken, with the lock released: a second bot starts right after", async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => new Promise<void>((resolve) => taken.close(() => resolve())));
    const address = taken.address();
    const port = typeof address === "object" && address ? address.port : 0;

    const first = start({ PORT: String(port) });
    const { code, ms } = await exitOf(first);
    expect(code).toBe(1);
    expect(ms).toBeLessThan(10_000);
    expect(first.lines.filter((l) => l.level === "error").map((l) => l.message)).toEqual([expect.stringMatching(/^bot failed: listen EADDRINUSE/)]);
    expect(first.lines.at(-1)).toMatchObject({ message: "shutdown finished", fields: { exitCode: 1, reason: "error" } });

    // The lock is free at once: a second bot that would refuse to wait for it starts and trades.
    const second = start({ BOT_LOCK_WAIT_MS: "0" }, ["--ticks", "2"]);
    expect(await second.exited).toBe(0);
    expect(second.lines.at(-1)).toMatchObject({ message: "shutdown finished", fields: { exitCode: 0, reason: "ticks done" } });
  }, 60_000);

  it("SIGTERM during `backfill --days N` stops it promptly with exit code 143; the next run completes it, every candle exact", async () => {
    const first = start({}, ["backfill", "--days", "120"]);
    await candlesStored(first);
    first.child.kill("SIGTERM");
    const { code, ms } = await exitOf(first);
    expect(code).toBe(143);
    expect(ms).toBeLessThan(5000);
    expect(first.lines.some((l) => l.message === "backfill stopped before it finished; the next run continues it")).toBe(true);
    expect(first.lines.at(-1)).toMatchObject({ message: "shutdown finished", fields: { exitCode: 143, reason: "signal during backfill" } });

    const second = start({}, ["backfill", "--days", "120"]);
    expect(await second.exited).toBe(0);
    const finished = second.lines.find((l) => l.message === "backfill finished");
    expect(finished?.fields).toMatchObject({ failed: 0 });
    const exchangeTime = Date.parse(String(finished?.fields.until));
    expect(await simCandleMismatches(db, { seed: 1, exchangeTime, symbols: SYMBOLS, timeframes: TIMEFRAMES, replayed: true })).toEqual([]);
  }, 120_000);

  it("SIGTERM during the start-up backfill stops the bot promptly with exit code 0, before it ticks", async () => {
    const bot = start({ HISTORY_CANDLES: "5000", SIM_REPLAY_CANDLES: "10000" });
    await candlesStored(bot);
    bot.child.kill("SIGTERM");
    const { code, ms } = await exitOf(bot);
    expect(code).toBe(0);
    expect(ms).toBeLessThan(5000);
    expect(bot.lines.some((l) => l.message === "bot running" || l.message === "tick")).toBe(false);
    expect(bot.lines.at(-1)).toMatchObject({ message: "shutdown finished", fields: { exitCode: 0, reason: "signal" } });
  }, 60_000);

  it("SIGTERM while the database is down at start stops the connection retries at once: exit 0, not the watchdog's 3", async () => {
    // A port nothing listens on: each attempt is refused at once, and the retries would wait 1 + 2 + 4 + 8 + 16 s.
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const { port } = closed.address() as net.AddressInfo;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const bot = start({ DATABASE_URL: `postgresql://postgres:s3cret@127.0.0.1:${port}/candlekeep`, DATABASE_CONNECT_RETRIES: "5", SHUTDOWN_TIMEOUT_MS: "20000" });
    await bot.waitFor("a retry", (l) => String(l.message).endsWith("failed, retrying"));
    bot.child.kill("SIGTERM");
    const { code, ms } = await exitOf(bot);
    expect(code).toBe(0);
    expect(ms).toBeLessThan(5000);
    expect(bot.lines.filter((l) => String(l.message).endsWith("failed, retrying"))).toHaveLength(1);
    expect(bot.lines.find((l) => l.message === "stopped during start-up")?.fields).toMatchObject({ signal: "SIGTERM" });
    expect(bot.lines.some((l) => l.level === "error")).toBe(false);
    expect(bot.lines.at(-1)).toMatchObject({ message: "shutdown finished", fields: { exitCode: 0, reason: "signal during start-up" } });
    expect(bot.stdout() + bot.stderr()).not.toContain("s3cret");
  }, 60_000);

  it("SIGTERM while waiting for another bot's lock stops the wait at once: exit 0", async () => {
    const first = start({ TICK_INTERVAL_MS: "200" });
    await first.waitFor("a tick", (l) => l.message === "tick");
    const second = start({ BOT_LOCK_WAIT_MS: "60000" });
    await second.waitFor("waiting for the lock", (l) => l.message === "another bot holds the bot lock; waiting for it to stop");
    second.child.kill("SIGTERM");
    const { code, ms } = await exitOf(second);
    expect(code).toBe(0);
    expect(ms).toBeLessThan(5000);
    expect(second.lines.at(-1)).toMatchObject({ message: "shutdown finished", fields: { exitCode: 0, reason: "signal during start-up" } });
    expect(first.running).toBe(true);
  }, 60_000);

  it("a shutdown that hangs (its candle write held by a lock the database never grants) is ended by the watchdog: exit 3 within SHUTDOWN_TIMEOUT_MS, one line naming the stage", async () => {
    const bot = start({ SHUTDOWN_TIMEOUT_MS: "3000", CANDLE_WRITE_TIMEOUT_MS: "600000", SIM_REPLAY_CANDLES: "10000" });
    await bot.waitForTick(3);
    let unlock: () => void = () => undefined;
    const unlocked = new Promise<void>((resolve) => (unlock = resolve));
    const locking = db.session(async (connection: SqlRunner) => {
      await connection.exec("BEGIN");
      await connection.exec("LOCK TABLE candles IN SHARE MODE");
      await unlocked;
      await connection.exec("COMMIT");
    });
    cleanups.push(async () => {
      unlock();
      await locking;
    });
    const lockedAt = bot.lines.length;
    await bot.waitFor("a candle write held", (l) => l.message === "tick" && l.fields.writeInFlight === true, { from: lockedAt });

    bot.child.kill("SIGTERM");
    const { code, ms } = await exitOf(bot);
    expect(code).toBe(3);
    expect(ms).toBeGreaterThanOrEqual(2500);
    expect(ms).toBeLessThan(8000);
    const watchdog = bot.lines.filter((l) => l.message === "shutdown did not finish within 3000 ms; exiting");
    expect(watchdog).toHaveLength(1);
    expect(watchdog[0]?.fields).toMatchObject({ exitCode: 3, stage: "closing the database" });
    // Before it, the orderly part: the final write given up on within its bound, the lock released.
    expect(bot.lines.some((l) => l.message === "shutdown flush failed; candles not written will be fetched again at the next start")).toBe(true);
    expect(bot.lines.some((l) => l.message === "shutdown finished")).toBe(false);

    unlock();
    await locking;
    const next = start({ BOT_LOCK_WAIT_MS: "0" }, ["--ticks", "1"]);
    expect(await next.exited).toBe(0);
  }, 60_000);
});
