import { performance } from "node:perf_hooks";
import { TIMEFRAME_MS, describeError, type Timeframe } from "@candlekeep/core";
import { BotAlreadyRunningError, recordEvents, saveAccountState, type EventInput } from "@candlekeep/db";
import { settleAll } from "./limit";
import type { PositionOutcome } from "./positions/manager";
import { decide } from "./strategy/decide";
import type { BotRuntime } from "./runtime";

export interface TickReport {
  exchangeTime: number;
  coins: number;
  failed: { symbol: string; error: string }[];
  candlesAccepted: number;
  candlesRejected: number;
  candlesDeferred: number;
  written: number;
  flushError: string | undefined;
  opened: number;
  closed: number;
  events: number;
  eventsDropped: number;
  durationMs: number;
}

/** Largest single fetch; exchanges cap OHLCV pages around 500-1500. */
const MAX_FETCH = 1000;
/** How often an ongoing database outage is logged. */
const OUTAGE_LOG_INTERVAL_MS = 30_000;

/**
 * One tick: every coin concurrently (bounded), then one bulk flush of all
 * pending candles, the decision traces and audit events, and the account snapshot.
 */
export async function runTick(rt: BotRuntime): Promise<TickReport> {
  const started = performance.now();
  rt.advanceClock?.();
  const now = rt.market.now();
  const report: TickReport = {
    exchangeTime: now,
    coins: rt.symbols.length,
    failed: [],
    candlesAccepted: 0,
    candlesRejected: 0,
    candlesDeferred: 0,
    written: 0,
    flushError: undefined,
    opened: 0,
    closed: 0,
    events: 0,
    eventsDropped: 0,
    durationMs: 0,
  };
  const equity = await accountEquity(rt);
  const trading = await holdTradingLock(rt);

  const results = await settleAll(rt.symbols, rt.config.tick.concurrency, (symbol) => processCoin(rt, symbol, now, equity, trading, report));
  results.forEach((result, index) => {
    const symbol = rt.symbols[index] as string;
    if (result.status === "fulfilled") {
      rt.metrics.coinsProcessed.inc();
      return;
    }
    const error = describeError(result.reason);
    report.failed.push({ symbol, error });
    rt.metrics.coinsFailed.inc();
    rt.logger.warn("coin update failed", { symbol, error });
  });

  await flushCandles(rt, report);
  await snapshotAccount(rt, now, equity);
  await flushEvents(rt, report);

  report.durationMs = performance.now() - started;
  rt.status.ticks += 1;
  rt.status.lastTickAt = new Date();
  rt.status.lastProgressAt = rt.status.lastTickAt;
  rt.status.lastTickMs = report.durationMs;
  rt.status.exchangeTime = now;
  rt.metrics.ticks.inc();
  rt.metrics.tickDuration.observe(report.durationMs / 1000);
  rt.metrics.lastTick.set(Date.now() / 1000);
  rt.metrics.openPositions.set(rt.positions.all().length);
  return report;
}

async function processCoin(rt: BotRuntime, symbol: string, now: number, equity: number, trading: boolean, report: TickReport): Promise<void> {
  for (const timeframe of rt.timeframes) await updateSeries(rt, symbol, timeframe, now, report);

  const strategyTf = rt.config.strategy.timeframe;
  const closed = rt.candles.closedCandles(symbol, strategyTf);
  const latest = rt.candles.candles(symbol, rt.timeframes[0] as Timeframe).at(-1);
  if (!latest) throw new Error("no candles from the exchange yet");
  const price = latest.close;
  const held = rt.positions.get(symbol);
  const decision = decide(closed, held ? { side: held.side, entryPrice: held.entryPrice } : null, rt.config.strategy.params);

  const outcome: PositionOutcome = trading ? await rt.positions.manage(symbol, decision, price, equity, rt.pendingEvents) : { kind: "none", reason: "trading paused: bot lock not held" };
  if (outcome.kind === "opened") report.opened += 1;
  if (outcome.kind === "closed") {
    report.closed += 1;
    rt.metrics.tradesClosed.inc({ reason: outcome.trade.exitReason });
  }
  const position = rt.positions.get(symbol);
  const trace = rt.traces.trace(symbol, decision, now, {
    timeframe: strategyTf,
    lastPrice: price,
    outcome: outcome.kind,
    ...(outcome.kind === "none" && outcome.reason ? { skipped: outcome.reason } : {}),
    position: position
      ? { side: position.side, quantity: position.quantity, entryPrice: position.entryPrice, takeProfit: position.takeProfit, stopLoss: position.stopLoss, unrealizedPnl: (price - position.entryPrice) * position.quantity }
      : null,
  });
  if (trace) rt.pendingEvents.push(trace);
}

