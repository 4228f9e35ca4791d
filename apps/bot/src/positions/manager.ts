import {
  closePositionWithTrade,
  deletePosition,
  savePosition,
  type Database,
  type EventInput,
  type ExitReason,
  type JsonObject,
  type OpenPosition,
  type TradeRecord,
} from "@candlekeep/db";
import { TIMEFRAME_MS, describeError, type Timeframe } from "@candlekeep/core";
import { balanceOf } from "../exchange/balance";
import type { Broker, Fill, OrderRequest } from "../exchange/types";
import type { Decision } from "../strategy/types";
import { exitTrigger } from "./exit-trigger";

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
  | { kind: "closed"; trade: TradeRecord }
  | { kind: "held"; position: OpenPosition };

/** What start-up did with an entry a crash interrupted (see settleInterruptedEntries). */
export interface InterruptedEntry {
  symbol: string;
  clientOrderId: string;
  /** filled: the exchange had the order, now a position; removed: it never got it; kept: it could not be asked. */
  outcome: "filled" | "removed" | "kept";
  error?: string;
}

/** Share of free cash kept back for spread and slippage when sizing a buy with all of it. */
const CASH_MARGIN = 0.01;

/** Orders below this value are not worth their fees. */
const MIN_ORDER_VALUE = 10;

/**
 * Entries, reconciliation and exits for open positions (long-only spot).
 * Database writes here are critical: a failure raises, failing this coin's tick.
 * Audit events are returned for the caller to record in its per-tick batch.
 */
