// Positions and their orders: entries, exits and stops through the order ledger (see PositionManager).
import {
  applyEntryProgress,
  applyExitProgress,
  countExitOrders,
  isFinalOrderStatus,
  isRestingStop,
  markOrder,
  recordOrderIntent,
  type Database,
  type EventInput,
  type JsonObject,
  type LedgerOrder,
  type OpenPosition,
  type TradeRecord,
  type TradingMode,
} from "@candlekeep/db";
import { TIMEFRAME_MS, describeError, type Candle, type Timeframe } from "@candlekeep/core";
import { balanceOf } from "../exchange/balance";
import { OrderLookupUnavailableError, OrderRefusedError, type Broker, type MarketData, type OrderReport, type OrderRequest } from "../exchange/types";
import { entryOrderId, exitOrderId } from "../orders/client-order-id";
import type { Decision } from "../strategy/types";
import { exitTrigger, type ExitTrigger } from "./exit-trigger";

export interface TradingRules {
  quoteCurrency: string;
  riskPerTrade: number;
  maxPositionFraction: number;
  feeRate: number;
}

/** What managing one coin did this tick. */
export type PositionOutcome =
  | { kind: "none"; reason?: string }
  | { kind: "opened"; position: OpenPosition }
  | { kind: "closed"; trade: TradeRecord; remaining: OpenPosition | undefined }
  | { kind: "held"; position: OpenPosition };

/** What settling an order left: final, still open on the exchange, or not known (it cannot be asked now). */
export interface SettledOrder {
  order: LedgerOrder;
  outcome: "final" | "pending" | "unknown";
  error?: string;
}

/** How far below its stop a resting stop-limit may sell: room for the fall between trigger and fill. */
export const STOP_LIMIT_SLIPPAGE = 0.005;

/** Share of free cash kept back for spread and slippage when sizing a buy with all of it. */
const CASH_MARGIN = 0.01;

/** The market's price and candles for one coin, as the tick has them. */
export interface CoinMarket {
  price: number;
  /** The smallest timeframe's candles opening at or after `since`, oldest first (the forming one last). */
  candlesSince(since: number): readonly Candle[];
}

/**
 * Entries, exits and their orders (long-only spot), kept in the order ledger:
 * every order is saved before it is sent, and positions and trades are what its
 * fills add up to. An order whose outcome is not known yet (a crash, a lost
 * answer, a database failure after the fill) stays in the ledger unsettled; it
 * is looked up with the exchange at start and on every tick, and its coin sends
 * nothing new until it is settled. Database writes here are critical: a failure
 * raises, failing this coin's tick. Audit events are returned for the caller to
 * record in its per-tick batch.
 */
export class PositionManager {
  private readonly open = new Map<string, OpenPosition>();
  /** Orders not final yet, per coin. */
  private readonly unsettled = new Map<string, LedgerOrder[]>();
  /** Exchange time of each coin's latest entry: one entry per signal (see enter). */
  private readonly lastEntryAt = new Map<string, number>();
  /** Open time of the newest candle each position's levels were checked against. */
  private readonly checkedFrom = new Map<string, number>();
  /** Positions already reported as too small to sell. */
  private readonly dustReported = new Set<string>();
  /** Positions whose stop-loss the exchange refused (or cannot take): the bot watches their stop. */
  private readonly unprotectable = new Set<string>();
  /** Positions whose stop-loss could not be placed, reported once. */
  private readonly stopFailureReported = new Set<string>();
  /**
   * Entries run one at a time: coins are processed concurrently, and each entry
   * sizes itself from the free balance the previous one left.
   */
  private entries: Promise<unknown> = Promise.resolve();
  /**
   * The free quote cash as last read, kept while no order of this manager has
   * changed it. A tick can bring hundreds of BUY signals, most of which find
   * too little cash: reading the balance for each (with a real exchange, a
   * request each, one after another in the entry queue) made entries slow and
   * would run into the exchange's rate limits. Only this bot trades the
   * account (bot lock); the tick sets the reading it starts from, so deposits
   * and withdrawals are seen at the next tick.
   */
  private cash: { free: number } | undefined;
  /** Moves on whenever the cash reading is set or forgotten: a read that was running meanwhile is not kept. */
  private cashVersion = 0;

  constructor(
    private readonly deps: {
      db: () => Promise<Database>;
      broker: Broker;
      market: Pick<MarketData, "orderRules" | "now">;
      exchange: string;
      mode: TradingMode;
      rules: TradingRules;
      /** Timeframe of the candles the decisions are made on. */
      signalTimeframe: Timeframe;
    },
  ) {}