async function updateSeries(rt: BotRuntime, symbol: string, timeframe: Timeframe, now: number, report: TickReport): Promise<void> {
  const since = rt.candles.lastOpenTime(symbol, timeframe);
  const limit = since === undefined ? rt.config.tick.historyCandles : Math.min(MAX_FETCH, Math.ceil((now - since) / TIMEFRAME_MS[timeframe]) + 2);
  const fetched = await rt.market.fetchCandles(symbol, timeframe, since, limit);
  const added = rt.candles.add(symbol, timeframe, fetched);
  report.candlesAccepted += added.accepted;
  report.candlesDeferred += added.deferred;
  if (added.rejected.length > 0) {
    report.candlesRejected += added.rejected.length;
    rt.metrics.candlesRejected.inc(added.rejected.length);
    rt.logger.warn("invalid candles rejected", { symbol, timeframe, count: added.rejected.length, firstReason: added.rejected[0]?.reason });
  }
}

/**
 * Trading needs the bot lock. After an outage dropped it, take it back; if
 * another bot took it meanwhile, stop: two bots must never trade one account.
 */
async function holdTradingLock(rt: BotRuntime): Promise<boolean> {
  if (rt.lock.held) return true;
  try {
    await rt.lock.reacquire();
    rt.logger.info("bot lock taken again; trading resumes");
    return true;
  } catch (error) {
    if (error instanceof BotAlreadyRunningError) throw error;
    return false;
  }
}

/** Cash plus open positions at their latest price, in the quote currency. */
async function accountEquity(rt: BotRuntime): Promise<number> {
  const balances = await rt.broker.balances();
  const cash = balances.find((b) => b.currency === rt.config.trading.quoteCurrency)?.total ?? 0;
  let held = 0;
  for (const position of rt.positions.all()) {
    const last = rt.candles.candles(position.symbol, rt.timeframes[0] as Timeframe).at(-1);
    held += position.quantity * (last?.close ?? position.entryPrice);
  }
  return cash + held;
}

async function flushCandles(rt: BotRuntime, report: TickReport): Promise<void> {
  try {
    const db = await rt.db();
    const result = await rt.candles.flushPending(db);
    report.written = result.written;
    rt.metrics.candlesWritten.inc(result.written);
    if (result.rejected.length > 0) rt.metrics.candlesRejected.inc(result.rejected.length);
    rt.status.lastFlushAt = new Date();
    rt.metrics.lastFlush.set(Date.now() / 1000);
    if (rt.status.dbDownSince) {
      rt.logger.info("database is back; pending candles written", { downForMs: Date.now() - rt.status.dbDownSince.getTime(), written: result.written });
      rt.status.dbDownSince = undefined;
      rt.status.lastOutageLogAt = undefined;
    }
  } catch (error) {
    report.flushError = describeError(error);
    rt.metrics.dbErrors.inc({ operation: "saveCandles" });
    const nowMs = Date.now();
    rt.status.dbDownSince ??= new Date(nowMs);
    // One line per interval during an outage, not one per tick or row.
    if (rt.status.lastOutageLogAt === undefined || nowMs - rt.status.lastOutageLogAt >= OUTAGE_LOG_INTERVAL_MS) {
      rt.status.lastOutageLogAt = nowMs;
      rt.logger.error("writing candles failed; keeping them pending and retrying next tick", {
        pendingCandles: rt.candles.pendingCount,
        downSince: rt.status.dbDownSince.toISOString(),
        error: report.flushError,
      });
    }
  } finally {
    rt.metrics.pendingCandles.set(rt.candles.pendingCount);
  }
}

async function flushEvents(rt: BotRuntime, report: TickReport): Promise<void> {
  const events: EventInput[] = rt.pendingEvents.splice(0);
  report.events = events.length;
  if (events.length === 0) return;
  let dropped: number;
  try {
    dropped = await recordEvents(await rt.db(), events);
  } catch {
    dropped = events.length; // the database could not even be opened
  }
  report.eventsDropped = dropped;
  if (dropped > 0) rt.metrics.eventsDropped.inc(dropped);
}

async function snapshotAccount(rt: BotRuntime, now: number, equity: number): Promise<void> {
  const last = rt.status.lastAccountSnapshotAt;
  if (last !== undefined && now - last < rt.config.tick.accountSnapshotIntervalMs) return;
  const quote = rt.config.trading.quoteCurrency;
  const cash = (await rt.broker.balances()).find((b) => b.currency === quote) ?? { currency: quote, free: 0, used: 0, total: 0 };
  try {
    await saveAccountState(await rt.db(), [{ time: new Date(now), exchange: rt.market.id, currency: quote, free: cash.free, used: cash.used, total: cash.total, equity }]);
    rt.status.lastAccountSnapshotAt = now;
  } catch (error) {
    rt.metrics.dbErrors.inc({ operation: "saveAccountState" });
    rt.logger.warn("account snapshot not saved; retrying next tick", { error: describeError(error) });
  }
}
