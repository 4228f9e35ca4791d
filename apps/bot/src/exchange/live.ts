import { setTimeout as sleep } from "node:timers/promises";
import { UserFacingError, isCcxtError, scrubSecrets, type Logger } from "@candlekeep/core";
import type { Balances, Exchange, Order, Trade } from "ccxt";
import { isFinalOrderStatus, type OrderFee } from "@candlekeep/db";
import { clientIdLookup, clientOrderIdParams, fetchOrderParams, isOurClientOrderId, marketBuyTakesCost } from "./order-params";
import { DEFAULT_RETRY_DELAYS_MS, callWithRetry, exchangeCallError, isTransientExchangeError, type RetryOptions } from "./retry";
import { OrderLookupUnavailableError, OrderRefusedError, type Balance, type Broker, type ExchangeOrderStatus, type OrderQuery, type OrderReport, type OrderRequest, type StopLossRequest } from "./types";

/** Live trading was asked for without credentials. */
export class MissingApiKeysError extends UserFacingError {
  override readonly name = "MissingApiKeysError";
}

export interface LiveBrokerOptions {
  /** The ccxt exchange, with the keys: the one the bot's market data uses too (one rate limiter, markets loaded once). */
  exchange: Exchange;
  logger: Logger;
  /** Waits between attempts after a transient failure; its length is the number of retries. */
  retryDelaysMs?: readonly number[];
  sleep?: (ms: number) => Promise<void>;
  /** Our clock, for bounding the search for an order after a lost response. */
  now?: () => number;
}

/** How far back, before sending, a lost order is searched for (exchange clocks drift a little). */
const ORDER_SEARCH_SLACK_MS = 60_000;

/** Reports remembered for idempotent retries within this process. */
const REMEMBERED_REPORTS = 10_000;

/** ccxt errors that mean the exchange refused the order: nothing was placed. */
const REFUSAL_ERRORS = ["InvalidOrder", "InsufficientFunds", "BadSymbol", "AuthenticationError", "PermissionDenied", "AccountSuspended", "MarketClosed"];

/** ccxt errors that mean this way of asking about an order does not work here (try the next). */
const UNSUPPORTED_LOOKUP_ERRORS = ["NotSupported", "ArgumentsRequired", "OrderNotFound", "BadRequest"];

/**
 * Real market orders through ccxt.
 *
 * An order is never sent twice blindly: when sending fails with a network
 * error the order may still have reached the exchange, so the broker first
 * looks for it by clientOrderId among recent orders and only resends when it
 * is not there. An order is looked up with whatever the exchange offers
 * (fetchOrder, fetchOpenOrder/fetchClosedOrder, order lists, the account's
 * trades), so an answer that carries only an id (bybit) is completed, not lost.
 */
export class LiveBroker implements Broker {
  readonly mode = "live";
  private readonly logger: Logger;
  private readonly delaysMs: readonly number[];
  private readonly wait: (ms: number) => Promise<void>;
  private readonly clock: () => number;
  private readonly secrets: readonly string[];
  private readonly exchangeId: string;
  private readonly ccxt: Exchange;
  private readonly reports = new Map<string, OrderReport>();
  private readonly inFlight = new Map<string, Promise<OrderReport>>();

  constructor(options: LiveBrokerOptions) {
    this.logger = options.logger;
    this.delaysMs = options.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS;
    this.wait = options.sleep ?? sleep;
    this.clock = options.now ?? Date.now;
    const { exchange } = options;
    this.ccxt = exchange;
    this.exchangeId = exchange.id;
    this.secrets = [exchange.apiKey, exchange.secret].filter((value): value is string => typeof value === "string" && value !== "");
  }

  async balances(): Promise<Balance[]> {
    const exchange = this.ccxt;
    const balances = await callWithRetry(this.retryOptions(), { operation: "fetchBalance" }, () => exchange.fetchBalance());
    return toBalances(balances);
  }