  /** Resumes from the database: open positions, unsettled orders, and when each coin's latest closed trade was entered. */
  restore(positions: readonly OpenPosition[], latestTradeEntries: ReadonlyMap<string, Date> = new Map(), unsettledOrders: readonly LedgerOrder[] = []): void {
    for (const [symbol, enteredAt] of latestTradeEntries) this.noteEntry(symbol, enteredAt.getTime());
    for (const position of positions) {
      this.open.set(position.symbol, position);
      this.noteEntry(position.symbol, position.openedAt.getTime());
    }
    for (const order of unsettledOrders) this.track(order);
  }

  private noteEntry(symbol: string, time: number): void {
    this.lastEntryAt.set(symbol, Math.max(time, this.lastEntryAt.get(symbol) ?? Number.NEGATIVE_INFINITY));
  }

  /** The free quote cash the tick has just read: entries size from it until an order changes it. */
  useFreeCash(free: number): void {
    this.cash = { free };
    this.cashVersion += 1;
  }

  private forgetFreeCash(): void {
    this.cash = undefined;
    this.cashVersion += 1;
  }

  private async freeCash(): Promise<number> {
    if (this.cash) return this.cash.free;
    const version = this.cashVersion;
    const { broker, rules } = this.deps;
    const { free } = await balanceOf(broker, rules.quoteCurrency);
    if (version === this.cashVersion) this.cash = { free };
    return free;
  }

  /** Every order changes the cash: the reading is forgotten when it is sent and again when it is done. */
  private async send(request: OrderRequest): Promise<OrderReport> {
    this.forgetFreeCash();
    try {
      return await this.deps.broker.placeOrder(request);
    } finally {
      this.forgetFreeCash();
    }
  }

  get(symbol: string): OpenPosition | undefined {
    return this.open.get(symbol);
  }

  all(): OpenPosition[] {
    return [...this.open.values()];
  }

  /** Stops managing the coin's open position (the exchange no longer lists the coin): returned, its row left in the database as saved. */
  release(symbol: string): OpenPosition | undefined {
    const position = this.open.get(symbol);
    this.open.delete(symbol);
    return position;
  }

  /** Orders whose outcome is not settled yet (oldest first per coin). */
  unsettledOrders(): LedgerOrder[] {
    return [...this.unsettled.values()].flat();
  }

  private track(order: LedgerOrder): void {
    const orders = (this.unsettled.get(order.symbol) ?? []).filter((o) => o.id !== order.id);
    orders.push(order);
    this.unsettled.set(order.symbol, orders);
  }

  private untrack(order: Pick<LedgerOrder, "id" | "symbol">): void {
    const orders = (this.unsettled.get(order.symbol) ?? []).filter((o) => o.id !== order.id);
    if (orders.length > 0) this.unsettled.set(order.symbol, orders);
    else this.unsettled.delete(order.symbol);
  }

  /**
   * Acts on one coin: first settles its unsettled orders (nothing new is sent
   * while one is left); then exits on a stop-loss or take-profit any candle since
   * the last check touched, a SELL signal, or the rest of a partly filled exit;
   * enters on BUY when flat; otherwise holds.
   */
  async manage(symbol: string, decision: Decision, market: CoinMarket, equity: number, events: EventInput[]): Promise<PositionOutcome> {
    if (this.unsettled.has(symbol)) {
      let settledOutcome: PositionOutcome | undefined;
      for (const order of [...(this.unsettled.get(symbol) ?? [])]) {
        const { outcome } = await this.settleOrder(order, events);
        if (outcome.kind !== "none") settledOutcome = outcome;
      }
      // A stop-loss resting on the exchange is a standing order, not one whose fate is unknown.
      const waiting = this.unsettled.get(symbol)?.find((order) => !isRestingStop(order));
      if (waiting) return { kind: "none", reason: `order ${waiting.clientOrderId} is ${waiting.status}; nothing new is sent until it is settled` };
      if (settledOutcome) return settledOutcome;
    }
    const position = this.open.get(symbol);
    if (position) {
      const trigger = this.exitTriggerFor(position, decision, market);
      if (trigger) return this.exit(position, trigger, market.price, events);
      await this.protect(position, events);
      return { kind: "held", position };
    }
    if (decision.action !== "BUY") return { kind: "none" };
    const entry = this.entries.then(() => this.enter(symbol, decision, market.price, equity, events));
    this.entries = entry.catch(() => undefined);
    return entry;
  }

