import { TIMEFRAMES, TIMEFRAME_MS, UserFacingError, alignToTimeframe, silentLogger, type Timeframe } from "@candlekeep/core";
import {
  applyEntryProgress,
  closePositionWithTrade,
  latestCandlesPerSeries,
  latestEvents,
  listOpenPositions,
  recordOrderIntent,
  saveCandles,
  savePosition,
  type Database,
  type PositionInput,
} from "@candlekeep/db";
import { entryIntent, openOnTestDatabase } from "@candlekeep/db/testing";
import { loadRecentHistory } from "./history/resume";
import { loadConfig } from "./config";
import { CcxtMarketData, UnsupportedTimeframeError } from "./exchange/ccxt";
import { TEST_API_KEY, TEST_SECRET, exchangeInfoWith, recorded, spotMarketLike, stubbedBinance, tickerLike } from "./exchange/fixtures/binance";
import { MissingApiKeysError } from "./exchange/live";
import { startBot } from "./startup";
import { useServerTestBot } from "./testing/server-bot";
import { TradingModeConflictError } from "./trading-mode";

/** What start-up makes of the market and of what the database holds (PostgreSQL server). */

const STEP = TIMEFRAME_MS["15m"];

function position(symbol: string, openedAt: number): PositionInput {
  return { exchange: "sim", symbol, side: "LONG", quantity: 1, entryPrice: 10, takeProfit: 11, stopLoss: 9, entryOrderId: `ck-${symbol}-${openedAt}-buy`, openedAt: new Date(openedAt), metadata: { status: "filled" } };
}

describe("the simulated clock at start", () => {
  const testBot = useServerTestBot();

  /** Runs `write` on the test's database before the bot starts on it. */
  async function beforeStart(write: (db: Database) => Promise<unknown>): Promise<void> {
    const db = await openOnTestDatabase(testBot.database);
    try {
      await write(db);
    } finally {
      await db.close();
    }
  }

  it("resumes after the candles any coin stored: a coin added to SYMBOLS does not move it back", async () => {
    // Well inside the replay (48 candles back by default), where a fresh clock would start.
    const openTime = alignToTimeframe(Date.now(), "15m") - 8 * STEP;
    await beforeStart((db) => saveCandles(db, [{ exchange: "sim", symbol: "ETH/USDT", timeframe: "15m", openTime, open: 10, high: 11, low: 9, close: 10.5, volume: 1, isClosed: true }]));

    const bot = await testBot.start({ SYMBOLS: "BTC/USDT" }, { backfill: false });
    expect(bot.runtime.symbols).toEqual(["BTC/USDT"]);
    expect(bot.runtime.market.now()).toBe(openTime + STEP);
  });

  it("never starts before the newest trade's exit or an open position's opening", async () => {
    const now = alignToTimeframe(Date.now(), "15m");
    const exitTime = now - 6 * STEP;
    await beforeStart(async (db) => {
      await savePosition(db, position("DOGE/USDT", now - 20 * STEP));
      await closePositionWithTrade(db, { exchange: "sim", symbol: "DOGE/USDT", exitPrice: 10.5, exitTime: new Date(exitTime), exitReason: "TAKE_PROFIT", exitOrderId: "ck-DOGE-exit", fees: 0 });
    });
    let bot = await testBot.start({ SYMBOLS: "BTC/USDT" }, { backfill: false });
    expect(bot.runtime.market.now()).toBe(exitTime);

    const openedAt = now - 3 * STEP;
    await beforeStart((db) => savePosition(db, position("ADA/USDT", openedAt)));
    bot = await testBot.start({ SYMBOLS: "BTC/USDT" }, { backfill: false });
    expect(bot.runtime.market.now()).toBe(openedAt);
  });
});

