import { performance } from "node:perf_hooks";
import { TIMEFRAME_MS, describeError, silentLogger, type Timeframe } from "@candlekeep/core";
import { BotAlreadyRunningError, isWriteOutage, recordDecisionTraces, recordEvents, saveAccountState } from "@candlekeep/db";
import type { FlushResult } from "./candles/manager";
import { dropDelisted } from "./delisted";
import { balanceOf } from "./exchange/balance";
import { SymbolNotListedError } from "./exchange/retry";
import type { Balance, ExchangeCandle } from "./exchange/types";
import { settleAll } from "./limit";
import type { PositionOutcome } from "./positions/manager";
import { decide } from "./strategy/decide";
import type { BotRuntime } from "./runtime";

export interface TickReport {
  exchangeTime: number;
  coins: number;
  failed: { symbol: string; error: string }[];
  /** Coins whose fetch found them no longer listed by the exchange: not failures, dropped from the run (delisted.ts). */
  delisted: { symbol: string; error: string }[];
  candlesAccepted: number;
  candlesRejected: number;
  candlesDeferred: number;
  /** Rows written by the candle write this tick waited for. */
  written: number;
  flushError: string | undefined;
  /** The candle write was still running when the tick ended (a slow database); it goes on in the background. */
  flushInFlight: boolean;
  opened: number;
  closed: number;
  /** Events and decision traces sent to the database this tick, and how many of them were dropped. */
  events: number;
  eventsDropped: number;
  durationMs: number;
  /** Where the tick's time went: milliseconds per phase, adding up to durationMs. */
  phasesMs: Record<TickPhase, number>;
}

/**
 * The tick's consecutive parts, in order, so a slow tick says whether the
 * exchange, the decisions or the database made it slow:
 * - account: balances read (a request to a real exchange) and the bot lock checked;
 * - fetch: every coin's new candles fetched from the exchange and validated;
 * - decide: strategy, orders and position writes (the candle write runs meanwhile);
 * - writeWait: waiting, after the decisions, for the candle write, the account snapshot and the events.
 */
export const TICK_PHASES = ["account", "fetch", "decide", "writeWait"] as const;
export type TickPhase = (typeof TICK_PHASES)[number];

/** Largest single fetch; exchanges cap OHLCV pages around 500-1500. */
const MAX_FETCH = 1000;

export interface TickOptions {
  /**
   * How long the tick waits for its candle write (epoch ms deadline); a write
   * still running then goes on in the background and the tick ends. Default:
   * when the next tick is due (start + TICK_INTERVAL_MS), so a slow database
   * never stretches the tick interval.
   */
  flushDeadline?: number;
}

/**
 * One tick: every coin concurrently (bounded), then one bulk write of all
 * pending candles (in the background, at most one at a time), the account
 * snapshot, and the decision traces and audit events.
 */
