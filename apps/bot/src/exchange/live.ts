import { setTimeout as sleep } from "node:timers/promises";
import { UserFacingError, type Logger } from "@candlekeep/core";
import type { Balances, Exchange, FeeInterface, Order } from "ccxt";
import { createCcxtExchange } from "./ccxt";
import { DEFAULT_RETRY_DELAYS_MS, ExchangeCallError, callWithRetry, exchangeCallError, isTransientExchangeError, type RetryOptions } from "./retry";
import type { Balance, Broker, Fill, OrderRequest } from "./types";

/** Live trading was asked for without credentials. */
export class MissingApiKeysError extends UserFacingError {
  override readonly name = "MissingApiKeysError";
}

interface LiveBrokerCommonOptions {
  logger: Logger;
  /** Waits between attempts after a transient failure; its length is the number of retries. */
  retryDelaysMs?: readonly number[];
  sleep?: (ms: number) => Promise<void>;
  /** Our clock, for bounding the search for an order after a lost response. */
  now?: () => number;
}

/** Either an exchange id with keys (created on first use), or a ready ccxt exchange (tests, custom setups). */
export type LiveBrokerOptions = LiveBrokerCommonOptions & ({ exchangeId: string; apiKey: string; secret: string } | { exchange: Exchange });

/** How far back, before sending, a lost order is searched for (exchange clocks drift a little). */
const ORDER_SEARCH_SLACK_MS = 60_000;

/** Fills remembered for idempotent retries within this process. */
const REMEMBERED_FILLS = 10_000;

/**
 * Real market orders through ccxt.
 *
 * An order is never sent twice blindly: when sending fails with a network
 * error the order may still have reached the exchange, so the broker first
 * looks for it by clientOrderId among recent orders and only resends when it
 * is not there. Reads (balances, order status) are retried like market data.
 */
export class LiveBroker implements Broker {
  readonly mode = "live";
  private readonly logger: Logger;
  private readonly delaysMs: readonly number[];
  private readonly wait: (ms: number) => Promise<void>;
  private readonly clock: () => number;
  private readonly secrets: readonly string[];
  private readonly exchangeId: string;
  private readonly connect: () => Promise<Exchange>;
  private connecting: Promise<Exchange> | undefined;
  private readonly fills = new Map<string, Fill>();
  private readonly inFlight = new Map<string, Promise<Fill>>();

  constructor(options: LiveBrokerOptions) {
    this.logger = options.logger;
    this.delaysMs = options.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS;
    this.wait = options.sleep ?? sleep;
    this.clock = options.now ?? Date.now;
    if ("exchange" in options) {
      const { exchange } = options;
      this.exchangeId = exchange.id;
      this.secrets = [exchange.apiKey, exchange.secret].filter((value): value is string => typeof value === "string" && value !== "");
      this.connect = async () => exchange;
    } else {
      const { exchangeId, apiKey, secret } = options;
      if (!apiKey || !secret) {
        throw new MissingApiKeysError(`TRADING_MODE=live needs EXCHANGE_API_KEY and EXCHANGE_API_SECRET for ${exchangeId}; set both, or use TRADING_MODE=paper.`);
      }
      this.exchangeId = exchangeId;
      this.secrets = [apiKey, secret];
      this.connect = () => createCcxtExchange({ exchangeId, apiKey, secret });
    }
  }

  async balances(): Promise<Balance[]> {
    const exchange = await this.exchange();
    const balances = await callWithRetry(this.retryOptions(), { operation: "fetchBalance" }, () => exchange.fetchBalance());
    return toBalances(balances);
  }

  /** A repeated clientOrderId returns the first fill instead of trading again (also while that order is still running). */
  async marketOrder(request: OrderRequest): Promise<Fill> {
    // Everything up to the first await runs synchronously, so a concurrent repeat sees the in-flight entry.
    const previous = this.fills.get(request.clientOrderId);
    if (previous) return previous;
    const running = this.inFlight.get(request.clientOrderId);
    if (running) return running;
    const order = this.place(request).finally(() => this.inFlight.delete(request.clientOrderId));
    this.inFlight.set(request.clientOrderId, order);
    return order;
  }

  async findOrder(request: OrderRequest, sentSince: number): Promise<Fill | undefined> {
    const previous = this.fills.get(request.clientOrderId);
    if (previous) return previous;
    const exchange = await this.exchange();
    const order = await this.findSentOrder(exchange, request, sentSince - ORDER_SEARCH_SLACK_MS);
    return order && this.fillOf(exchange, order, request);
  }

  private async place(request: OrderRequest): Promise<Fill> {
    const exchange = await this.exchange();
    return this.fillOf(exchange, await this.send(exchange, request), request);
  }

  private async fillOf(exchange: Exchange, order: Order, request: OrderRequest): Promise<Fill> {
    const settled = await this.settle(exchange, order, request);
    const fill = toFill(settled, request, { exchange: this.exchangeId, now: this.clock(), logger: this.logger });
    this.remember(request.clientOrderId, fill);
    return fill;
  }

