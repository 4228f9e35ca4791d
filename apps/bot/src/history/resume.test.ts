import { SIM_DEFAULT_SYMBOLS, TIMEFRAMES } from "@candlekeep/core";
import { listCandleGaps, type Database } from "@candlekeep/db";
import { createServerTestDatabase, openOnTestDatabase, type TestDatabase } from "@candlekeep/db/testing";
import { startTestBot } from "../testing/bot";
import { latestTick, numberField, spawnBot, type BotProcess, type LogLine } from "../testing/process";
import { simCandleMismatches } from "../testing/sim-truth";
import { daysBack, repairHistory } from "./repair";

/**
 * Resume from what is stored (real bot processes, PostgreSQL server, the sim): a bot down for a
 * while continues each series from its newest stored candle, the last HISTORY_CANDLES before its
 * first tick and the older part in the background while it ticks.
 *
 * Downtime on the sim: it never goes back in time, and starts SIM_REPLAY_CANDLES 15m candles in
 * the past (or after what is stored). A bot whose sim started far in the past stores its history
 * and stops; the next one starts with a smaller SIM_REPLAY_CANDLES, so its clock resumes later:
 * the market went on while no bot ran.
 */

const STEPS_PER_DAY = 96;
/** The farthest back the sim may start (SIM_REPLAY_CANDLES' bound). */
const FAR_BACK = 10_000;
const HISTORY = 100;
const REPAIRED = "history audit found missing candles; repaired";

describe("resume after downtime (real bot process, PostgreSQL server)", () => {
  let testDb: TestDatabase;
  let db: Database;
  const bots: BotProcess[] = [];

  beforeEach(async () => {
    testDb = await createServerTestDatabase();
    db = await openOnTestDatabase(testDb, { autoMigrate: true });
  });
  afterEach(async () => {
    await Promise.all(bots.splice(0).map((bot) => bot.kill()));
    await db.close();
    await testDb.drop();
  });

  /** `days` of history stored (and audited) by a bot whose sim started FAR_BACK candles ago, as `backfill --days` leaves it. */
  async function storeHistory(symbols: readonly string[], days: number): Promise<void> {
    const bot = await startTestBot({ DATABASE_URL: testDb.url, CANDLEKEEP_DATA_DIR: testDb.dataDir, SYMBOLS: symbols.join(","), SIM_REPLAY_CANDLES: String(FAR_BACK) }, { backfill: false });
    try {
      const now = bot.runtime.market.now();
      const report = await repairHistory(bot.runtime, { startFor: daysBack(now, days), after: true, tty: false });
      expect(report).toMatchObject({ failed: [], stopped: false });
    } finally {
      await bot.stop();
    }
  }

  /** The bot again, `downDays` of market later. */
  function restart(symbols: readonly string[], downDays: number): BotProcess {
    const bot = spawnBot({
      DATABASE_URL: testDb.url ?? "",
      CANDLEKEEP_DATA_DIR: testDb.dataDir,
      SYMBOLS: symbols.join(","),
      HISTORY_CANDLES: String(HISTORY),
      SIM_REPLAY_CANDLES: String(FAR_BACK - downDays * STEPS_PER_DAY),
    });
    bots.push(bot);
    return bot;
  }

  const indexOf = (bot: BotProcess, predicate: (line: LogLine) => boolean) => bot.lines.findIndex(predicate);
  const message = (text: string) => (line: LogLine) => line.message === text;

  /** SIGTERM, exit 0, and every stored candle the exchange's, none missing. */
  async function stopAndCheck(bot: BotProcess, symbols: readonly string[]): Promise<void> {
    bot.child.kill("SIGTERM");
    expect(await bot.exited).toBe(0);
    const exchangeTime = Date.parse(String(bot.lines.filter((l) => l.message === "tick").at(-1)?.fields.exchangeTime));
    expect(await simCandleMismatches(db, { seed: 1, exchangeTime, symbols, timeframes: TIMEFRAMES, replayed: true })).toEqual([]);
    expect(await listCandleGaps(db, { exchange: "sim", includeUnavailable: true })).toEqual([]);
  }

  it("fills a week's hole with one restart: the last HISTORY_CANDLES before the first tick, the rest in the background after it", async () => {
    const symbols = SIM_DEFAULT_SYMBOLS.slice(0, 3);
    await storeHistory(symbols, 14);
    const bot = restart(symbols, 7);
    const repaired = await bot.waitFor("the background repair", message(REPAIRED), { timeoutMs: 120_000 });

    // Before the first tick: at most HISTORY_CANDLES (and the forming candle) per series.
    const loaded = bot.lines.find(message("backfill finished"));
    expect(numberField(loaded ?? repaired, "fetched")).toBeLessThanOrEqual(symbols.length * TIMEFRAMES.length * (HISTORY + 1));
    // A week of 15m and 1h candles is more than HISTORY_CANDLES: their older part waits for the background.
    expect(bot.lines.find((l) => l.message?.startsWith("some series miss more than HISTORY_CANDLES") === true)?.fields).toMatchObject({ series: symbols.length * 2 });
    const order = ["backfill finished", "bot running", "tick", "resuming history in the background: auditing what is stored, then fetching what is missing", REPAIRED].map((text) => indexOf(bot, message(text)));
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(order[0]).toBeGreaterThanOrEqual(0);
    // The stretch between the stored history and the recent candles, found as one gap per series and fetched once.
    expect(repaired.fields).toMatchObject({ gaps: symbols.length * 2, gapsLeft: 0, candlesMissingLeft: 0, failed: 0 });
    expect(numberField(repaired, "candlesStored")).toBe(numberField(repaired, "candlesMissing"));
    expect(numberField(repaired, "candlesFetched")).toBe(numberField(repaired, "candlesMissing"));
    await bot.waitForTick(latestTick(bot) + 1);
    await stopAndCheck(bot, symbols);
  }, 180_000);

  it("a signal during the background resume ends the bot promptly with exit code 0 while ticks ran beside it; the next start completes it", async () => {
    const symbols = SIM_DEFAULT_SYMBOLS.slice(0, 12);
    await storeHistory(symbols, 2);
    const bot = restart(symbols, 100);
    const resuming = await bot.waitFor("the background resume", message("resuming history in the background: auditing what is stored, then fetching what is missing"), { timeoutMs: 60_000 });
    await bot.waitFor("the repair's first progress", message("history repair progress"), { timeoutMs: 60_000 });
    // Ticks go on meanwhile.
    await bot.waitForTick(latestTick(bot) + 2);
    expect(bot.lines.some(message("history repair finished"))).toBe(false);
    expect(bot.lines.indexOf(resuming)).toBeLessThan(indexOf(bot, (l) => l.message === "tick" && (numberField(l, "tick") ?? 0) === latestTick(bot)));

    const stoppedAt = Date.now();
    bot.child.kill("SIGTERM");
    expect(await bot.exited).toBe(0);
    expect(Date.now() - stoppedAt).toBeLessThan(5000);
    expect(bot.lines.some(message("history repair stopped before it finished; the next run continues it"))).toBe(true);
    expect(bot.lines.at(-1)).toMatchObject({ message: "shutdown finished", fields: { exitCode: 0, reason: "signal" } });

    const next = restart(symbols, 100);
    const repaired = await next.waitFor("the background repair", message(REPAIRED), { timeoutMs: 120_000 });
    expect(repaired.fields).toMatchObject({ gapsLeft: 0, candlesMissingLeft: 0, failed: 0 });
    await stopAndCheck(next, symbols);
  }, 240_000);
});
