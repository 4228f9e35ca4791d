// Start-up: connect, take the bot lock, resolve the tracked market and restore the runtime from the database.
import { SIM_DEFAULT_SYMBOLS, UserFacingError, type Logger } from "@candlekeep/core";
import {
  acquireBotLock,
  createDb,
  latestCandleTime,
  latestDecisionTracePerSymbol,
  latestSeriesCandles,
  latestTradeEntries,
  listOpenPositions,
  listTrades,
  listUnsettledOrders,
  accountHistory,
  carryOverPositions,
  openPaperAccount,
  paperAccountStart,
  paperLedgerTotals,
  recordEvent,
  recordEvents,
  type BotLock,
  type Database,
  type EventInput,
  type LazyDatabase,
  type OpenPosition,
} from "@candlekeep/db";
import { CandleManager } from "./candles/manager";
import type { BotConfig } from "./config";
import { DecisionTraceThrottle } from "./decision-trace";
import { delistedEvent, warnDelisted } from "./delisted";
import { settleAll } from "./limit";
import { createCcxtMarketData, type CcxtMarketData } from "./exchange/ccxt";
import { LiveBroker, MissingApiKeysError } from "./exchange/live";
import { PaperBroker } from "./exchange/paper";
import { SimExchange, simListing, simReplayStart } from "./exchange/sim";
import type { Broker, MarketData } from "./exchange/types";
import { createMetrics } from "./metrics";
import { DatabaseOutage } from "./outage";
import { PositionManager } from "./positions/manager";
import { newStatus, type BotRuntime } from "./runtime";
import { assertOneTradingMode } from "./trading-mode";

export interface StartedBot {
  runtime: BotRuntime;
  database: LazyDatabase;
}

export interface StartOptions {
  /** Ends the connection retries and a wait for the bot lock (the process is stopping). */
  signal?: AbortSignal;
  /** Start-up failed and is about to close what it opened: the caller's shutdown (and its bound) begins. */
  onFailure?: () => void;
  /** Market data for a real EXCHANGE instead of creating it from the configuration (tests: recorded responses). */
  market?: CcxtMarketData;
  /**
   * EXCHANGE=sim: how much market time each tick moves while the sim replays the past (default 15
   * minutes: one new 15m candle per coin every tick). The benchmark uses one minute, a real exchange's cadence.
   */
  simStepMs?: number;
  /**
   * EXCHANGE=sim: the clock the sim takes for the wall clock (default Date.now). Tests and the
   * benchmark's real-cadence run (startTestBot's `simCaughtUp`) give it one that moves a step per
   * tick, so the sim is always caught up, as a real exchange is.
   */
  simWallClock?: () => number;
  /** EXCHANGE=sim: coins it lists only from a later date (SimExchangeOptions.listedFrom): tests of history the exchange does not have. */
  simListedFrom?: Readonly<Record<string, number>>;
  /** EXCHANGE=sim: coins it stops listing at a market time (SimExchangeOptions.delistedFrom): tests of a coin delisted while the bot runs. */
  simDelistedFrom?: Readonly<Record<string, number>>;
}

/** Coins whose stored history is read per query at start-up. */
const RESTORE_COINS_PER_QUERY = 50;
const RESTORE_QUERIES_AT_ONCE = 2;

/** SYMBOLS names coins the exchange does not list (a configuration error). */
export class UnknownSymbolsError extends UserFacingError {
  override readonly name = "UnknownSymbolsError";
}

/**
 * Connects (with retry), takes the bot lock (waiting for another bot to stop,
 * up to BOT_LOCK_WAIT_MS), restores what the database knows (open positions,
 * recent candles, decision-trace throttle state, paper balance), resolves the
 * tracked coins and records a STARTUP event.
 */