describe("a restart of a bot whose history is complete", () => {
  const testBot = useServerTestBot();

  it("fetches nothing older than each series' newest stored candle", async () => {
    const settings = { SYMBOLS: "BTC/USDT,ETH/USDT,SOL/USDT", HISTORY_CANDLES: "100" };
    let bot = await testBot.start(settings);
    await bot.ticks(3);
    const db = await bot.database.get();
    const stored = await latestCandlesPerSeries(db, { exchange: "sim", symbols: bot.runtime.symbols, timeframes: TIMEFRAMES, perSeries: 1 });
    const newest = new Map(stored.map((candle) => [`${candle.symbol} ${candle.timeframe}`, candle.openTime]));
    expect(newest.size).toBe(3 * TIMEFRAMES.length);

    bot = await testBot.start(settings, { backfill: false });
    // The sim still answers every request; the test only notes what it was asked for.
    const market = bot.runtime.market;
    const fetchCandles = market.fetchCandles.bind(market);
    const asked: { series: string; since: number | undefined; candles: number }[] = [];
    market.fetchCandles = async (symbol: string, timeframe: Timeframe, since: number | undefined, limit: number) => {
      const page = await fetchCandles(symbol, timeframe, since, limit);
      asked.push({ series: `${symbol} ${timeframe}`, since, candles: page.length });
      return page;
    };
    const report = await loadRecentHistory(bot.runtime, false);

    expect(report).toMatchObject({ series: newest.size, failed: [], stopped: false });
    expect(asked.filter((ask) => ask.since === undefined || ask.since < (newest.get(ask.series) ?? Number.POSITIVE_INFINITY))).toEqual([]);
    // Per series its newest stored candle again and what opened since (the clock resumes where it stopped).
    expect(report.fetched).toBe(asked.reduce((sum, ask) => sum + ask.candles, 0));
    expect(report.fetched).toBeLessThanOrEqual(2 * newest.size);
  });
});

describe("an open position on a coin the exchange no longer lists", () => {
  const testBot = useServerTestBot();

  it("is reported once, and its coin neither fetched nor traded; its position row is left as saved", async () => {
    // The sim lists every BASE/QUOTE of letters and digits: not this one.
    const symbol = "OLD-COIN/USDT";
    const db = await openOnTestDatabase(testBot.database);
    try {
      await savePosition(db, position(symbol, alignToTimeframe(Date.now(), "15m") - 60 * STEP));
      const saved = await listOpenPositions(db, { exchange: "sim" });

      let bot = await testBot.start({ SYMBOLS: "BTC/USDT" }, { backfill: false });
      expect(bot.runtime.symbols).toEqual(["BTC/USDT"]);
      expect(bot.runtime.positions.get(symbol)).toBeUndefined();
      expect(bot.logger.lines.filter((line) => line.level === "warn" && line.meta?.symbol === symbol).map((line) => line.message)).toEqual([
        "the exchange no longer lists a coin with an open position: the coin is not fetched or traded, its position is left as saved for you to settle",
      ]);
      const reports = await bot.ticks(2);
      expect(reports.flatMap((report) => report.failed)).toEqual([]);

      // A restart warns again but records no second event.
      bot = await testBot.start({ SYMBOLS: "BTC/USDT" }, { backfill: false });
      await bot.ticks(1);
      const events = await latestEvents(db, { type: "COIN_DELISTED", limit: 10 });
      expect(events.map((event) => [event.symbol, event.level])).toEqual([[symbol, "warn"]]);
      expect(events[0]?.payload).toMatchObject({ quantity: 1, entryOrderId: saved[0]?.entryOrderId });
      expect((await listOpenPositions(db, { exchange: "sim" })).filter((row) => row.symbol === symbol)).toEqual(saved);
    } finally {
      await db.close();
    }
  });
});

/** Settings pointing at a database that cannot be reached: what start-up refuses must be refused without it. */
const UNREACHABLE_DATABASE = { DATABASE_URL: "postgresql://bot@127.0.0.1:1/candlekeep", DATABASE_CONNECT_RETRIES: "0" };