  /** A repeated clientOrderId returns the first answer instead of trading again (also while that order is still running). */
  async placeOrder(request: OrderRequest): Promise<OrderReport> {
    // Everything up to the first await runs synchronously, so a concurrent repeat sees the in-flight entry.
    const previous = this.reports.get(request.clientOrderId);
    const running = this.inFlight.get(request.clientOrderId);
    if (running) return running;
    // An order already placed is only ever looked up again: a second createOrder could trade twice.
    const order = (previous ? this.refresh(request, previous) : this.place(request)).finally(() => this.inFlight.delete(request.clientOrderId));
    this.inFlight.set(request.clientOrderId, order);
    return order;
  }

  async lookupOrder(query: OrderQuery): Promise<OrderReport | undefined> {
    const previous = this.reports.get(query.clientOrderId);
    if (previous && isFinalOrderStatus(previous.status)) return previous;
    const exchange = this.ccxt;
    const order = await this.findOrder(exchange, { ...query, exchangeOrderId: query.exchangeOrderId ?? previous?.exchangeOrderId ?? null });
    if (order === undefined) return undefined;
    return this.remember(query.clientOrderId, await this.reportOf(exchange, order, query));
  }

  async supportsStopLoss(): Promise<boolean> {
    return this.ccxt.has.createStopLossOrder === true;
  }

  /** A stop-limit sell resting on the exchange (ccxt's createStopLossOrder). Sent once: a lost answer is settled by looking it up. */
  async placeStopLoss(request: StopLossRequest): Promise<OrderReport> {
    const { symbol, amount, clientOrderId } = request;
    const exchange = this.ccxt;
    const what = { operation: "createStopLossOrder", symbol, detail: `clientOrderId ${clientOrderId}` };
    let order: Order;
    try {
      // Prices to the market's precision, or the exchange refuses the order.
      const stopPrice = Number(exchange.priceToPrecision(symbol, request.stopPrice));
      const limitPrice = Number(exchange.priceToPrecision(symbol, request.limitPrice));
      order = await exchange.createStopLossOrder(symbol, "limit", "sell", amount, limitPrice, stopPrice, clientOrderIdParams(exchange, clientOrderId));
    } catch (error) {
      const failure = exchangeCallError(this.retryOptions(), what, error, 1, isTransientExchangeError(error));
      if (REFUSAL_ERRORS.some((name) => isCcxtError(error, name))) throw new OrderRefusedError(failure.message);
      throw failure;
    }
    return this.remember(clientOrderId, await this.reportOf(exchange, order, { symbol, side: "sell", amount }));
  }

  /**
   * Cancels the order, then reads what it had done: it may have filled, wholly or
   * in part, before the cancel arrived. An order the exchange no longer knows as
   * open (already filled or gone) is only looked up.
   */
  async cancelOrder(query: OrderQuery): Promise<OrderReport | undefined> {
    const exchange = this.ccxt;
    const known = query.exchangeOrderId ?? this.reports.get(query.clientOrderId)?.exchangeOrderId ?? null;
    const found = known === null ? await this.findOrder(exchange, query) : undefined;
    const id = known ?? found?.id;
    if (id === undefined) return undefined;
    try {
      await callWithRetry(this.retryOptions(), { operation: "cancelOrder", symbol: query.symbol, detail: `order ${id}` }, () => exchange.cancelOrder(id, query.symbol));
    } catch (error) {
      if (!isCcxtError(error, "OrderNotFound") && !(error instanceof Error && error.message.includes("OrderNotFound:"))) throw error;
    }
    this.reports.delete(query.clientOrderId);
    const order = await this.findOrder(exchange, { ...query, exchangeOrderId: id });
    return order && this.remember(query.clientOrderId, await this.reportOf(exchange, order, query));
  }

  private async refresh(request: OrderRequest, previous: OrderReport): Promise<OrderReport> {
    if (isFinalOrderStatus(previous.status)) return previous;
    const exchange = this.ccxt;
    const order = await this.findOrder(exchange, { ...request, exchangeOrderId: previous.exchangeOrderId, sentSince: previous.time.getTime() });
    return order ? this.remember(request.clientOrderId, await this.reportOf(exchange, order, request)) : previous;
  }

