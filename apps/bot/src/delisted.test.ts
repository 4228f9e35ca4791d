import { TIMEFRAME_MS, alignToTimeframe } from "@candlekeep/core";
import { listOpenPositions, savePosition, type Database } from "@candlekeep/db";
import { openOnTestDatabase } from "@candlekeep/db/testing";
import { SimExchange } from "./exchange/sim";
import type { TestBot } from "./testing/bot";
import type { TickReport } from "./tick";
import { useServerTestBot } from "./testing/server-bot";

/** A coin the exchange stops listing while the bot runs, on the simulated exchange (PostgreSQL server). */

const STEP = TIMEFRAME_MS["15m"];

/** The sim, with the coins each fetchCandles call asked for noted in `asked` (a failing call included). */
function askedCoins(bot: TestBot): { sim: SimExchange; asked: string[] } {
  const sim = bot.runtime.market;
  if (!(sim instanceof SimExchange)) throw new Error("expected the simulated exchange");
  const asked: string[] = [];
  const fetchCandles = sim.fetchCandles.bind(sim);
  sim.fetchCandles = (symbol, timeframe, since, limit) => {
    asked.push(symbol);
    return fetchCandles(symbol, timeframe, since, limit);
  };
  return { sim, asked };
}

async function delistedEvents(db: Database): Promise<{ symbol: string; event_key: string }[]> {
  const result = await db.sql.query<{ symbol: string; event_key: string }>("SELECT symbol, event_key FROM system_events WHERE type = 'COIN_DELISTED' ORDER BY id");
  return result.rows;
}

describe("a coin the exchange stops listing while the bot runs", () => {
  const testBot = useServerTestBot();

  it("is warned about once and dropped from the run; an open position is reported once and its row left as saved, also across a restart", async () => {
    // The position's opening is where the sim's clock starts (after the replay start); both coins are delisted one step later, at the first tick.
    const openedAt = alignToTimeframe(Date.now(), "15m") - 10 * STEP;
    const simDelistedFrom = { "ETH/USDT": openedAt + STEP, "SOL/USDT": openedAt + STEP };
    const db = await openOnTestDatabase(testBot.database);
    try {
      await savePosition(db, { exchange: "sim", symbol: "ETH/USDT", side: "LONG", quantity: 0.5, entryPrice: 3000, takeProfit: 1e9, stopLoss: 1, entryOrderId: "ck-eth-entry", openedAt: new Date(openedAt), metadata: { status: "filled" } });
      const saved = await listOpenPositions(db, { exchange: "sim" });

      let bot = await testBot.start({ SYMBOLS: "BTC/USDT,ETH/USDT,SOL/USDT" }, { simDelistedFrom });
      expect(bot.runtime.market.now()).toBe(openedAt);
      expect(bot.runtime.positions.get("ETH/USDT")).toBeDefined();
      const { asked } = askedCoins(bot);
      const askedPerTick: string[][] = [];
      const reports: TickReport[] = [];
      for (let tick = 0; tick < 3; tick += 1) {
        asked.length = 0;
        reports.push(...(await bot.ticks(1)));
        askedPerTick.push([...new Set(asked)].sort());
      }

      expect(reports.map((report) => report.delisted.map((coin) => coin.symbol))).toEqual([["ETH/USDT", "SOL/USDT"], [], []]);
      expect(reports[0]?.delisted[0]?.error).toMatch(/^sim fetchOHLCV ETH\/USDT failed: sim no longer lists ETH\/USDT/);
      expect(reports.flatMap((report) => report.failed)).toEqual([]);
      // Asked once more at the tick that found them delisted, never after; BTC ticks on.
      expect(askedPerTick).toEqual([["BTC/USDT", "ETH/USDT", "SOL/USDT"], ["BTC/USDT"], ["BTC/USDT"]]);
      expect(reports.map((report) => report.coins)).toEqual([3, 1, 1]);
      expect(reports[2]?.candlesAccepted).toBeGreaterThan(0);
      expect(bot.runtime.symbols).toEqual(["BTC/USDT"]);
      expect(bot.runtime.positions.get("ETH/USDT")).toBeUndefined();

      const warnings = bot.logger.lines.filter((line) => line.level === "warn" && (line.meta?.symbol === "ETH/USDT" || line.meta?.symbol === "SOL/USDT"));
      expect(warnings).toEqual([
        {
          level: "warn",
          message: "the exchange no longer lists a coin with an open position: the coin is not fetched or traded, its position is left as saved for you to settle",
          meta: expect.objectContaining({ exchange: "sim", symbol: "ETH/USDT", quantity: 0.5, entryOrderId: "ck-eth-entry", error: expect.stringMatching(/no longer lists ETH\/USDT/), nextStart: expect.stringMatching(/^remove it from SYMBOLS/) }),
        },
        { level: "warn", message: "the exchange no longer lists a coin: the coin is not fetched or traded", meta: expect.objectContaining({ exchange: "sim", symbol: "SOL/USDT" }) },
      ]);
      expect(await delistedEvents(db)).toEqual([{ symbol: "ETH/USDT", event_key: "sim:delisted:ck-eth-entry" }]);
      expect(await listOpenPositions(db, { exchange: "sim" })).toEqual(saved);

      // SYMBOLS without them, as the warning said: start-up finds the position's coin unlisted, warns again, records nothing new.
      bot = await testBot.start({ SYMBOLS: "BTC/USDT" }, { simDelistedFrom, backfill: false });
      expect(bot.runtime.symbols).toEqual(["BTC/USDT"]);
      expect(bot.runtime.positions.get("ETH/USDT")).toBeUndefined();
      const [afterRestart] = await bot.ticks(1);
      expect(afterRestart?.delisted).toEqual([]);
      expect(afterRestart?.failed).toEqual([]);
      expect(await delistedEvents(db)).toEqual([{ symbol: "ETH/USDT", event_key: "sim:delisted:ck-eth-entry" }]);
      expect(await listOpenPositions(db, { exchange: "sim" })).toEqual(saved);
    } finally {
      await db.close();
    }
  });

  it("is not taken for a coin whose fetch fails otherwise: that fails the coin for the tick, and it is fetched again the next", async () => {
    const bot = await testBot.start({ SYMBOLS: "BTC/USDT,SOL/USDT" }, { backfill: false });
    const { sim, asked } = askedCoins(bot);
    sim.failSymbols(["SOL/USDT"]);
    const failing = await bot.ticks(2);
    expect(failing.map((report) => [report.failed.map((coin) => coin.symbol), report.delisted])).toEqual([
      [["SOL/USDT"], []],
      [["SOL/USDT"], []],
    ]);
    expect(bot.logger.lines.filter((line) => line.message === "coin update failed" && line.meta?.symbol === "SOL/USDT")).toHaveLength(2);
    expect(asked.filter((symbol) => symbol === "SOL/USDT")).toHaveLength(2);
    expect(bot.runtime.symbols).toEqual(["BTC/USDT", "SOL/USDT"]);

    sim.failSymbols([]);
    const [healed] = await bot.ticks(1);
    expect(healed?.failed).toEqual([]);
    expect(asked.filter((symbol) => symbol === "SOL/USDT").length).toBeGreaterThan(2);
  });
});