export async function startBot(config: BotConfig, logger: Logger, options: StartOptions = {}): Promise<StartedBot> {
  // A real exchange is created first: an unknown EXCHANGE fails at once, before the database is touched.
  const ccxtMarket = config.exchange.id === "sim" ? undefined : await openExchangeMarket(config, logger, options.market);
  const database = createDb({
    databaseUrl: config.database.url,
    caCert: config.database.caCert,
    poolMax: config.database.poolMax,
    retry: { retries: config.database.connectRetries, initialDelayMs: 1000 },
    signal: options.signal,
    dataDir: config.database.dataDir,
    autoMigrate: config.database.autoMigrate,
    logger,
  });
  let lock: BotLock | undefined;
  try {
    const db = await database.get();
    lock = await acquireBotLock(db, `candlekeep:${config.exchange.id}`, { waitMs: config.database.lockWaitMs, signal: options.signal });
    const runtime = await restore({ config, logger, db, getDb: () => database.get(), lock, ccxtMarket, simStepMs: options.simStepMs, simWallClock: options.simWallClock, simListedFrom: options.simListedFrom, simDelistedFrom: options.simDelistedFrom });
    await recordEvent(db, {
      type: "STARTUP",
      payload: {
        exchange: runtime.market.id,
        mode: config.trading.mode,
        coins: runtime.symbols.length,
        timeframes: runtime.timeframes,
        // What every decision trace of this run was made with, recorded once rather than on each trace.
        strategy: { timeframe: config.strategy.timeframe, ...config.strategy.params },
        decisionTraceIntervalMs: config.tick.decisionTraceIntervalMs,
        openPositions: runtime.positions.all().length,
        database: db.kind,
        pid: process.pid,
      },
    });
    return { runtime, database };
  } catch (error) {
    options.onFailure?.();
    // The lock holds a pooled connection: closing the pool waits for it, so it goes first.
    await lock?.release().catch(() => undefined);
    await database.close().catch(() => undefined);
    await ccxtMarket?.close().catch(() => undefined);
    throw error;
  }
}

/**
 * A real exchange's market data (created from the configuration, with the keys, unless given), checked
 * before the database is touched: live trading has its keys, and a configured timeframe the exchange
 * lacks is built from a shorter one, or refused. Its ccxt exchange also carries live orders.
 */
async function openExchangeMarket(config: BotConfig, logger: Logger, given: CcxtMarketData | undefined): Promise<CcxtMarketData> {
  if (config.trading.mode === "live" && (!config.exchange.apiKey || !config.exchange.apiSecret)) {
    throw new MissingApiKeysError(`TRADING_MODE=live needs EXCHANGE_API_KEY and EXCHANGE_API_SECRET for ${config.exchange.id}; set both, or use TRADING_MODE=paper.`);
  }
  const market = given ?? (await createCcxtMarketData({ exchangeId: config.exchange.id, apiKey: config.exchange.apiKey, secret: config.exchange.apiSecret, logger }));
  try {
    for (const { timeframe, from } of market.builtTimeframes(config.exchange.timeframes)) {
      logger.info("the exchange has no candles of a tracked timeframe: they are built from a shorter one", { exchange: market.id, timeframe, from });
    }
  } catch (error) {
    await market.close().catch(() => undefined);
    throw error;
  }
  return market;
}

/** What start-up has opened before restoring: the database, its lock, and a real exchange's market data. */
interface Opened {
  config: BotConfig;
  logger: Logger;
  db: Database;
  getDb: () => Promise<Database>;
  lock: BotLock;
  ccxtMarket: CcxtMarketData | undefined;
  simStepMs: number | undefined;
  simWallClock: (() => number) | undefined;
  simListedFrom: Readonly<Record<string, number>> | undefined;
  simDelistedFrom: Readonly<Record<string, number>> | undefined;
}

/** The market the bot trades and the coins it tracks on it. */
interface TrackedMarket {
  market: MarketData;
  /** The sim's clock, moved once per tick; a real exchange's moves by itself. */
  advanceClock: (() => void) | undefined;
  /** True while the market replays the past (the sim catching up); a real exchange never does. */
  replaying: () => boolean;
  symbols: string[];
  /** Open positions on coins the exchange no longer lists: neither fetched nor traded, their rows left as saved. */
  delisted: OpenPosition[];
}