  /** The exit this tick calls for: the rest of a partly filled exit, else a level touched since the last check, else a SELL signal. */
  private exitTriggerFor(position: OpenPosition, decision: Decision, market: CoinMarket): ExitTrigger | undefined {
    const pending = position.metadata.pendingExit;
    if (pending === "STOP_LOSS" || pending === "TAKE_PROFIT" || pending === "SIGNAL" || pending === "MANUAL") return { reason: pending, price: market.price };
    // Candles from the entry on: an earlier one's low or high is a price the position never had.
    const since = Math.max(this.checkedFrom.get(position.symbol) ?? Number.NEGATIVE_INFINITY, position.openedAt.getTime());
    const candles = market.candlesSince(since);
    const newest = candles.at(-1);
    // The newest (forming) candle is checked again next tick: its high and low can still grow.
    if (newest) this.checkedFrom.set(position.symbol, newest.openTime);
    return exitTrigger(position, candles, decision.action, market.price);
  }

  private async enter(symbol: string, decision: Decision, price: number, equity: number, events: EventInput[]): Promise<PositionOutcome> {
    const { rules, exchange, market } = this.deps;
    // A signal is traded once. Its candle stays the last closed one for several ticks, and a
    // position can close within them (stop-loss): any entry made after the signal's candle
    // closed was made on this signal (or a later one).
    const enteredAt = this.lastEntryAt.get(symbol);
    if (enteredAt !== undefined && enteredAt >= decision.candleTime + TIMEFRAME_MS[this.deps.signalTimeframe]) {
      return { kind: "none", reason: "already entered on this signal's candle" };
    }
    const stop = decision.stopLoss;
    if (stop === null || stop >= price) return { kind: "none", reason: "no stop-loss below price" };
    const riskAmount = equity * rules.riskPerTrade;
    const byRisk = riskAmount / (price - stop);
    const byCap = (equity * rules.maxPositionFraction) / price;
    const free = await this.freeCash();
    // Market buys fill at the ask, a little above the last price: keep a margin so the order is affordable.
    const byCash = free / (price * (1 + rules.feeRate) * (1 + CASH_MARGIN));
    const orderRules = await market.orderRules(symbol);
    const amount = orderRules.roundAmount(Math.max(0, Math.min(byRisk, byCap, byCash)));
    const refusal = belowMinimum(orderRules, amount, price, rules.quoteCurrency);
    if (refusal !== undefined) return { kind: "none", reason: refusal };

    const db = await this.deps.db();
    const clientOrderId = entryOrderId(exchange, symbol, decision.candleTime);
    const { order, created } = await recordOrderIntent(db, {
      exchange,
      mode: this.deps.mode,
      symbol,
      side: "buy",
      purpose: "entry",
      clientOrderId,
      positionKey: clientOrderId,
      exitReason: null,
      requestedAmount: amount,
      requestedCost: amount * price,
      referencePrice: price,
      takeProfit: decision.takeProfit,
      stopLoss: stop,
      createdAt: new Date(market.now()),
    });
    // The same decision was ordered before (a restart inside its candle): settle that order, never send another.
    if (!created) return (await this.settleOrder(order, events)).outcome;
    this.track(order);
    return this.sendAndApply(order, { symbol, side: "buy", amount, clientOrderId, price }, events, decisionMetadata(decision));
  }

  /** The stop-loss order resting on the exchange for this position, if any. */
  private restingStop(position: Pick<OpenPosition, "symbol" | "entryOrderId">): LedgerOrder | undefined {
    return this.unsettled.get(position.symbol)?.find((order) => isRestingStop(order) && order.positionKey === position.entryOrderId);
  }

  /**
   * Live, where the exchange takes stop-loss orders: the position's stop rests on
   * the exchange, so it holds while the bot is down or between ticks. Placed once
   * the entry is filled (and again after a restart or a cancel); tracked in the
   * ledger like any order. A refused stop is reported once and watched by the bot.
   */
  private async protect(position: OpenPosition, events: EventInput[]): Promise<void> {
    try {
      await this.placeStop(position, events);
    } catch (error) {
      // The bot still watches the stop; the placement is tried again next tick (a lost answer is settled first).
      if (this.stopFailureReported.has(position.entryOrderId)) return;
      this.stopFailureReported.add(position.entryOrderId);
      events.push({ type: "STOP_LOSS_NOT_PLACED", symbol: position.symbol, level: "warn", payload: { stopLoss: position.stopLoss, error: describeError(error) } });
    }
  }