  private async place(request: OrderRequest): Promise<OrderReport> {
    const exchange = this.ccxt;
    const sent = await this.send(exchange, request);
    // Some exchanges answer before the order has filled, or with its id only: ask for its state.
    const order = isSettledAnswer(sent) ? sent : ((await this.findOrder(exchange, { ...request, exchangeOrderId: sent.id ?? null, sentSince: this.clock() }).catch(() => undefined)) ?? sent);
    return this.remember(request.clientOrderId, await this.reportOf(exchange, order, request));
  }

  /**
   * Sends the order; after a network failure looks for it among recent orders
   * and resends only when it is not there, up to the configured retries. A
   * refusal by the exchange becomes an OrderRefusedError.
   */
  private async send(exchange: Exchange, request: OrderRequest): Promise<Order> {
    const { symbol, side, clientOrderId } = request;
    const what = { operation: `createOrder market ${side}`, symbol, detail: `clientOrderId ${clientOrderId}` };
    const sentAt = this.clock();
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await createMarketOrder(exchange, request);
      } catch (error) {
        if (REFUSAL_ERRORS.some((name) => isCcxtError(error, name))) {
          throw new OrderRefusedError(exchangeCallError(this.retryOptions(), what, error, attempt, false).message);
        }
        if (!isTransientExchangeError(error)) throw exchangeCallError(this.retryOptions(), what, error, attempt, false);
        this.logger.warn("sending an order failed; checking whether it reached the exchange", { exchange: this.exchangeId, symbol, clientOrderId, attempt });
        await this.wait(this.delaysMs[attempt - 1] ?? this.delaysMs.at(-1) ?? 0);
        const arrived = await this.findOrder(exchange, { ...request, exchangeOrderId: null, sentSince: sentAt });
        if (arrived) return arrived;
        if (attempt > this.delaysMs.length) {
          throw exchangeCallError(this.retryOptions(), { ...what, detail: `${what.detail} (not found among recent orders)` }, error, attempt, true);
        }
      }
    }
  }

  /**
   * The order, found with the first way the exchange offers that answers: by its
   * id, by our client id, among its open and closed orders, or from the account's
   * trades. Undefined when every way was asked and none knows it (it never
   * arrived); OrderLookupUnavailableError when the exchange offers no way.
   */
  private async findOrder(exchange: Exchange, query: OrderQuery): Promise<Order | undefined> {
    const { symbol, clientOrderId, exchangeOrderId } = query;
    const since = query.sentSince - ORDER_SEARCH_SLACK_MS;
    const matches = (order: Order) => isOurClientOrderId(exchange, order.clientOrderId, clientOrderId) || (exchangeOrderId !== null && order.id === exchangeOrderId);
    const has = exchange.has;
    const ways: { name: string; run: () => Promise<Order | undefined> }[] = [];
    if (exchangeOrderId !== null && has.fetchOrder) ways.push({ name: "fetchOrder", run: () => exchange.fetchOrder(exchangeOrderId, symbol, fetchOrderParams(exchange)) });
    if (exchangeOrderId !== null && has.fetchClosedOrder) ways.push({ name: "fetchClosedOrder", run: () => exchange.fetchClosedOrder(exchangeOrderId, symbol) });
    if (exchangeOrderId !== null && has.fetchOpenOrder) ways.push({ name: "fetchOpenOrder", run: () => exchange.fetchOpenOrder(exchangeOrderId, symbol) });
    // By our client id where the exchange answers for it: a lost answer leaves no exchange id, and lists only reach so far back.
    const byClientId = clientIdLookup(exchange, clientOrderId);
    if (byClientId.way === "fetchOrder" && has.fetchOrder) ways.push({ name: "fetchOrder by client order id", run: () => exchange.fetchOrder("", symbol, byClientId.params) });
    const listParams = byClientId.way === "lists" ? byClientId.params : {};
    // Every recent order in one list where the exchange has one, else its final and its open ones.
    if (has.fetchOrders) ways.push({ name: "fetchOrders", run: async () => (await exchange.fetchOrders(symbol, since, undefined, listParams)).find(matches) });
    else {
      // bybit's closed orders are the Filled ones only: an IOC order cancelled after a partial fill is listed with the cancelled ones.
      if (has.fetchCanceledAndClosedOrders) ways.push({ name: "fetchCanceledAndClosedOrders", run: async () => (await exchange.fetchCanceledAndClosedOrders(symbol, since, undefined, listParams)).find(matches) });
      else if (has.fetchClosedOrders) ways.push({ name: "fetchClosedOrders", run: async () => (await exchange.fetchClosedOrders(symbol, since, undefined, listParams)).find(matches) });
      if (has.fetchOpenOrders) ways.push({ name: "fetchOpenOrders", run: async () => (await exchange.fetchOpenOrders(symbol, since, undefined, listParams)).find(matches) });
    }
    if (exchangeOrderId !== null && has.fetchMyTrades) {
      ways.push({ name: "fetchMyTrades", run: async () => orderFromTrades(exchangeOrderId, query, (await exchange.fetchMyTrades(symbol, since)).filter((trade) => trade.order === exchangeOrderId)) });
    }
    let answered = false;
    for (const way of ways) {
      try {
        const order = await callWithRetry(this.retryOptions(), { operation: way.name, symbol, detail: `looking for ${clientOrderId}` }, way.run);
        answered = true;
        if (order && (order.id !== undefined || order.clientOrderId !== undefined)) return order;
      } catch (error) {
        const cause = error instanceof Error && "cause" in error ? error.cause : undefined;
        const unsupported = UNSUPPORTED_LOOKUP_ERRORS.some((name) => isCcxtError(error, name) || isCcxtError(cause, name) || (error instanceof Error && error.message.includes(`${name}:`)));
        if (!unsupported) throw error;
        if (error instanceof Error && error.message.includes("OrderNotFound:")) answered = true;
      }
    }
    if (!answered) {
      throw new OrderLookupUnavailableError(`${this.exchangeId} offers no way to look up order ${clientOrderId}${exchangeOrderId ? ` (id ${exchangeOrderId})` : ""} on ${symbol}; check the account on the exchange`);
    }
    return undefined;
  }

  /** A ccxt order → a report, every fee valued in the quote currency (a third currency at its ticker's price). */
  private async reportOf(exchange: Exchange, order: Order, request: Pick<OrderRequest, "symbol" | "side" | "amount">): Promise<OrderReport> {
    const { symbol } = request;
    const [base, quoteWithSettle] = symbol.split("/");
    const quote = quoteWithSettle?.split(":")[0];
    const filled = order.filled ?? (order.status === "closed" ? (order.amount ?? request.amount) : 0);
    const averagePrice = filled > 0 ? (order.average ?? (order.cost !== undefined && order.cost > 0 ? order.cost / filled : order.price)) : undefined;
    const fees: OrderFee[] = [];
    for (const fee of await this.feesPaid(exchange, order, symbol, filled)) {
      const { cost } = fee;
      if (cost === 0) continue;
      const currency = fee.currency ?? quote ?? "?";
      let quoteValue: number | null = null;
      if (currency === quote) quoteValue = cost;
      else if (currency === base && averagePrice !== undefined) quoteValue = cost * averagePrice;
      else quoteValue = await this.quoteValue(exchange, currency, quote, cost);
      fees.push({ currency, cost, quoteValue });
    }
    if (filled > 0 && fees.length === 0) this.logger.warn("the exchange reported no fee for the order; recording 0", { exchange: this.exchangeId, symbol, orderId: order.id });
    return {
      status: statusOf(order, filled, request.amount, request.side === "buy" && marketBuyTakesCost(exchange)),
      exchangeOrderId: order.id ?? null,
      filledAmount: filled,
      averagePrice: averagePrice ?? null,
      filledCost: order.cost ?? (averagePrice === undefined ? 0 : filled * averagePrice),
      feeQuote: fees.reduce((sum, fee) => sum + (fee.quoteValue ?? 0), 0),
      feeBase: request.side === "buy" ? fees.filter((fee) => fee.currency === base).reduce((sum, fee) => sum + fee.cost, 0) : 0,
      fees,
      error: null,
      time: new Date(order.lastTradeTimestamp ?? order.timestamp ?? this.clock()),
    };
  }

  /**
   * The order's fees; when its answer carries none (binance's fetchOrder, older bybit
   * answers), the fees of its fills from the account's trades, so PnL is not overstated.
   */
  private async feesPaid(exchange: Exchange, order: Order, symbol: string, filled: number): Promise<PaidFee[]> {
    const listed = feesOf(order);
    const id = order.id;
    if (listed.length > 0 || !(filled > 0) || id === undefined || !exchange.has.fetchMyTrades) return listed;
    try {
      const since = order.timestamp === undefined ? undefined : order.timestamp - ORDER_SEARCH_SLACK_MS;
      const trades = await callWithRetry(this.retryOptions(), { operation: "fetchMyTrades", symbol, detail: `fees of order ${id}` }, () => exchange.fetchMyTrades(symbol, since));
      return feesOf({ fee: undefined, trades: trades.filter((trade) => trade.order === id) });
    } catch (error) {
      this.logger.warn("could not read the fees of an order from the account's trades", { exchange: this.exchangeId, symbol, orderId: id, error: scrubSecrets(String(error), this.secrets) });
      return listed;
    }
  }

  /** A fee paid in a third currency (BNB), valued at that currency's last price in the quote currency; null when there is none. */
  private async quoteValue(exchange: Exchange, currency: string, quote: string | undefined, cost: number): Promise<number | null> {
    const pair = `${currency}/${quote}`;
    try {
      const markets = await exchange.loadMarkets();
      if (quote !== undefined && pair in markets) {
        const ticker = await callWithRetry(this.retryOptions(), { operation: "fetchTicker", symbol: pair, detail: "to value a fee" }, () => exchange.fetchTicker(pair));
        const price = ticker.last ?? ticker.close;
        if (price !== undefined && Number.isFinite(price) && price > 0) return cost * price;
      }
    } catch (error) {
      this.logger.warn("could not price a fee paid in a third currency", { exchange: this.exchangeId, currency, error: scrubSecrets(String(error), this.secrets) });
      return null;
    }
    this.logger.warn("a fee paid in a third currency has no market to price it in the quote currency; recorded with its currency, not counted in PnL", { exchange: this.exchangeId, currency, cost });
    return null;
  }

  private retryOptions(): RetryOptions {
    return { exchange: this.exchangeId, logger: this.logger, delaysMs: this.delaysMs, sleep: this.wait, secrets: this.secrets };
  }

  private remember(clientOrderId: string, report: OrderReport): OrderReport {
    this.reports.set(clientOrderId, report);
    for (const oldest of this.reports.keys()) {
      if (this.reports.size <= REMEMBERED_REPORTS) break;
      this.reports.delete(oldest);
    }
    return report;
  }
}