/**
 * The sim (continuing after what is stored) or the real exchange, and the coins
 * SYMBOLS names on it, checked against its listing, plus any coin that still
 * has an open position and is still listed.
 */
async function trackMarket({ config, logger, db, ccxtMarket, simStepMs, simWallClock, simListedFrom, simDelistedFrom }: Opened, openPositions: readonly OpenPosition[]): Promise<TrackedMarket> {
  const exchangeId = config.exchange.id;
  let market: MarketData;
  let advanceClock: (() => void) | undefined;
  let replaying = () => false;
  // The runtime's own list, never SYMBOLS' array: it gains untracked positions' coins here and loses coins delisted while running.
  let symbols: string[];
  if (exchangeId === "sim") {
    const sim = new SimExchange({
      seed: config.sim.seed,
      quoteCurrency: config.trading.quoteCurrency,
      startTime: await simStartTime(config, db, openPositions),
      ...(simStepMs === undefined ? {} : { stepMs: simStepMs }),
      ...(simWallClock === undefined ? {} : { wallClock: simWallClock }),
      ...(simListedFrom === undefined ? {} : { listedFrom: simListedFrom }),
      ...(simDelistedFrom === undefined ? {} : { delistedFrom: simDelistedFrom }),
    });
    const selection = config.exchange.symbols;
    symbols = selection?.kind === "top" ? await sim.topSymbols(selection.count, config.trading.quoteCurrency) : selection?.kind === "list" ? [...selection.symbols] : [...SIM_DEFAULT_SYMBOLS];
    market = sim;
    advanceClock = () => sim.advance();
    replaying = () => sim.replaying();
  } else {
    if (!ccxtMarket) throw new Error(`no market data for ${exchangeId}`);
    market = ccxtMarket;
    symbols = config.exchange.symbols?.kind === "list" ? [...config.exchange.symbols.symbols] : await market.topSymbols(config.exchange.symbols?.count ?? 20, config.trading.quoteCurrency);
    if (symbols.length === 0) {
      throw new UnknownSymbolsError(`${exchangeId} trades no spot pair quoted in ${config.trading.quoteCurrency}. Set QUOTE_CURRENCY to a currency it quotes (e.g. USDT), or SYMBOLS to a list.`);
    }
  }
  const unknown = await market.unknownSymbols(symbols);
  if (unknown.length > 0) {
    // The sim's listing is short enough to say; a real exchange's is on its website.
    const fix =
      exchangeId === "sim"
        ? `Fix SYMBOLS: the simulated exchange lists ${simListing(config.trading.quoteCurrency)} (QUOTE_CURRENCY).`
        : "Fix SYMBOLS (use the exchange's BASE/QUOTE names, e.g. BTC/USDT).";
    throw new UnknownSymbolsError(`${exchangeId} does not list ${unknown.join(", ")}. ${fix}`);
  }
  // A coin dropped from SYMBOLS while a position is open is still managed until that position closes,
  // unless the exchange no longer lists it: then every fetch and order for it would fail, tick after tick.
  const untracked = openPositions.filter((position) => !symbols.includes(position.symbol));
  const unlisted = new Set(await market.unknownSymbols(untracked.map((position) => position.symbol)));
  for (const position of untracked) {
    if (unlisted.has(position.symbol)) continue;
    logger.warn("open position on an untracked coin; tracking it until it closes", { symbol: position.symbol });
    symbols.push(position.symbol);
  }
  return { market, advanceClock, replaying, symbols, delisted: untracked.filter((position) => unlisted.has(position.symbol)) };
}

/**
 * Reports each open position whose coin the exchange no longer lists: a warning at every start, one
 * COIN_DELISTED event per position (its key makes a restart's report a no-op). The user settles it.
 */
async function reportDelisted(db: Database, logger: Logger, market: MarketData, delisted: readonly OpenPosition[]): Promise<void> {
  for (const position of delisted) warnDelisted(logger, market.id, position.symbol, position);
  await recordEvents(db, delisted.map((position) => delistedEvent(market.id, position, new Date(market.now()))));
}