describe("top:N on a real exchange", () => {
  const testBot = useServerTestBot();

  it("tracks the most traded pairs quoted in QUOTE_CURRENCY", async () => {
    const stub = stubbedBinance();
    stub.route("GET /api/v3/exchangeInfo", () => exchangeInfoWith([spotMarketLike({ base: "BTC", quote: "FDUSD" })]));
    stub.route("GET /api/v3/ticker/24hr", () => [...recorded.fetchTickers.httpResponse, tickerLike("BTCFDUSD", { lastPrice: 118_400, quoteVolume: 3_100_000_000 })]);
    const market = new CcxtMarketData(stub.exchange, { logger: silentLogger });
    const bot = await testBot.start({ EXCHANGE: "binance", SYMBOLS: "top:5", QUOTE_CURRENCY: "FDUSD" }, { market, backfill: false });
    expect(bot.runtime.symbols).toEqual(["BTC/FDUSD"]);
  });

  it("refuses to start when the exchange trades no pair quoted in QUOTE_CURRENCY, saying what to change", async () => {
    await expect(testBot.start({ EXCHANGE: "binance", QUOTE_CURRENCY: "EUR" }, { market: new CcxtMarketData(stubbedBinance().exchange, { logger: silentLogger }), backfill: false })).rejects.toThrow(
      "binance trades no spot pair quoted in EUR. Set QUOTE_CURRENCY to a currency it quotes (e.g. USDT), or SYMBOLS to a list.",
    );
  });
});

describe("live trading at start", () => {
  const testBot = useServerTestBot();

  it("sends orders through the market data's own ccxt exchange: its markets are loaded once", async () => {
    const stub = stubbedBinance({ withKeys: true });
    const market = new CcxtMarketData(stub.exchange, { logger: silentLogger, secrets: [TEST_API_KEY, TEST_SECRET] });
    const live = { EXCHANGE: "binance", TRADING_MODE: "live", EXCHANGE_API_KEY: TEST_API_KEY, EXCHANGE_API_SECRET: TEST_SECRET, SYMBOLS: "BTC/USDT,ETH/USDT" };
    const bot = await testBot.start(live, { market, backfill: false });
    expect(bot.runtime.broker.mode).toBe("live");
    await bot.runtime.broker.balances();
    // The broker read the account through the stub (a second exchange would have gone to the network) without loading markets again.
    expect(stub.calls.map((call) => call.path).filter((path) => path === "/api/v3/exchangeInfo" || path === "/api/v3/account")).toEqual(["/api/v3/exchangeInfo", "/api/v3/account"]);
  });
});

