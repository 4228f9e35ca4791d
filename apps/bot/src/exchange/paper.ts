import { randomBytes } from "node:crypto";
import { OrderRefusedError, type Balance, type Broker, type MarketData, type OrderQuery, type OrderReport, type OrderRequest, type StopLossRequest } from "./types";

/** 0.1%, a common spot taker fee. */
export const DEFAULT_PAPER_FEE_RATE = 0.001;

/** Fills remembered for idempotent retries and look-ups; older ones are forgotten first. */
const REMEMBERED_FILLS = 10_000;

/** Float dust tolerated when an order uses exactly the whole balance. */
const DUST = 1e-9;

export interface PaperBrokerOptions {
  market: MarketData;
  /** The account currency; only SYMBOL/<quoteCurrency> markets can be traded. */
  quoteCurrency: string;
  startingBalance: number;
  feeRate?: number;
}

/** What restore() starts from (the order ledger's totals): cash, and base amounts held per symbol. */
export interface PaperAccountState {
  quote: { free: number; total: number };
  holdings: Readonly<Record<string, number>>;
}

/** A paper order that cannot be filled (not enough money or coins, wrong market, bad amount). */
export class PaperOrderRejectedError extends OrderRefusedError {
  override readonly name = "PaperOrderRejectedError";
}

/**
 * Simulated fills at the market's current prices: buys at the ask, sells at
 * the bid (the last price when the exchange has no book), with a fee on the
 * quote amount; a stop or target crossed inside a candle fills at its trigger
 * price. Balances live in memory; restore() sets them from the order ledger
 * after a restart, so the ledger is this paper exchange's record: an order it
 * has no fill of in memory or in the ledger never happened.
 */
export class PaperBroker implements Broker {
  readonly mode = "paper";
  private readonly market: MarketData;
  private readonly quoteCurrency: string;
  private readonly feeRate: number;
  private quoteFree: number;
  private quoteTotal: number;
  private readonly holdings = new Map<string, number>();
  private readonly fills = new Map<string, Filled>();
  private readonly inFlight = new Map<string, Promise<Filled>>();
  private nextOrderNumber = 1;
  /** Order ids stay unique across restarts, so one never names two orders. */
  private readonly session = randomBytes(4).toString("hex");

  constructor(options: PaperBrokerOptions) {
    this.market = options.market;
    this.quoteCurrency = options.quoteCurrency;
    this.feeRate = options.feeRate ?? DEFAULT_PAPER_FEE_RATE;
    if (!(this.feeRate >= 0 && this.feeRate < 1)) throw new RangeError(`paper fee rate must be in [0, 1) (got ${this.feeRate})`);
    if (!(options.startingBalance >= 0)) throw new RangeError(`paper starting balance must be ≥ 0 (got ${options.startingBalance})`);
    this.quoteFree = options.startingBalance;
    this.quoteTotal = options.startingBalance;
  }

  /** Replaces the account with persisted state (cash snapshot and open positions). */
  restore(state: PaperAccountState): void {
    this.quoteFree = state.quote.free;
    this.quoteTotal = state.quote.total;
    this.holdings.clear();
    for (const [symbol, amount] of Object.entries(state.holdings)) {
      if (amount > 0) this.holdings.set(symbol, amount);
    }
  }

  async balances(): Promise<Balance[]> {
    const out: Balance[] = [{ currency: this.quoteCurrency, free: this.quoteFree, used: Math.max(0, this.quoteTotal - this.quoteFree), total: this.quoteTotal }];
    const byCurrency = new Map<string, number>();
    for (const [symbol, amount] of this.holdings) {
      const base = symbol.split("/")[0] ?? symbol;
      byCurrency.set(base, (byCurrency.get(base) ?? 0) + amount);
    }
    for (const [currency, amount] of byCurrency) out.push({ currency, free: amount, used: 0, total: amount });
    return out;
  }

  /** A repeated clientOrderId returns the first fill instead of trading again (also while that order is still running). */
  async placeOrder(request: OrderRequest): Promise<OrderReport> {
    // Everything up to the first await runs synchronously, so a concurrent repeat sees the in-flight entry.
    const previous = this.fills.get(request.clientOrderId);
    if (previous) return sameOrder(previous, request).report;
    const running = this.inFlight.get(request.clientOrderId);
    if (running) return sameOrder(await running, request).report;
    const order = this.fill(request).finally(() => this.inFlight.delete(request.clientOrderId));
    this.inFlight.set(request.clientOrderId, order);
    return (await order).report;
  }