/** The bot's runtime, resumed from what the database holds for the tracked market. */
async function restore(opened: Opened): Promise<BotRuntime> {
  const { config, logger, db, getDb, lock } = opened;
  const exchangeId = config.exchange.id;
  const timeframes = config.exchange.timeframes;
  await assertOneTradingMode(db, { exchange: exchangeId, mode: config.trading.mode });
  const openPositions = await listOpenPositions(db, { exchange: exchangeId });
  const { market, advanceClock, replaying, symbols, delisted } = await trackMarket(opened, openPositions);
  await reportDelisted(db, logger, market, delisted);
  const managed = openPositions.filter((position) => !delisted.includes(position));

  const broker = createBroker(config, market, opened.ccxtMarket, logger);

  const candles = new CandleManager({
    exchange: exchangeId,
    historyCandles: config.tick.historyCandles,
    maxPending: config.tick.maxPendingCandles,
    writeTimeoutMs: config.database.candleWriteTimeoutMs,
    logger,
    now: () => market.now(),
    replaying,
  });
  // A few coins per query: a query's whole result is held at once (its packed candles as hex text,
  // then as bytes): ~9 MB per 50 coins of 4 × 300 candles, a start-up peak the process keeps as RSS.
  // Two queries at a time: PostgreSQL reads one while this process unpacks the other.
  const chunks: string[][] = [];
  for (let i = 0; i < symbols.length; i += RESTORE_COINS_PER_QUERY) chunks.push(symbols.slice(i, i + RESTORE_COINS_PER_QUERY));
  const reads = await settleAll(chunks, RESTORE_QUERIES_AT_ONCE, async (chunk) => {
    candles.restore(await latestSeriesCandles(db, { exchange: exchangeId, symbols: chunk, timeframes, perSeries: config.tick.historyCandles }));
  });
  for (const read of reads) if (read.status === "rejected") throw read.reason;

  // The paper account is what its ledger adds up to, before any order is settled against it.
  if (broker instanceof PaperBroker) await restorePaperAccount(broker, config, db, exchangeId, logger);
  const mode = config.trading.mode;
  const positions = new PositionManager({ db: getDb, broker, market, exchange: exchangeId, mode, rules: config.trading, signalTimeframe: config.strategy.timeframe });
  positions.restore(managed, await latestTradeEntries(db, { exchange: exchangeId, symbols }), await listUnsettledOrders(db, { exchange: exchangeId, mode }));
  await settleUnsettledOrders(positions, db, logger);

  const traces = new DecisionTraceThrottle(exchangeId, config.tick.decisionTraceIntervalMs);
  traces.restore(await latestDecisionTracePerSymbol(db, { exchange: exchangeId, symbols }));

  logger.info("bot state restored", { exchange: exchangeId, coins: symbols.length, timeframes, openPositions: managed.length, mode: config.trading.mode });
  const status = newStatus();
  return {
    config,
    logger,
    metrics: createMetrics(),
    market,
    advanceClock,
    broker,
    db: getDb,
    lock,
    symbols,
    timeframes,
    candles,
    positions,
    traces,
    status,
    outage: new DatabaseOutage(logger, status),
    pendingEvents: [],
    pendingTraces: [],
  };
}

/** Orders a crash or an outage left unsettled, looked up with the exchange before the first tick (see PositionManager). */
async function settleUnsettledOrders(positions: PositionManager, db: Database, logger: Logger): Promise<void> {
  const events: EventInput[] = [];
  for (const { order, outcome, error } of await positions.settleAll(events)) {
    const about = { symbol: order.symbol, clientOrderId: order.clientOrderId, side: order.side, status: order.status };
    if (outcome === "final") logger.info("order left unsettled by the last run settled with the exchange", about);
    else if (outcome === "pending") logger.warn("order left unsettled by the last run is still open or could not be checked; its coin trades nothing new until it is settled", { ...about, error });
    else logger.warn("order left unsettled by the last run cannot be looked up on the exchange; its coin trades nothing new until it is settled (check the account)", { ...about, error });
  }
  await recordEvents(db, events);
}

