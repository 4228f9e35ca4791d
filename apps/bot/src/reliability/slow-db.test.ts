import { TIMEFRAMES } from "@candlekeep/core";
import { type Database, type SqlRunner } from "@candlekeep/db";
import { createServerTestDatabase, openOnTestDatabase, type TestDatabase } from "@candlekeep/db/testing";
import { SimExchange } from "../exchange/sim";
import { historyAudited, latestTick, numberField, spawnBot, type BotProcess, type LogLine } from "../testing/process";
import { simCandleMismatches } from "../testing/sim-truth";

/**
 * Reliability, fault 4: a slow database. Candle writes run in the background,
 * one at a time, so ticks keep their interval; a write that PostgreSQL holds
 * longer than CANDLE_WRITE_TIMEOUT_MS is cancelled and its candles kept; the
 * pending candles are bounded by MAX_PENDING_CANDLES, which is reported.
 */

const MAX_PENDING = 1000;
const COINS = 40;

function metricValue(text: string, name: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  if (!line) throw new Error(`metric ${name} not found`);
  return Number(line.slice(name.length + 1));
}

describe("slow database (real bot process, PostgreSQL server)", () => {
  let testDb: TestDatabase;
  let bot: BotProcess | undefined;
  let db: Database | undefined;
  /** Ends the test's lock on the candles table (also when the test failed while holding it). */
  let unlock: () => void = () => undefined;

  beforeEach(async () => {
    testDb = await createServerTestDatabase();
  });
  afterEach(async () => {
    unlock();
    await bot?.kill();
    await db?.close();
    await testDb.drop();
    bot = undefined;
    db = undefined;
  });

  it("keeps ticking while candle writes are slow or blocked, bounds and reports the pending candles, and loses none", async () => {
    const proc = spawnBot({
      DATABASE_URL: testDb.url ?? "",
      CANDLEKEEP_DATA_DIR: testDb.dataDir,
      SYMBOLS: `top:${COINS}`,
      TICK_INTERVAL_MS: "250",
      SIM_REPLAY_CANDLES: "10000",
      CANDLE_WRITE_TIMEOUT_MS: "1500",
      MAX_PENDING_CANDLES: String(MAX_PENDING),
    });
    bot = proc;
    const running = await proc.waitFor("bot running", (l) => l.message === "bot running");
    const base = `http://127.0.0.1:${numberField(running, "port")}`;
    await proc.waitForTick(3);
    await historyAudited(proc);
    db = await openOnTestDatabase(testDb, { autoMigrate: false });
    const admin = db;
    const ticksFrom = (index: number) => proc.lines.slice(index).filter((l) => l.message === "tick");

    // 1. Every candle write takes over a second (a statement-level trigger sleeps), well over the tick interval.
    await admin.sql.exec(`
      CREATE FUNCTION slow_candle_writes() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(1); RETURN NULL; END $$;
      CREATE TRIGGER slow_candle_writes BEFORE INSERT ON candles FOR EACH STATEMENT EXECUTE FUNCTION slow_candle_writes();`);
    const slowFrom = proc.lines.length;
    // Ticks go on while a write runs, and the slow writes still succeed.
    await proc.waitFor(
      "two ticks in a row during one write",
      (l) => {
        const ticks = ticksFrom(slowFrom);
        const i = ticks.indexOf(l);
        return i > 0 && l.fields.writeInFlight === true && ticks[i - 1]?.fields.writeInFlight === true;
      },
      { from: slowFrom },
    );
    await proc.waitFor("a slow write finished", (l) => l.message === "tick" && (numberField(l, "written") ?? 0) > 0, { from: slowFrom });
    expect(proc.lines.slice(slowFrom).filter((l) => l.level === "error")).toEqual([]);
    await admin.sql.exec("DROP TRIGGER slow_candle_writes ON candles");

    // 2. Candle writes are blocked (the table is locked): each is cancelled after CANDLE_WRITE_TIMEOUT_MS and retried.
    const unlocked = new Promise<void>((resolve) => (unlock = resolve));
    const blockedFrom = proc.lines.length;
    const locking = admin.session(async (connection: SqlRunner) => {
      await connection.exec("BEGIN");
      await connection.exec("LOCK TABLE candles IN SHARE MODE");
      await unlocked;
      await connection.exec("COMMIT");
    });
    const timedOut = await proc.waitFor("a write cancelled by the statement timeout", (l) => l.message?.startsWith("writing candles failed") === true, { from: blockedFrom });
    expect(String(timedOut.fields.error)).toMatch(/statement timeout/);
    await proc.waitFor("the pending limit reached", (l) => l.message === "pending candle limit reached; fetching pauses until the database catches up", { from: blockedFrom });
    const limitAt = latestTick(proc);
    await proc.waitForTick(limitAt + 5);
    // Still ticking, memory bounded, and the bound reported: in the tick lines, /metrics and /healthz.
    const blockedTicks = ticksFrom(blockedFrom);
    expect(blockedTicks.length).toBeGreaterThanOrEqual(6);
    expect(Math.max(...blockedTicks.map((l) => numberField(l, "pending") ?? 0))).toBeLessThanOrEqual(MAX_PENDING);
    expect(blockedTicks.some((l) => (numberField(l, "deferred") ?? 0) > 0)).toBe(true);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metricValue(metrics, "candlekeep_pending_candles")).toBeLessThanOrEqual(MAX_PENDING);
    expect(metricValue(metrics, "candlekeep_candles_deferred_total")).toBeGreaterThan(0);
    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: "ok", databaseDownSince: expect.any(String), pendingCandles: expect.any(Number) });

    // 3. The database is fast again: everything kept is written, fetching resumes and catches up.
    unlock();
    await locking;
    await proc.waitFor("recovery", (l) => l.message === "database is back; pending candles written", { from: blockedFrom, timeoutMs: 30_000 });
    await proc.waitFor("fetching resumes", (l) => l.message === "pending candles written; fetching resumes", { from: blockedFrom, timeoutMs: 30_000 });
    const resumedAt = latestTick(proc);
    await proc.waitForTick(resumedAt + 3);
    proc.child.kill("SIGTERM");
    expect(await proc.exited).toBe(0);

    const lastTick: LogLine | undefined = proc.lines.filter((l) => l.message === "tick").at(-1);
    const exchangeTime = Date.parse(String(lastTick?.fields.exchangeTime));
    const symbols = await new SimExchange({ seed: 1, startTime: exchangeTime }).topSymbols(COINS, "USDT");
    expect(await simCandleMismatches(admin, { seed: 1, exchangeTime, symbols, timeframes: TIMEFRAMES, replayed: true })).toEqual([]);
  }, 180_000);
});
