import { setTimeout as sleep } from "node:timers/promises";
import { TIMEFRAMES } from "@candlekeep/core";
import { type Database } from "@candlekeep/db";
import { createServerTestDatabase, openOnTestDatabase, type TestDatabase } from "@candlekeep/db/testing";
import { OUTAGE_LOG_INTERVAL_MS } from "../outage";
import { historyAudited, latestTick, numberField, spawnBot, type BotProcess, type LogLine } from "../testing/process";
import { simCandleMismatches } from "../testing/sim-truth";
import { TcpProxy } from "../testing/tcp-proxy";

/**
 * Reliability, fault 1: the database goes away for ~30 s while the bot process
 * ticks (every connection through a TCP proxy reset, new ones refused).
 */

const SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"];
const OUTAGE_MS = 31_000;

describe("database outage mid-run (real bot process, PostgreSQL through a TCP proxy)", () => {
  let testDb: TestDatabase;
  let proxy: TcpProxy;
  let bot: BotProcess | undefined;
  let db: Database | undefined;

  beforeEach(async () => {
    testDb = await createServerTestDatabase();
    const target = new URL(testDb.url ?? "");
    proxy = new TcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
    await proxy.start();
  });
  afterEach(async () => {
    await bot?.kill();
    await db?.close();
    await proxy.stop();
    await testDb.drop();
    bot = undefined;
    db = undefined;
  });

  it("stays alive, logs the outage once per interval, keeps pending candles and writes each exactly once after recovery, counting dropped decision traces", async () => {
    const viaProxy = new URL(testDb.url ?? "");
    viaProxy.port = String(proxy.port);
    bot = spawnBot({
      DATABASE_URL: viaProxy.toString(),
      CANDLEKEEP_DATA_DIR: testDb.dataDir,
      SYMBOLS: SYMBOLS.join(","),
      TICK_INTERVAL_MS: "200",
      // The simulated clock stays far behind the wall clock: every tick moves it 15 minutes.
      SIM_REPLAY_CANDLES: "10000",
    });
    await bot.waitForTick(3);
    await historyAudited(bot);

    const cutAt = bot.lines.length;
    proxy.cut();
    const firstFailure = await bot.waitFor("the outage logged", (l) => l.message?.startsWith("writing candles failed") === true, { from: cutAt, timeoutMs: 15_000 });
    await sleep(OUTAGE_MS);
    expect(bot.running).toBe(true);
    const restoredAt = bot.lines.length;
    proxy.restore();

    const back = await bot.waitFor("recovery logged", (l) => l.message === "database is back; pending candles written", { from: restoredAt, timeoutMs: 30_000 });
    const lastTick = latestTick(bot);
    await bot.waitFor("trading resumes", (l) => l.message === "bot lock taken again; trading resumes", { from: restoredAt, timeoutMs: 30_000 });
    await bot.waitForTick(lastTick + 3);
    bot.child.kill("SIGTERM");
    expect(await bot.exited).toBe(0);

    const during = bot.lines.slice(cutAt, restoredAt);
    const ticksDuring = during.filter((l) => l.message === "tick");
    // The bot kept ticking through the outage, holding more and more pending candles.
    expect(ticksDuring.length).toBeGreaterThanOrEqual(20);
    const pending = ticksDuring.map((l) => numberField(l, "pending") ?? 0);
    expect(Math.max(...pending)).toBeGreaterThan(pending[0] ?? 0);

    // One outage line per interval, not one per tick: at most one more than the whole intervals in the outage, each an interval apart.
    const outageLines = bot.lines.filter((l) => l.message?.startsWith("writing candles failed") === true);
    expect(outageLines.length).toBeGreaterThanOrEqual(1);
    expect(outageLines.length).toBeLessThanOrEqual(1 + Math.floor(OUTAGE_MS / OUTAGE_LOG_INTERVAL_MS));
    for (let i = 1; i < outageLines.length; i += 1) {
      expect((outageLines[i]?.timestamp ?? 0) - (outageLines[i - 1]?.timestamp ?? 0)).toBeGreaterThanOrEqual(OUTAGE_LOG_INTERVAL_MS);
    }
    expect(firstFailure.fields).toMatchObject({ pendingCandles: expect.any(Number), downSince: expect.any(String), error: expect.any(String) });
    // No warning or error is repeated tick after tick: each message at most once per interval.
    const counts = new Map<string, number>();
    for (const line of during) if (line.level === "warn" || line.level === "error") counts.set(line.message ?? line.raw, (counts.get(line.message ?? line.raw) ?? 0) + 1);
    const perInterval = 1 + Math.floor(OUTAGE_MS / OUTAGE_LOG_INTERVAL_MS);
    expect([...counts].filter(([, count]) => count > perInterval).map(([message, count]) => `${count}× ${message}`)).toEqual([]);

    // Decision traces made during the outage were dropped, and the recovery line says how many.
    const droppedPerTick = sumField(bot.lines.slice(cutAt), "eventsDropped", (l) => l.message === "tick");
    const droppedReported = (numberField(back, "eventsDropped") ?? 0) + sumField(bot.lines, "eventsDropped", (l) => l.message === "events not recorded (non-critical, dropped)");
    expect(numberField(back, "decisionTracesDropped")).toBeGreaterThan(0);
    expect(droppedReported).toBe(droppedPerTick);

    // Every candle the exchange produced over the whole run is stored exactly once, with the exchange's values.
    db = await openOnTestDatabase(testDb, { autoMigrate: false });
    const finalTime = lastExchangeTime(bot.lines);
    expect(await simCandleMismatches(db, { seed: 1, exchangeTime: finalTime, symbols: SYMBOLS, timeframes: TIMEFRAMES, replayed: true })).toEqual([]);
  }, 120_000);

  it("stops cleanly on SIGTERM while the database is away, and the next start fetches again what was not written", async () => {
    const viaProxy = new URL(testDb.url ?? "");
    viaProxy.port = String(proxy.port);
    const env = { DATABASE_URL: viaProxy.toString(), CANDLEKEEP_DATA_DIR: testDb.dataDir, SYMBOLS: SYMBOLS.join(","), TICK_INTERVAL_MS: "100", SIM_REPLAY_CANDLES: "10000" };
    const first = spawnBot(env);
    bot = first;
    await first.waitForTick(3);
    await historyAudited(first);
    const cutAt = first.lines.length;
    proxy.cut();
    await first.waitFor("the outage logged", (l) => l.message?.startsWith("writing candles failed") === true, { from: cutAt, timeoutMs: 15_000 });
    await first.waitForTick(latestTick(first) + 3);
    first.child.kill("SIGTERM");
    expect(await first.exited).toBe(0);
    const unwritten = await first.waitFor("what was not written", (l) => l.message === "shutdown flush failed; candles not written will be fetched again at the next start");
    expect(numberField(unwritten, "pendingCandles")).toBeGreaterThan(0);

    proxy.restore();
    const second = spawnBot(env);
    bot = second;
    await second.waitForTick(5);
    second.child.kill("SIGTERM");
    expect(await second.exited).toBe(0);
    db = await openOnTestDatabase(testDb, { autoMigrate: false });
    expect(await simCandleMismatches(db, { seed: 1, exchangeTime: lastExchangeTime(second.lines), symbols: SYMBOLS, timeframes: TIMEFRAMES, replayed: true })).toEqual([]);
  }, 120_000);
});

function sumField(lines: readonly LogLine[], key: string, which: (line: LogLine) => boolean): number {
  return lines.filter(which).reduce((sum, line) => sum + (numberField(line, key) ?? 0), 0);
}

/** Exchange time of the bot's last tick. */
function lastExchangeTime(lines: readonly LogLine[]): number {
  const last = lines.filter((l) => l.message === "tick").at(-1);
  const time = last?.fields.exchangeTime;
  if (typeof time !== "string") throw new Error("no tick logged");
  return Date.parse(time);
}