/**
 * Sends a market order with our client id in the field the exchange reads.
 * Exchanges that take a market buy by the quote to spend (gate, coinbase,
 * bitget, htx) are given the price, so ccxt sends amount × price.
 */
function createMarketOrder(exchange: Exchange, request: OrderRequest): Promise<Order> {
  const { symbol, side, amount, clientOrderId, price } = request;
  const byCost = side === "buy" && marketBuyTakesCost(exchange);
  return exchange.createOrder(symbol, "market", side, amount, byCost ? price : undefined, clientOrderIdParams(exchange, clientOrderId));
}

/** An answer that says what the order did: a final status, or a fill. */
function isSettledAnswer(order: Order): boolean {
  return (order.status === "closed" || order.status === "canceled" || order.status === "expired" || order.status === "rejected") && order.filled !== undefined;
}

/** Filled amounts are parsed from the exchange's decimal strings; this absorbs float noise, not a missing lot. */
const FILL_TOLERANCE = 1e-9;

/**
 * The report's status. A market order is IOC: whatever did not fill at once is
 * cancelled, and exchanges name that end differently (bybit `closed`, binance
 * `expired`, the others `canceled`), with the fill in `filled` either way.
 */
function statusOf(order: Order, filled: number, requested: number, boughtByCost: boolean): ExchangeOrderStatus {
  switch (order.status) {
    case "closed":
      // bybit reports PartiallyFilledCanceled as closed: only the whole amount asked is "filled", less is a
      // final partial fill. A buy by cost has no base amount to hold it to (the price moved since sizing it),
      // so there the exchange's word stands.
      if (boughtByCost || filled >= requested * (1 - FILL_TOLERANCE)) return "filled";
      return "canceled";
    case "canceled":
    case "expired":
    case "rejected":
      return order.status;
    default:
      if (filled > 0 && filled >= (order.amount ?? requested)) return "filled";
      return filled > 0 ? "partially_filled" : "open";
  }
}