  private async placeStop(position: OpenPosition, events: EventInput[]): Promise<void> {
    const { broker, exchange, market } = this.deps;
    if (this.deps.mode !== "live" || position.stopLoss === null || position.metadata.pendingExit !== undefined) return;
    if (this.restingStop(position) || this.unprotectable.has(position.entryOrderId) || !(await broker.supportsStopLoss())) return;
    const { symbol } = position;
    const orderRules = await market.orderRules(symbol);
    const amount = orderRules.roundAmount(position.quantity);
    const refusal = belowMinimum(orderRules, amount, position.stopLoss, this.deps.rules.quoteCurrency);
    if (refusal !== undefined) {
      this.unprotectable.add(position.entryOrderId);
      return;
    }
    const db = await this.deps.db();
    const clientOrderId = exitOrderId(exchange, position.entryOrderId, await countExitOrders(db, { exchange, positionKey: position.entryOrderId }));
    const { order } = await recordOrderIntent(db, {
      exchange,
      mode: this.deps.mode,
      symbol,
      side: "sell",
      purpose: "exit",
      type: "stop_loss",
      clientOrderId,
      positionKey: position.entryOrderId,
      exitReason: "STOP_LOSS",
      requestedAmount: amount,
      requestedCost: null,
      referencePrice: position.stopLoss,
      takeProfit: null,
      stopLoss: position.stopLoss,
      createdAt: new Date(market.now()),
    });
    this.track(order);
    let report: OrderReport;
    try {
      report = await broker.placeStopLoss({ symbol, amount, stopPrice: position.stopLoss, limitPrice: position.stopLoss * (1 - STOP_LIMIT_SLIPPAGE), clientOrderId });
    } catch (error) {
      const message = describeError(error);
      if (!(error instanceof OrderRefusedError)) {
        const marked = await markOrder(db, order, { status: "sent", error: message }).catch(() => undefined);
        if (marked) this.track(marked);
        throw error;
      }
      await markOrder(db, order, { status: "rejected", error: message });
      this.untrack(order);
      this.unprotectable.add(position.entryOrderId);
      events.push({ type: "STOP_LOSS_REFUSED", symbol, level: "warn", payload: { clientOrderId, stopLoss: position.stopLoss, error: message } });
      return;
    }
    await this.apply(order, report, events, {});
  }

  /**
   * Takes the position's resting stop-loss off the exchange before it is sold
   * otherwise. The stop may have filled first: what it did is recorded, and the
   * position is then what is left of it (or gone).
   */
  private async withdrawStop(stop: LedgerOrder, events: EventInput[]): Promise<PositionOutcome | undefined> {
    const report = await this.deps.broker.cancelOrder({
      symbol: stop.symbol,
      side: stop.side,
      clientOrderId: stop.clientOrderId,
      exchangeOrderId: stop.exchangeOrderId,
      amount: stop.requestedAmount,
      sentSince: stop.createdAt.getTime(),
    });
    if (report === undefined) {
      await markOrder(await this.deps.db(), stop, { status: "canceled", error: "the exchange never received it" });
      this.untrack(stop);
      return undefined;
    }
    const outcome = await this.apply(stop, report, events, {});
    return outcome.kind === "closed" ? outcome : undefined;
  }