  /**
   * Sends the order; after a network failure looks for it among recent orders
   * and resends only when it is not there, up to the configured retries.
   */
  private async send(exchange: Exchange, request: OrderRequest): Promise<Order> {
    const { symbol, side, amount, clientOrderId } = request;
    const what = { operation: `createOrder market ${side}`, symbol, detail: `clientOrderId ${clientOrderId}` };
    const sentAt = this.clock();
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await exchange.createOrder(symbol, "market", side, amount, undefined, { clientOrderId });
      } catch (error) {
        if (!isTransientExchangeError(error)) throw exchangeCallError(this.retryOptions(), what, error, attempt, false);
        this.logger.warn("sending an order failed; checking whether it reached the exchange", { exchange: this.exchangeId, symbol, clientOrderId, attempt });
        await this.wait(this.delaysMs[attempt - 1] ?? this.delaysMs.at(-1) ?? 0);
        const arrived = await this.findSentOrder(exchange, request, sentAt - ORDER_SEARCH_SLACK_MS);
        if (arrived) return arrived;
        if (attempt > this.delaysMs.length) {
          throw exchangeCallError(this.retryOptions(), { ...what, detail: `${what.detail} (not found among recent orders)` }, error, attempt, true);
        }
      }
    }
  }

  /** The order with our clientOrderId among recent orders, or undefined when it never arrived. */
  private async findSentOrder(exchange: Exchange, request: OrderRequest, since: number): Promise<Order | undefined> {
    const what = { operation: "fetchOrders", symbol: request.symbol, detail: `looking for clientOrderId ${request.clientOrderId}` };
    const search = exchange.has.fetchOrders ? "fetchOrders" : exchange.has.fetchClosedOrders ? "fetchClosedOrders" : undefined;
    if (search === undefined) {
      // Resending could buy twice; stopping is the only safe choice.
      throw exchangeCallError(this.retryOptions(), what, new Error(`${this.exchangeId} cannot list orders, so whether ${request.clientOrderId} was placed is unknown; check the account before trading on`), 1, false);
    }
    const orders = await callWithRetry(this.retryOptions(), what, () => (search === "fetchOrders" ? exchange.fetchOrders(request.symbol, since) : exchange.fetchClosedOrders(request.symbol, since)));
    return orders.find((order) => order.clientOrderId === request.clientOrderId);
  }

  /** Some exchanges answer a market order before it has filled; ask once more for its final state. */
  private async settle(exchange: Exchange, order: Order, request: OrderRequest): Promise<Order> {
    if ((order.filled ?? 0) > 0 && order.status !== "open") return order;
    if (!order.id || !exchange.has.fetchOrder) return order;
    const id = order.id;
    return callWithRetry(this.retryOptions(), { operation: "fetchOrder", symbol: request.symbol, detail: `order ${id}` }, () => exchange.fetchOrder(id, request.symbol));
  }

  private exchange(): Promise<Exchange> {
    this.connecting ??= this.connect().catch((error: unknown) => {
      this.connecting = undefined;
      throw error;
    });
    return this.connecting;
  }

  private retryOptions(): RetryOptions {
    return { exchange: this.exchangeId, logger: this.logger, delaysMs: this.delaysMs, sleep: this.wait, secrets: this.secrets };
  }

  private remember(clientOrderId: string, fill: Fill): void {
    this.fills.set(clientOrderId, fill);
    for (const oldest of this.fills.keys()) {
      if (this.fills.size <= REMEMBERED_FILLS) break;
      this.fills.delete(oldest);
    }
  }
}

/**
 * A ccxt order → Fill. The fee is converted to the quote currency; a fee the
 * exchange took in the base currency on a buy is also taken off the amount,
 * since that is what the account actually received (and can sell later).
 */
export function toFill(order: Order, request: OrderRequest, context: { exchange: string; now: number; logger: Logger }): Fill {
  const { symbol, side } = request;
  const { exchange, now, logger } = context;
  const filled = order.filled ?? (order.status === "closed" ? order.amount : undefined);
  const fail = (reason: string) => new ExchangeCallError(`${exchange} market ${side} ${symbol} (order ${order.id ?? "?"}): ${reason}`, exchange, "createOrder", symbol, 1, false);
  if (!(filled !== undefined && filled > 0)) throw fail(`not filled (status ${order.status ?? "unknown"}); check the order on the exchange`);
  const price = order.average ?? (order.cost !== undefined && order.cost > 0 ? order.cost / filled : order.price);
  if (!(price !== undefined && price > 0)) throw fail("the exchange reported no fill price");

  const [base, quoteWithSettle] = symbol.split("/");
  const quote = quoteWithSettle?.split(":")[0];
  let quoteFee = 0;
  let baseFee = 0;
  const fees = feesOf(order);
  for (const fee of fees) {
    const cost = fee.cost ?? 0;
    if (cost === 0) continue;
    if (fee.currency === quote) quoteFee += cost;
    else if (fee.currency === base) baseFee += cost;
    else logger.warn("order fee paid in a third currency is not counted in the quote-currency fee", { exchange, symbol, orderId: order.id, feeCurrency: fee.currency, fee: cost });
  }
  if (fees.length === 0) logger.warn("the exchange reported no fee for the order; recording 0", { exchange, symbol, orderId: order.id });
  return {
    orderId: order.id ?? request.clientOrderId,
    symbol,
    side,
    amount: side === "buy" ? filled - baseFee : filled,
    price,
    fee: quoteFee + baseFee * price,
    timestamp: order.lastTradeTimestamp ?? order.timestamp ?? now,
  };
}

/** The order's fees: the per-currency list when ccxt gives one, else its single fee, else its trades' fees. */
function feesOf(order: Order): FeeInterface[] {
  // ccxt fills `fees` at run time though its Order type only declares `fee`.
  const listed: unknown = "fees" in order ? order.fees : undefined;
  if (Array.isArray(listed)) {
    const fees = listed.filter(isFee);
    if (fees.length > 0) return fees;
  }
  if (order.fee && isFee(order.fee)) return [order.fee];
  return (order.trades ?? []).map((trade) => trade.fee).filter(isFee);
}

function isFee(value: unknown): value is FeeInterface {
  return typeof value === "object" && value !== null && typeof Reflect.get(value, "cost") === "number";
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