export class PositionManager {
  private readonly open = new Map<string, OpenPosition>();
  /** Exchange time of each coin's latest entry: one entry per signal (see enter). */
  private readonly lastEntryAt = new Map<string, number>();
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
      exchange: string;
      rules: TradingRules;
      /** Timeframe of the candles the decisions are made on. */
      signalTimeframe: Timeframe;
    },
  ) {}

  /** Resumes from the database: open positions, and when each coin's latest closed trade was entered. */
  restore(positions: readonly OpenPosition[], latestTradeEntries: ReadonlyMap<string, Date> = new Map()): void {
    for (const [symbol, enteredAt] of latestTradeEntries) this.noteEntry(symbol, enteredAt.getTime());
    for (const position of positions) {
      this.open.set(position.symbol, position);
      this.noteEntry(position.symbol, position.openedAt.getTime());
    }
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
  private async order(request: OrderRequest): Promise<Fill> {
    this.forgetFreeCash();
    try {
      return await this.deps.broker.marketOrder(request);
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

  /**
   * Acts on one coin: exits on stop-loss, take-profit or a SELL signal; enters
   * on BUY when flat; otherwise holds. `price` is the coin's current price.
   */
  async manage(symbol: string, decision: Decision, price: number, equity: number, events: EventInput[]): Promise<PositionOutcome> {
    const position = this.open.get(symbol);
    if (position) {
      const exitReason = exitReasonFor(position, decision, price);
      if (exitReason) return this.exit(position, exitReason, events);
      return { kind: "held", position };
    }
    if (decision.action !== "BUY") return { kind: "none" };
    const entry = this.entries.then(() => this.enter(symbol, decision, price, equity, events));
    this.entries = entry.catch(() => undefined);
    return entry;
  }

  private async enter(symbol: string, decision: Decision, price: number, equity: number, events: EventInput[]): Promise<PositionOutcome> {
    const { rules, exchange } = this.deps;
    // A signal is traded once. Its candle stays the last closed one for several ticks, and a
    // position can close within them (stop-loss): entering again would reuse the client order
    // id below, and the broker would answer with the first fill, a position never bought.
    // Any entry made after the signal's candle closed was made on this signal (or a later one).
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
    const amount = Math.min(byRisk, byCap, byCash);
    if (!(amount * price >= MIN_ORDER_VALUE)) return { kind: "none", reason: `order value below ${MIN_ORDER_VALUE} ${rules.quoteCurrency}` };

    const db = await this.deps.db();
    // The client order id is derived from the decision: replaying the same
    // decision after a crash cannot place a second order.
    const clientOrderId = `ck-${symbol}-${decision.candleTime}-buy`;
    // The intent is saved first: a crash from here on is settled at the next start.
    const intent = await savePosition(db, {
      exchange,
      symbol,
      side: "LONG",
      quantity: amount,
      entryPrice: price,
      takeProfit: decision.takeProfit,
      stopLoss: stop,
      entryOrderId: clientOrderId,
      openedAt: new Date(decision.candleTime),
      metadata: { status: "ordering", decision: decisionMetadata(decision) },
    });
    this.open.set(symbol, intent);
    let fill: Fill;
    try {
      fill = await this.order({ symbol, side: "buy", amount, clientOrderId });
    } catch (error) {
      await deletePosition(db, { exchange, symbol });
      this.open.delete(symbol);
      throw error;
    }
    return { kind: "opened", position: await this.entryFilled(db, intent, fill, events) };
  }

  /** Reconciles a saved intent with what the exchange actually filled. */
  private async entryFilled(db: Database, intent: OpenPosition, fill: Fill, events: EventInput[]): Promise<OpenPosition> {
    const position = await savePosition(db, {
      ...intent,
      quantity: fill.amount,
      entryPrice: fill.price,
      entryOrderId: fill.orderId,
      openedAt: new Date(fill.timestamp),
      metadata: { ...intent.metadata, status: "filled", entryFee: fill.fee, clientOrderId: intent.entryOrderId },
    });
    this.open.set(position.symbol, position);
    this.noteEntry(position.symbol, fill.timestamp);
    events.push({
      type: "POSITION_OPENED",
      symbol: position.symbol,
      time: new Date(fill.timestamp),
      eventKey: `${this.deps.exchange}:open:${fill.orderId}`,
      payload: { side: "LONG", quantity: fill.amount, price: fill.price, fee: fill.fee, takeProfit: position.takeProfit, stopLoss: position.stopLoss, orderId: fill.orderId },
    });
    return position;
  }

  /**
   * Settles the entries a crash interrupted: saved as "ordering", their order may
   * or may not have reached the exchange. Each becomes the position the exchange
   * filled, or is removed when the exchange never got the order; nothing is sent.
   * One the exchange cannot be asked about now is kept as saved (and reported).
   */
  async settleInterruptedEntries(events: EventInput[]): Promise<InterruptedEntry[]> {
    const settled: InterruptedEntry[] = [];
    for (const intent of [...this.open.values()].filter((p) => p.metadata.status === "ordering")) {
      const request = { symbol: intent.symbol, side: "buy" as const, amount: intent.quantity, clientOrderId: intent.entryOrderId };
      try {
        const fill = await this.deps.broker.findOrder(request, intent.openedAt.getTime());
        const db = await this.deps.db();
        if (fill) {
          await this.entryFilled(db, intent, fill, events);
          settled.push({ symbol: intent.symbol, clientOrderId: intent.entryOrderId, outcome: "filled" });
        } else {
          await deletePosition(db, { exchange: this.deps.exchange, symbol: intent.symbol });
          this.open.delete(intent.symbol);
          settled.push({ symbol: intent.symbol, clientOrderId: intent.entryOrderId, outcome: "removed" });
        }
      } catch (error) {
        settled.push({ symbol: intent.symbol, clientOrderId: intent.entryOrderId, outcome: "kept", error: describeError(error) });
      }
    }
    return settled;
  }

  private async exit(position: OpenPosition, reason: ExitReason, events: EventInput[]): Promise<PositionOutcome> {
    const { exchange } = this.deps;
    const fill = await this.order({
      symbol: position.symbol,
      side: "sell",
      amount: position.quantity,
      clientOrderId: `ck-${position.symbol}-${position.entryOrderId}-sell`,
    });
    const entryFee = typeof position.metadata.entryFee === "number" ? position.metadata.entryFee : 0;
    const trade = await closePositionWithTrade(await this.deps.db(), {
      exchange,
      symbol: position.symbol,
      exitPrice: fill.price,
      exitTime: new Date(fill.timestamp),
      exitReason: reason,
      exitOrderId: fill.orderId,
      fees: entryFee + fill.fee,
    });
    this.open.delete(position.symbol);
    events.push({
      type: "POSITION_CLOSED",
      symbol: position.symbol,
      time: trade.exitTime,
      eventKey: `${exchange}:close:${trade.exitOrderId}`,
      payload: { reason, entryPrice: trade.entryPrice, exitPrice: trade.exitPrice, quantity: trade.quantity, realizedPnl: trade.realizedPnl, fees: trade.fees },
    });
    return { kind: "closed", trade };
  }
}

/** The exit the last price alone triggers (no candles: see exitTrigger). */
export function exitReasonFor(position: Pick<OpenPosition, "stopLoss" | "takeProfit">, decision: Pick<Decision, "action">, price: number): ExitReason | undefined {
  return exitTrigger(position, [], decision.action, price)?.reason;
}

function decisionMetadata(decision: Decision): JsonObject {
  return { action: decision.action, price: decision.price, candleTime: decision.candleTime, reasons: decision.reasons, indicators: { ...decision.indicators } };
}