  private async exit(position: OpenPosition, trigger: ExitTrigger, price: number, events: EventInput[]): Promise<PositionOutcome> {
    const stop = this.restingStop(position);
    if (stop) {
      // The exchange's stop is the stop: it sells there, and a tick's look-up records it. Once the
      // price is below its limit it may never fill (a gap): then it is withdrawn and sold at the market.
      const limitHolds = price >= stop.referencePrice * (1 - STOP_LIMIT_SLIPPAGE);
      if (trigger.reason === "STOP_LOSS" && position.metadata.pendingExit === undefined && limitHolds) {
        return { kind: "none", reason: `stop-loss order ${stop.clientOrderId} rests on the exchange at ${stop.referencePrice}` };
      }
      const stopped = await this.withdrawStop(stop, events);
      if (stopped) return stopped;
      const left = this.open.get(position.symbol);
      if (!left) return { kind: "none", reason: "the position was sold by its stop-loss order" };
      position = left;
    }
    const { exchange, market } = this.deps;
    const { symbol } = position;
    const orderRules = await market.orderRules(symbol);
    const amount = orderRules.roundAmount(position.quantity);
    const refusal = belowMinimum(orderRules, amount, trigger.price, this.deps.rules.quoteCurrency);
    if (refusal !== undefined) {
      if (!this.dustReported.has(position.entryOrderId)) {
        this.dustReported.add(position.entryOrderId);
        events.push({ type: "POSITION_UNSELLABLE", symbol, level: "warn", payload: { quantity: position.quantity, reason: refusal, exitReason: trigger.reason } });
      }
      return { kind: "none", reason: `cannot sell ${position.quantity} ${symbol}: ${refusal}; the position is left for the user` };
    }
    const db = await this.deps.db();
    const sequence = await countExitOrders(db, { exchange, positionKey: position.entryOrderId });
    const clientOrderId = exitOrderId(exchange, position.entryOrderId, sequence);
    // A stop or target crossed inside a candle is where a resting order would have filled.
    const triggerPrice = trigger.candleTime !== undefined && trigger.reason !== "SIGNAL" ? trigger.price : undefined;
    const { order, created } = await recordOrderIntent(db, {
      exchange,
      mode: this.deps.mode,
      symbol,
      side: "sell",
      purpose: "exit",
      clientOrderId,
      positionKey: position.entryOrderId,
      exitReason: trigger.reason,
      requestedAmount: amount,
      requestedCost: null,
      referencePrice: triggerPrice ?? price,
      takeProfit: null,
      stopLoss: null,
      createdAt: new Date(market.now()),
    });
    if (!created) return (await this.settleOrder(order, events)).outcome;
    this.track(order);
    const request: OrderRequest = { symbol, side: "sell", amount, clientOrderId, price, ...(triggerPrice === undefined ? {} : { triggerPrice }) };
    return this.sendAndApply(order, request, events, {});
  }

  /**
   * Sends a saved order and records what it did. A refusal is final (rejected);
   * any other failure leaves the order's fate unknown: it is marked sent and
   * settled by looking it up, here on the next tick, never by sending again.
   */
  private async sendAndApply(order: LedgerOrder, request: OrderRequest, events: EventInput[], metadata: JsonObject): Promise<PositionOutcome> {
    const db = await this.deps.db();
    let report: OrderReport;
    try {
      report = await this.send(request);
    } catch (error) {
      const message = describeError(error);
      if (error instanceof OrderRefusedError) {
        await markOrder(db, order, { status: "rejected", error: message });
        this.untrack(order);
        events.push({ type: "ORDER_REJECTED", symbol: order.symbol, level: "warn", payload: { clientOrderId: order.clientOrderId, side: order.side, amount: order.requestedAmount, error: message } });
        return { kind: "none", reason: `order refused: ${message}` };
      }
      const marked = await markOrder(db, order, { status: "sent", error: message }).catch(() => undefined);
      if (marked) this.track(marked);
      throw error;
    }
    return this.apply(order, report, events, metadata);
  }

  /** Records an order's progress: positions and trades follow from its fills. */
  private async apply(order: LedgerOrder, report: OrderReport, events: EventInput[], metadata: JsonObject): Promise<PositionOutcome> {
    const db = await this.deps.db();
    const { exchange } = this.deps;
    if (order.purpose === "entry") {
      const applied = await applyEntryProgress(db, order, report, { ...metadata, clientOrderId: order.clientOrderId });
      this.settled(order, applied.order);
      const { position } = applied;
      if (!position) return { kind: "none", reason: report.status === "open" ? "entry order open, nothing filled yet" : `entry ${report.status}, nothing filled` };
      const opened = !this.open.has(position.symbol);
      this.open.set(position.symbol, position);
      this.noteEntry(position.symbol, report.time.getTime());
      if (opened) {
        events.push({
          type: "POSITION_OPENED",
          symbol: position.symbol,
          time: report.time,
          eventKey: `${exchange}:open:${order.clientOrderId}`,
          payload: { side: "LONG", quantity: position.quantity, price: position.entryPrice, fee: report.feeQuote, fees: report.fees.map((fee) => ({ ...fee })), takeProfit: position.takeProfit, stopLoss: position.stopLoss, orderId: order.clientOrderId },
        });
      }
      if (isFinalOrderStatus(report.status)) await this.protect(position, events);
      return opened ? { kind: "opened", position } : { kind: "held", position };
    }
    const rules = await this.deps.market.orderRules(order.symbol);
    const applied = await applyExitProgress(db, order, report, { dust: rules.minAmount ?? 0 });
    this.settled(order, applied.order);
    if (applied.position) this.open.set(applied.position.symbol, applied.position);
    if (applied.closed) {
      this.open.delete(order.symbol);
      this.checkedFrom.delete(order.symbol);
    }
    const { trade } = applied;
    if (!trade) return { kind: "none", reason: report.status === "open" || report.status === "partially_filled" ? "exit order still filling" : `exit ${report.status}, nothing sold` };
    events.push({
      type: "POSITION_CLOSED",
      symbol: order.symbol,
      time: trade.exitTime,
      eventKey: `${exchange}:close:${trade.exitOrderId}`,
      payload: {
        reason: trade.exitReason,
        entryPrice: trade.entryPrice,
        exitPrice: trade.exitPrice,
        quantity: trade.quantity,
        realizedPnl: trade.realizedPnl,
        fees: trade.fees,
        feesPaid: report.fees.map((fee) => ({ ...fee })),
        remaining: applied.position?.quantity ?? 0,
      },
    });
    return { kind: "closed", trade, remaining: applied.position };
  }