export async function runTick(rt: BotRuntime, options: TickOptions = {}): Promise<TickReport> {
  const started = performance.now();
  const flushDeadline = options.flushDeadline ?? Date.now() + rt.config.tick.intervalMs;
  rt.advanceClock?.();
  const now = rt.market.now();
  const report: TickReport = {
    exchangeTime: now,
    coins: rt.symbols.length,
    failed: [],
    delisted: [],
    candlesAccepted: 0,
    candlesRejected: 0,
    candlesDeferred: 0,
    written: 0,
    flushError: undefined,
    flushInFlight: false,
    opened: 0,
    closed: 0,
    events: 0,
    eventsDropped: 0,
    durationMs: 0,
    phasesMs: { account: 0, fetch: 0, decide: 0, writeWait: 0 },
  };
  // Sizes this tick's entries; the snapshot reads the account again after them.
  const { cash, equity } = await readAccount(rt);
  rt.positions.useFreeCash(cash.free);
  const trading = await holdTradingLock(rt);
  const fetchStarted = performance.now();

  const { concurrency } = rt.config.tick;
  // Candles first, for every coin; their write then runs in the database while
  // the decisions are made here, instead of after them.
  const updated = await settleAll(rt.symbols, concurrency, (symbol) => updateCoinCandles(rt, symbol, now, report));
  const decideStarted = performance.now();
  // The candle write's second half starts once the decisions are done, when this process leaves a core to PostgreSQL.
  let decisionsDone = () => {};
  const candleWrite = flushCandles(rt, report, flushDeadline, new Promise<void>((resolve) => (decisionsDone = resolve)));
  const ready = rt.symbols.filter((symbol, index) => {
    const result = updated[index];
    // Only the exchange's "not listed" answer delists a coin: a network error, a rate limit or an exchange down fails it for this tick.
    if (result?.status === "rejected" && result.reason instanceof SymbolNotListedError) report.delisted.push({ symbol, error: describeError(result.reason) });
    else if (result?.status === "rejected") coinFailed(rt, report, symbol, result.reason);
    return result?.status === "fulfilled";
  });
  // After `ready`, which pairs rt.symbols with `updated` by index.
  dropDelisted(rt, report.delisted, now);
  const decided = await settleAll(ready, concurrency, (symbol) => decideCoin(rt, symbol, now, equity, trading, report));
  decided.forEach((result, index) => {
    if (result.status === "fulfilled") rt.metrics.coinsProcessed.inc();
    else coinFailed(rt, report, ready[index] as string, result.reason);
  });

  // The writes on connections of their own (the candles on two once their second half starts): the tick waits for the slowest, not their sum.
  const writeWaitStarted = performance.now();
  decisionsDone();
  // After any order the account is snapshotted at once, so the balances stored follow every change.
  await Promise.all([candleWrite, snapshotAccount(rt, now, report.opened + report.closed > 0), flushEvents(rt, report)]);

  const ended = performance.now();
  report.durationMs = ended - started;
  report.phasesMs = { account: fetchStarted - started, fetch: decideStarted - fetchStarted, decide: writeWaitStarted - decideStarted, writeWait: ended - writeWaitStarted };
  for (const phase of TICK_PHASES) rt.metrics.tickPhaseDuration.observe({ phase }, report.phasesMs[phase] / 1000);
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

function coinFailed(rt: BotRuntime, report: TickReport, symbol: string, reason: unknown): void {
  const error = describeError(reason);
  report.failed.push({ symbol, error });
  rt.metrics.coinsFailed.inc();
  // A database that cannot write fails every coin, every tick: one outage story, not a line each.
  if (isWriteOutage(reason)) rt.outage.coinWriteFailed(symbol, reason);
  else rt.logger.warn("coin update failed", { symbol, error });
}

/** Fetches the coin's new candles on every timeframe and queues them for the write. */
async function updateCoinCandles(rt: BotRuntime, symbol: string, now: number, report: TickReport): Promise<void> {
  // One await per fetch and no async helper around it: 2,000 series a tick at 500 coins.
  for (const timeframe of rt.timeframes) {
    const since = rt.candles.lastOpenTime(symbol, timeframe);
    const limit = since === undefined ? rt.config.tick.historyCandles : Math.min(MAX_FETCH, Math.ceil((now - since) / TIMEFRAME_MS[timeframe]) + 2);
    queueFetched(rt, symbol, timeframe, await rt.market.fetchCandles(symbol, timeframe, since, limit), report);
  }
}

/** Decides on the coin's candles, manages its position, and queues its decision trace. */
async function decideCoin(rt: BotRuntime, symbol: string, now: number, equity: number, trading: boolean, report: TickReport): Promise<void> {
  const strategyTf = rt.config.strategy.timeframe;
  const price = rt.candles.lastClose(symbol, rt.timeframes[0] as Timeframe);
  if (price === undefined) throw new Error("no candles from the exchange yet");
  const held = rt.positions.get(symbol);
  const decision = decide(rt.candles.closedColumns(symbol, strategyTf), held ? { side: held.side, entryPrice: held.entryPrice } : null, rt.config.strategy.params);

  const smallest = rt.timeframes[0] as Timeframe;
  const coin = { price, candlesSince: (since: number) => rt.candles.candlesSince(symbol, smallest, since) };
  const outcome: PositionOutcome = trading ? await rt.positions.manage(symbol, decision, coin, equity, rt.pendingEvents) : { kind: "none", reason: "trading paused: bot lock not held" };
  if (outcome.kind === "opened") report.opened += 1;
  if (outcome.kind === "closed") {
    report.closed += 1;
    rt.metrics.tradesClosed.inc({ reason: outcome.trade.exitReason });
  }
  const trace = rt.traces.trace(symbol, decision, now, { lastPrice: price, outcome: outcome.kind, ...(outcome.kind === "none" && outcome.reason ? { skipped: outcome.reason } : {}) });
  if (trace) rt.pendingTraces.push(trace);
}

/** Queues a series' fetched candles for the write, counting and logging what was refused. */
function queueFetched(rt: BotRuntime, symbol: string, timeframe: Timeframe, fetched: readonly ExchangeCandle[], report: TickReport): void {
  const added = rt.candles.add(symbol, timeframe, fetched);
  report.candlesAccepted += added.accepted;
  report.candlesDeferred += added.deferred;
  if (added.deferred > 0) rt.metrics.candlesDeferred.inc(added.deferred);
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

/**
 * The quote currency's balance and the equity built on it: that cash plus the
 * open positions at their latest price. One reading, so the two describe the
 * same moment.
 */
async function readAccount(rt: BotRuntime): Promise<{ cash: Balance; equity: number }> {
  const cash = await balanceOf(rt.broker, rt.config.trading.quoteCurrency);
  let held = 0;
  for (const position of rt.positions.all()) {
    held += position.quantity * (rt.candles.lastClose(position.symbol, rt.timeframes[0] as Timeframe) ?? position.entryPrice);
  }
  return { cash, equity: cash.total + held };
}

type FlushOutcome = { ok: true; result: FlushResult } | { ok: false; error: unknown };

/**
 * Starts the candle write (unless one is running: then this tick's candles wait
 * for the next) and waits for it until `deadline`. The write's outcome is
 * handled once, when it settles, whether or not a tick is still waiting.
 */
async function flushCandles(rt: BotRuntime, report: TickReport, deadline: number, secondHalfFrom: Promise<void>): Promise<void> {
  let write: Promise<FlushOutcome>;
  try {
    const db = await rt.db();
    const running = rt.candles.flushing;
    const started = rt.candles.startFlush(db, secondHalfFrom);
    write = started.then(
      (result): FlushOutcome => ({ ok: true, result }),
      (error: unknown): FlushOutcome => ({ ok: false, error }),
    );
    if (!running) void write.then((outcome) => settleFlush(rt, outcome));
  } catch (error) {
    write = Promise.resolve({ ok: false, error });
    settleFlush(rt, { ok: false, error });
  }
  const outcome = await within(write, deadline - Date.now());
  if (outcome === undefined) report.flushInFlight = true;
  else if (outcome.ok) report.written = outcome.result.written;
  else report.flushError = describeError(outcome.error);
  rt.metrics.pendingCandles.set(rt.candles.pendingCount);
}

function settleFlush(rt: BotRuntime, outcome: FlushOutcome): void {
  rt.metrics.pendingCandles.set(rt.candles.pendingCount);
  if (!outcome.ok) {
    rt.metrics.dbErrors.inc({ operation: "saveCandles" });
    rt.outage.candleWriteFailed(outcome.error, rt.candles.pendingCount);
    return;
  }
  const { result } = outcome;
  if (result.flushed === 0) return; // nothing was sent: says nothing about the database
  rt.metrics.candlesWritten.inc(result.written);
  rt.status.lastFlushAt = new Date();
  rt.metrics.lastFlush.set(Date.now() / 1000);
  rt.outage.candleWriteSucceeded(result.written);
}

/** `promise`'s value, or undefined when it has not settled within `ms`. */
function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  if (ms === Number.POSITIVE_INFINITY) return promise;
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), Math.max(0, ms));
    void promise.then((value) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
}