  /** A fill of this process; after a restart the ledger holds every fill, so an order not found here never happened. */
  async lookupOrder(query: OrderQuery): Promise<OrderReport | undefined> {
    const previous = this.fills.get(query.clientOrderId) ?? (await this.inFlight.get(query.clientOrderId)?.catch(() => undefined));
    return previous && sameOrder(previous, query).report;
  }

  /** The paper account's stops are the bot's: it checks every candle's low against them. */
  async supportsStopLoss(): Promise<boolean> {
    return false;
  }

  async placeStopLoss(request: StopLossRequest): Promise<OrderReport> {
    throw new PaperOrderRejectedError(`paper stop-loss of ${request.symbol}: the paper account has no resting orders; the bot watches the stop`);
  }

  /** Paper orders fill at once: there is nothing left to cancel, only what it did. */
  cancelOrder(query: OrderQuery): Promise<OrderReport | undefined> {
    return this.lookupOrder(query);
  }

  private async fill(request: OrderRequest): Promise<Filled> {
    const { symbol, side, amount } = request;
    if (!(Number.isFinite(amount) && amount > 0)) throw new PaperOrderRejectedError(`paper ${side} ${symbol}: amount must be a positive number (got ${amount})`);
    const [base, quote] = symbol.split("/");
    if (!base || quote !== this.quoteCurrency) {
      throw new PaperOrderRejectedError(`paper ${side} ${symbol}: the paper account holds ${this.quoteCurrency}, so only BASE/${this.quoteCurrency} markets can be traded`);
    }
    const ticker = await this.market.fetchTicker(symbol);
    const price = request.triggerPrice ?? (side === "buy" ? ticker.ask : ticker.bid) ?? ticker.last;
    if (!(Number.isFinite(price) && price > 0)) throw new PaperOrderRejectedError(`paper ${side} ${symbol}: no usable market price (got ${price})`);
    const value = amount * price;
    const fee = value * this.feeRate;

    // Balances are checked and changed with no await in between, so concurrent orders cannot overspend.
    if (side === "buy") {
      const cost = value + fee;
      if (cost > this.quoteFree * (1 + DUST)) {
        throw new PaperOrderRejectedError(
          `paper buy of ${amount} ${symbol} at ${price} costs ${formatAmount(cost)} ${quote} with fees, but only ${formatAmount(this.quoteFree)} ${quote} is free`,
        );
      }
      this.quoteFree = Math.max(0, this.quoteFree - cost);
      this.quoteTotal = Math.max(0, this.quoteTotal - cost);
      this.holdings.set(symbol, (this.holdings.get(symbol) ?? 0) + amount);
    } else {
      const held = this.holdings.get(symbol) ?? 0;
      if (amount > held * (1 + DUST)) throw new PaperOrderRejectedError(`paper sell of ${amount} ${symbol}: only ${held} ${base} is held`);
      const left = held - amount;
      if (left > held * DUST) this.holdings.set(symbol, left);
      else this.holdings.delete(symbol);
      this.quoteFree += value - fee;
      this.quoteTotal += value - fee;
    }

    const report: OrderReport = {
      status: "filled",
      exchangeOrderId: `paper-${this.session}-${this.nextOrderNumber++}`,
      filledAmount: amount,
      averagePrice: price,
      filledCost: value,
      feeQuote: fee,
      feeBase: 0,
      fees: [{ currency: quote, cost: fee, quoteValue: fee }],
      error: null,
      time: new Date(this.market.now()),
    };
    const filled = { symbol, side, report };
    this.remember(request.clientOrderId, filled);
    return filled;
  }

  private remember(clientOrderId: string, fill: Filled): void {
    this.fills.set(clientOrderId, fill);
    for (const oldest of this.fills.keys()) {
      if (this.fills.size <= REMEMBERED_FILLS) break;
      this.fills.delete(oldest);
    }
  }
}

/** A fill and the order it answered. */
interface Filled {
  symbol: string;
  side: OrderRequest["side"];
  report: OrderReport;
}

/** The remembered fill, unless the id is being reused for a different order (a caller bug worth failing loudly on). */
function sameOrder(fill: Filled, request: Pick<OrderRequest, "symbol" | "side" | "clientOrderId">): Filled {
  if (fill.symbol !== request.symbol || fill.side !== request.side) {
    throw new PaperOrderRejectedError(`clientOrderId ${request.clientOrderId} was already used for a ${fill.side} of ${fill.symbol}; it cannot also be a ${request.side} of ${request.symbol}`);
  }
  return fill;
}

function formatAmount(value: number): string {
  return String(Number(value.toPrecision(8)));
}