describe("one trading mode per exchange and database", () => {
  const testBot = useServerTestBot();
  const live = { EXCHANGE: "binance", TRADING_MODE: "live", EXCHANGE_API_KEY: TEST_API_KEY, EXCHANGE_API_SECRET: TEST_SECRET, SYMBOLS: "BTC/USDT,ETH/USDT" };
  const paper = { EXCHANGE: "binance", TRADING_MODE: "paper", SYMBOLS: "BTC/USDT,ETH/USDT" };
  const binance = (withKeys: boolean) => {
    const stub = stubbedBinance({ withKeys });
    return new CcxtMarketData(stub.exchange, { logger: silentLogger, ...(withKeys ? { secrets: [TEST_API_KEY, TEST_SECRET] } : {}) });
  };
  const refusal = (settings: Record<string, string>, withKeys: boolean) =>
    testBot.start(settings, { market: binance(withKeys), backfill: false }).then(
      () => undefined,
      (error: unknown) => error,
    );

  /** Writes an entry order of `mode` on binance, filled into a position unless `filled` is false. */
  async function entry(mode: "paper" | "live", symbol: string, clientOrderId: string, filled = true): Promise<void> {
    const db = await openOnTestDatabase(testBot.database, { autoMigrate: true });
    try {
      const { order } = await recordOrderIntent(db, entryIntent(symbol, clientOrderId, { exchange: "binance", mode }));
      if (!filled) return;
      const progress = { status: "filled" as const, exchangeOrderId: "1", filledAmount: 1, averagePrice: 100, filledCost: 100, feeQuote: 0.1, feeBase: 0, fees: [], error: null, time: new Date(0) };
      await applyEntryProgress(db, order, progress, {});
    } finally {
      await db.close();
    }
  }

  it("refuses TRADING_MODE=live on a database holding the exchange's paper trading, naming it and what to do; paper goes on with its positions", async () => {
    await entry("paper", "BTC/USDT", "ckpaperbtc");
    await entry("paper", "ETH/USDT", "ckpapereth");
    await entry("paper", "SOL/USDT", "ckpaperpending", false);
    const error = await refusal(live, true);
    expect(error).toBeInstanceOf(TradingModeConflictError);
    expect(error instanceof Error ? error.message : "").toBe(
      "TRADING_MODE=live, but this database holds binance's paper trading (3 orders, 2 open positions (BTC/USDT, ETH/USDT)): one database keeps one mode's orders, positions and balances per exchange, so paper and real money never mix. " +
        "Give live trading a database of its own (DATABASE_URL, or CANDLEKEEP_DATA_DIR for the embedded one).",
    );
    const bot = await testBot.start(paper, { market: binance(false), backfill: false });
    expect(bot.runtime.positions.all().map((position) => position.symbol).sort()).toEqual(["BTC/USDT", "ETH/USDT"]);
  });

  it("refuses TRADING_MODE=paper on a database holding the exchange's live orders, even with no position open; another exchange's books do not count", async () => {
    await entry("live", "ETH/USDT", "cklivepending", false);
    const error = await refusal(paper, false);
    expect(error).toBeInstanceOf(TradingModeConflictError);
    expect(error instanceof Error ? error.message : "").toBe(
      "TRADING_MODE=paper, but this database holds binance's live trading (1 order): one database keeps one mode's orders, positions and balances per exchange, so paper and real money never mix. " +
        "Give paper trading a database of its own (DATABASE_URL, or CANDLEKEEP_DATA_DIR for the embedded one), or run TRADING_MODE=live with the exchange's keys.",
    );
    // The sim's paper account on the same database is another exchange: it starts.
    const sim = await testBot.start({ SYMBOLS: "BTC/USDT" }, { backfill: false });
    expect(sim.runtime.broker.mode).toBe("paper");
  });
});

describe("start-up refusals, before the database is touched", () => {
  it("refuses live trading without keys", async () => {
    const config = loadConfig({ ...UNREACHABLE_DATABASE, EXCHANGE: "binance", TRADING_MODE: "live", EXCHANGE_API_KEY: TEST_API_KEY, EXCHANGE_API_SECRET: TEST_SECRET }, [], false);
    const withoutSecret = { ...config, exchange: { ...config.exchange, apiSecret: undefined } };
    await expect(startBot(withoutSecret, silentLogger)).rejects.toThrow(MissingApiKeysError);
    await expect(startBot(withoutSecret, silentLogger)).rejects.toThrow(UserFacingError);
    await expect(startBot(withoutSecret, silentLogger)).rejects.toThrow("TRADING_MODE=live needs EXCHANGE_API_KEY and EXCHANGE_API_SECRET for binance; set both, or use TRADING_MODE=paper.");
  });

  it("refuses a timeframe the exchange neither has nor can build, in one line", async () => {
    const stub = stubbedBinance();
    stub.exchange.timeframes = { "1h": "1h", "1d": "1d" };
    const market = new CcxtMarketData(stub.exchange, { logger: silentLogger });
    const config = loadConfig({ ...UNREACHABLE_DATABASE, EXCHANGE: "binance", TIMEFRAMES: "15m,1h" }, [], false);
    const refusal: unknown = await startBot(config, silentLogger, { market }).catch((error: unknown) => error);
    expect(refusal).toBeInstanceOf(UnsupportedTimeframeError);
    expect(refusal instanceof Error ? refusal.message : "").toBe(
      "binance has no 15m candles, nor a shorter timeframe that divides 15m to build them from (it has 1h, 1d); remove 15m from TIMEFRAMES.",
    );
    expect(stub.calls).toEqual([]);
  });
});