/** The order as its trades on the account show it (exchanges that list trades but not orders). */
function orderFromTrades(id: string, query: OrderQuery, trades: readonly Trade[]): Order | undefined {
  if (trades.length === 0) return undefined;
  const filled = trades.reduce((sum, trade) => sum + (trade.amount ?? 0), 0);
  const cost = trades.reduce((sum, trade) => sum + (trade.cost ?? (trade.amount ?? 0) * (trade.price ?? 0)), 0);
  const times = trades.map((trade) => trade.timestamp ?? 0);
  const order: Order = {
    id,
    clientOrderId: query.clientOrderId,
    datetime: undefined,
    symbol: query.symbol,
    side: query.side,
    type: "market",
    price: undefined,
    amount: query.amount,
    filled,
    remaining: Math.max(0, query.amount - filled),
    cost,
    average: filled > 0 ? cost / filled : undefined,
    // Trades cannot say whether the rest will still fill: a market order that filled what it asked is done.
    status: filled >= query.amount ? "closed" : "open",
    timestamp: Math.min(...times),
    lastTradeTimestamp: Math.max(...times),
    trades: [...trades],
    // The fees are the trades' (see feesOf).
    fee: { cost: undefined, currency: undefined },
    reduceOnly: undefined,
    postOnly: undefined,
    info: {},
  };
  return order;
}