async function flushEvents(rt: BotRuntime, report: TickReport): Promise<void> {
  const events = rt.pendingEvents.splice(0);
  const traces = rt.pendingTraces.splice(0);
  report.events = events.length + traces.length;
  if (report.events === 0) return;
  // recordEvents and recordDecisionTraces log each failure; the outage report logs them once per interval instead.
  let reason = "";
  const quiet = { ...silentLogger, warn: (message: string, meta?: Record<string, unknown>) => void (reason = typeof meta?.error === "string" ? meta.error : message) };
  let dropped: { events: number; traces: number };
  try {
    const db = await rt.db();
    const writer = { sql: db.sql, pool: db.pool, logger: quiet };
    const [eventsDropped, tracesDropped] = await Promise.all([recordEvents(writer, events), recordDecisionTraces(writer, traces)]);
    dropped = { events: eventsDropped, traces: tracesDropped };
  } catch (error) {
    dropped = { events: events.length, traces: traces.length }; // the database could not even be opened
    reason = describeError(error);
  }
  report.eventsDropped = dropped.events + dropped.traces;
  if (report.eventsDropped > 0) {
    rt.metrics.eventsDropped.inc(report.eventsDropped);
    rt.outage.eventsDropped({ events: dropped.events > 0 ? events : [], traces: dropped.traces }, reason);
  }
}

/** The account after this tick's orders, at this tick's prices (at most once per snapshot interval, unless `now` is asked for). */
export async function snapshotAccount(rt: BotRuntime, now: number, force = false): Promise<void> {
  const last = rt.status.lastAccountSnapshotAt;
  if (!force && last !== undefined && now - last < rt.config.tick.accountSnapshotIntervalMs) return;
  const { cash, equity } = await readAccount(rt);
  try {
    // Failures are raised here and reported by the outage report, once per interval (not logged per tick).
    const db = await rt.db();
    await saveAccountState({ sql: db.sql, logger: silentLogger }, [{ time: new Date(now), exchange: rt.market.id, currency: cash.currency, free: cash.free, used: cash.used, total: cash.total, equity }]);
    rt.status.lastAccountSnapshotAt = now;
  } catch (error) {
    rt.metrics.dbErrors.inc({ operation: "saveAccountState" });
    rt.outage.writeFailed("account snapshot", error);
  }
}