  /** Forgets an order once the ledger has it final; keeps its newest state while it is not. */
  private settled(order: LedgerOrder, updated: LedgerOrder | undefined): void {
    if (updated === undefined || isFinalOrderStatus(updated.status)) this.untrack(order);
    else this.track(updated);
  }

  /**
   * Asks the exchange what became of an order the ledger has not settled, and
   * records it. One it never received is canceled (nothing was placed); one it
   * cannot be asked about is marked unknown and reported once, and keeps its
   * coin from trading. Sends nothing.
   */
  async settleOrder(order: LedgerOrder, events: EventInput[]): Promise<{ settled: SettledOrder; outcome: PositionOutcome }> {
    const db = await this.deps.db();
    let report: OrderReport | undefined;
    try {
      report = await this.deps.broker.lookupOrder({
        symbol: order.symbol,
        side: order.side,
        clientOrderId: order.clientOrderId,
        exchangeOrderId: order.exchangeOrderId,
        amount: order.requestedAmount,
        sentSince: order.createdAt.getTime(),
      });
    } catch (error) {
      const message = describeError(error);
      if (!(error instanceof OrderLookupUnavailableError)) throw error;
      if (order.status !== "unknown") {
        const marked = await markOrder(db, order, { status: "unknown", error: message });
        if (marked) this.track(marked);
        events.push({ type: "ORDER_UNKNOWN", symbol: order.symbol, level: "warn", payload: { clientOrderId: order.clientOrderId, side: order.side, amount: order.requestedAmount, error: message } });
      }
      return { settled: { order, outcome: "unknown", error: message }, outcome: { kind: "none", reason: message } };
    }
    if (report === undefined) {
      const marked = await markOrder(db, order, { status: "canceled", error: "the exchange never received it" });
      this.untrack(order);
      return { settled: { order: marked ?? order, outcome: "final" }, outcome: { kind: "none", reason: "the order never reached the exchange" } };
    }
    const outcome = await this.apply(order, report, events, { settledAfterRestart: true });
    const still = this.unsettled.get(order.symbol)?.find((o) => o.id === order.id);
    return { settled: { order: still ?? order, outcome: still ? "pending" : "final" }, outcome };
  }

  /** Settles every unsettled order (at start, before the first tick). */
  async settleAll(events: EventInput[]): Promise<SettledOrder[]> {
    const results: SettledOrder[] = [];
    for (const order of this.unsettledOrders()) {
      try {
        results.push((await this.settleOrder(order, events)).settled);
      } catch (error) {
        results.push({ order, outcome: "pending", error: describeError(error) });
      }
    }
    return results;
  }
}

/** Why an order of `amount` at `price` cannot be placed on this market, or undefined. */
function belowMinimum(rules: { minAmount: number | undefined; minCost: number | undefined }, amount: number, price: number, quote: string): string | undefined {
  if (!(amount > 0)) return "amount rounds to nothing at the market's precision";
  if (rules.minAmount !== undefined && amount < rules.minAmount) return `amount ${amount} below the market's minimum of ${rules.minAmount}`;
  if (rules.minCost !== undefined && amount * price < rules.minCost) return `order value below the market's minimum of ${rules.minCost} ${quote}`;
  return undefined;
}

function decisionMetadata(decision: Decision): JsonObject {
  return { decision: { action: decision.action, price: decision.price, candleTime: decision.candleTime, reasons: decision.reasons, indicators: { ...decision.indicators } } };
}