/**
 * The simulated clock starts SIM_REPLAY_CANDLES 15m candles in the past, so a
 * short run replays recent history at one candle per tick and produces trades,
 * but never goes back in time: not before what any coin stored on the sim (a
 * restart continues where it stopped, a coin added or dropped meanwhile changes
 * nothing), nor before the newest trade's exit or an open position's opening.
 */
async function simStartTime(config: BotConfig, db: Database, openPositions: readonly OpenPosition[]): Promise<number> {
  const replayStart = simReplayStart(config.sim.replayCandles, Date.now());
  const storedUntil = await latestCandleTime(db, { exchange: "sim" });
  const [newestTrade] = await listTrades(db, { exchange: "sim", limit: 1 });
  return Math.max(
    replayStart,
    storedUntil ?? replayStart,
    newestTrade?.exitTime.getTime() ?? replayStart,
    ...openPositions.map((position) => position.openedAt.getTime()),
  );
}

/** Live orders go through the market data's own ccxt exchange: one rate limiter, markets loaded once. */
function createBroker(config: BotConfig, market: MarketData, ccxtMarket: CcxtMarketData | undefined, logger: Logger): Broker {
  if (config.trading.mode === "live") {
    if (!ccxtMarket) throw new Error("TRADING_MODE=live needs a real exchange");
    return new LiveBroker({ exchange: ccxtMarket.exchange, logger });
  }
  return new PaperBroker({ market, quoteCurrency: config.trading.quoteCurrency, startingBalance: config.trading.paperStartingBalance, feeRate: config.trading.feeRate });
}

/**
 * Paper money survives restarts exactly: cash is the starting balance plus what
 * the ledger's fills add up to, holdings are what they bought less what they
 * sold. The starting balance is the one the account was opened with (recorded
 * once), so changing PAPER_STARTING_BALANCE later cannot create or destroy cash.
 */
async function restorePaperAccount(broker: PaperBroker, config: BotConfig, db: Database, exchange: string, logger: Logger): Promise<void> {
  const { quoteCurrency, paperStartingBalance } = config.trading;
  const opening = (await paperAccountStart(db, exchange)) ?? (await carryOverPaperAccount(db, exchange, quoteCurrency, logger));
  const opened = await openPaperAccount(db, { exchange, ...(opening ?? { currency: quoteCurrency, startingBalance: paperStartingBalance }) });
  if (opened.currency !== quoteCurrency || opened.startingBalance !== paperStartingBalance) {
    logger.warn("the paper account keeps the starting balance it was opened with; PAPER_STARTING_BALANCE or QUOTE_CURRENCY now differ (use a new database or CANDLEKEEP_DATA_DIR for a new paper account)", {
      exchange,
      opened: opened,
      configured: { currency: quoteCurrency, startingBalance: paperStartingBalance },
    });
  }
  const totals = await paperLedgerTotals(db, { exchange });
  const cash = opened.startingBalance + totals.cashChange;
  broker.restore({ quote: { free: cash, total: cash }, holdings: Object.fromEntries(totals.holdings) });
}

/**
 * A paper account kept before the order ledger (its cash in account_state, its
 * coins in open positions) is carried over as it stood: each open position gets
 * its filled entry order, and the account opens with the last snapshot's cash
 * plus what those positions cost, so the ledger's sum is that cash again.
 * Undefined for a new account (nothing stored).
 */
async function carryOverPaperAccount(db: Database, exchange: string, currency: string, logger: Logger): Promise<{ currency: string; startingBalance: number } | undefined> {
  const [last] = await accountHistory(db, { exchange, currency, limit: 1 });
  const carried = await carryOverPositions(db, { exchange, mode: "paper" });
  if (!last) return undefined;
  const startingBalance = last.total + carried.paid;
  logger.info("paper account from before the order ledger carried over: its last balance and open positions", { exchange, cash: last.total, positions: carried.positions, startingBalance });
  return { currency, startingBalance };
}