/** One fee as paid: its cost as a number, in its currency when the exchange names one. */
export interface PaidFee {
  cost: number;
  currency: string | undefined;
}

/**
 * The order's fees: the per-currency list when ccxt gives one, else its single
 * fee, else its trades' fees. A cost may be a decimal string (ccxt leaves
 * kraken's `fee.cost` as "0.018475"): it counts like a number.
 */
export function feesOf(order: Pick<Order, "fee" | "trades">): PaidFee[] {
  // ccxt fills `fees` at run time though its Order type only declares `fee`.
  const listed: unknown = "fees" in order ? order.fees : undefined;
  if (Array.isArray(listed)) {
    const fees = listed.map(paidFee).filter((fee) => fee !== undefined);
    if (fees.length > 0) return fees;
  }
  const single = paidFee(order.fee);
  if (single) return [single];
  return (order.trades ?? []).map((trade) => paidFee(trade.fee)).filter((fee) => fee !== undefined);
}

function paidFee(value: unknown): PaidFee | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const rawCost: unknown = Reflect.get(value, "cost");
  const cost = typeof rawCost === "number" ? rawCost : typeof rawCost === "string" && rawCost.trim() !== "" ? Number(rawCost) : Number.NaN;
  if (!Number.isFinite(cost)) return undefined;
  const currency: unknown = Reflect.get(value, "currency");
  return { cost, currency: typeof currency === "string" ? currency : undefined };
}

/** ccxt balances → one entry per currency that has any amount. */
export function toBalances(balances: Balances): Balance[] {
  const out: Balance[] = [];
  const totals: unknown = balances.total;
  if (typeof totals !== "object" || totals === null) return out;
  for (const currency of Object.keys(totals)) {
    const entry = balances[currency];
    if (!entry) continue;
    const total = entry.total ?? (entry.free ?? 0) + (entry.used ?? 0);
    const used = entry.used ?? Math.max(0, total - (entry.free ?? total));
    const free = entry.free ?? Math.max(0, total - used);
    if (total === 0 && free === 0 && used === 0) continue;
    out.push({ currency, free, used, total });
  }
  return out;
}
