import { setTimeout as sleep } from "node:timers/promises";
import { TIMEFRAMES, TIMEFRAME_MS } from "@candlekeep/core";
import { listCandleGaps, type Database } from "@candlekeep/db";
import { openOnTestDatabase } from "@candlekeep/db/testing";
import type { TestBot } from "../testing/bot";
import { useServerTestBot } from "../testing/server-bot";
import { simCandleMismatches } from "../testing/sim-truth";
import { keepHistory } from "./keeper";
import { daysBack, repairHistory } from "./repair";

/** The running bot's history kept complete in the background (in process, PostgreSQL server, the sim). */

const SYMBOLS = ["BTC/USDT", "ETH/USDT"];
const STEP = TIMEFRAME_MS["15m"];
/** The farthest back the sim may start (SIM_REPLAY_CANDLES' bound). */
const FAR_BACK = 10_000;
const REPAIRED = "history audit found missing candles; repaired";

/** The first line logged from index `from` on with `message`, waited for. */
async function logged(bot: TestBot, message: string, from = 0): Promise<Record<string, unknown>> {
  for (let waited = 0; waited < 60_000; waited += 50) {
    const line = bot.logger.lines.slice(from).find((l) => l.message === message);
    if (line) return line.meta ?? {};
    await sleep(50);
  }
  throw new Error(`not logged within 60 s: ${message}`);
}

/** True when the strategy's closed 15m candles of `symbol` follow each other without a hole and end at `last`. */
function recentAndWhole(bot: TestBot, symbol: string, last: number): boolean {
  const { openTime, length } = bot.runtime.candles.closedColumns(symbol, "15m");
  for (let i = 1; i < length; i += 1) if (openTime[i] !== (openTime[i - 1] ?? 0) + STEP) return false;
  return length > 0 && openTime[length - 1] === last;
}

describe("the background history keeper", () => {
  const testBot = useServerTestBot();
  let db: Database | undefined;
  afterEach(async () => {
    await db?.close();
    db = undefined;
  });

  it("fetches the older part of a long downtime after the first tick, beside the strategy's recent candles, which it leaves alone", async () => {
    // History stored up to a sim clock FAR_BACK candles ago; the bot comes back eight days of market later.
    const before = await testBot.start({ SYMBOLS: SYMBOLS.join(","), SIM_REPLAY_CANDLES: String(FAR_BACK) }, { backfill: false });
    const now = before.runtime.market.now();
    await repairHistory(before.runtime, { startFor: daysBack(now, 3), after: true, tty: false });
    const bot = await testBot.start({ SYMBOLS: SYMBOLS.join(","), SIM_REPLAY_CANDLES: String(FAR_BACK - 8 * 96) });
    const stop = new AbortController();
    const keeping = keepHistory(bot.runtime, { intervalMs: 3_600_000, signal: stop.signal });
    try {
      await sleep(300);
      // Nothing before the first tick.
      expect(bot.logger.lines.some((l) => l.message.startsWith("resuming history in the background"))).toBe(false);
      await bot.ticks(1);
      const repaired = await logged(bot, REPAIRED);
      expect(repaired).toMatchObject({ gaps: SYMBOLS.length * 2, gapsLeft: 0, candlesMissingLeft: 0, failed: 0 });
      expect(repaired.candlesStored).toBe(repaired.candlesMissing);
      await bot.ticks(2);
    } finally {
      stop.abort();
      await keeping;
    }
    const lastClosed = bot.runtime.market.now() - STEP;
    for (const symbol of SYMBOLS) expect(recentAndWhole(bot, symbol, lastClosed)).toBe(true);
    db = await openOnTestDatabase(testBot.database);
    expect(await simCandleMismatches(db, { seed: 1, exchangeTime: bot.runtime.market.now(), symbols: SYMBOLS, timeframes: TIMEFRAMES, replayed: true })).toEqual([]);
    expect(await listCandleGaps(db, { exchange: "sim", includeUnavailable: true })).toEqual([]);
  }, 120_000);

  it("audits again every interval and repairs a hole that appeared meanwhile, saying what it found and repaired", async () => {
    const bot = await testBot.start({ SYMBOLS: SYMBOLS.join(",") });
    await bot.ticks(1);
    const afterFirstTick = bot.runtime.market.now();
    const stop = new AbortController();
    const keeping = keepHistory(bot.runtime, { intervalMs: 3000, signal: stop.signal });
    try {
      await logged(bot, "history audit: nothing missing");
      const from = bot.logger.lines.length;
      // Eight more 15m candles, two of them lost (after the audited ones, before the newest).
      await bot.ticks(8);
      db = await openOnTestDatabase(testBot.database);
      const lost = await db.sql.query(
        "DELETE FROM candles WHERE exchange = 'sim' AND symbol = 'ETH/USDT' AND timeframe = '15m' AND open_time IN (to_timestamp($1::float8 / 1000), to_timestamp($2::float8 / 1000))",
        [afterFirstTick + 2 * STEP, afterFirstTick + 3 * STEP],
      );
      expect(lost.rowCount).toBe(2);
      const repaired = await logged(bot, REPAIRED, from);
      expect(repaired).toMatchObject({ gaps: 1, candlesMissing: 2, candlesFetched: 2, candlesStored: 2, gapsLeft: 0, failed: 0 });
    } finally {
      stop.abort();
      await keeping;
    }
    expect(await simCandleMismatches(db, { seed: 1, exchangeTime: bot.runtime.market.now(), symbols: SYMBOLS, timeframes: TIMEFRAMES, replayed: true })).toEqual([]);
  }, 120_000);
});
