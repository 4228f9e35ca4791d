import type { Candle, Timeframe } from "@candlekeep/core";
import type { OrderProgress } from "@candlekeep/db";

/** One OHLCV candle as an exchange reports it. */
export type ExchangeCandle = Candle;

export interface Ticker {
  symbol: string;
  last: number;
  bid: number | undefined;
  ask: number | undefined;
  /** 24h volume in the quote currency, when the exchange reports it. */
  quoteVolume: number | undefined;
  timestamp: number;
}

/** Market data every exchange provides, real (ccxt) or simulated. */
export interface MarketData {
  /** "sim" or the ccxt exchange id; stored as `exchange` in every row. */
  readonly id: string;
  /** The exchange's current time: the simulated clock for sim, the wall clock otherwise. */
  now(): number;
  /** The `count` most traded symbols quoted in `quote` (by 24h volume in it), highest first. */
  topSymbols(count: number, quote: string): Promise<string[]>;
  /** The given symbols that the exchange does not list, or lists as no longer trading (delisted, halted). */
  unknownSymbols(symbols: readonly string[]): Promise<string[]>;
  /**
   * Candles with openTime ≥ `since` (or the latest ones when undefined), oldest
   * first, at most `limit`, the last possibly still forming (isClosed false).
   */
  fetchCandles(symbol: string, timeframe: Timeframe, since: number | undefined, limit: number): Promise<ExchangeCandle[]>;
  fetchTicker(symbol: string): Promise<Ticker>;
  /** The market's order precision and minimums. */
  orderRules(symbol: string): Promise<OrderRules>;
  close(): Promise<void>;
}

export type OrderSide = "buy" | "sell";

/** What the exchange accepts for a market's orders: amount precision and minimums. */
export interface OrderRules {
  /** The amount rounded down to the market's precision (0 when below its smallest step). */
  roundAmount(amount: number): number;
  /** Smallest base amount, when the market has one. */
  minAmount: number | undefined;
  /** Smallest order value in the quote currency, when the market has one. */
  minCost: number | undefined;
}

export interface OrderRequest {
  symbol: string;
  side: OrderSide;
  /** Base-currency amount, already rounded to the market's precision. */
  amount: number;
  /** Our id for the order: a retried request with the same id must not fill twice. */
  clientOrderId: string;
  /** The price the order was sized at: an exchange that buys by cost spends amount × price. */
  price: number;
  /**
   * A stop or target crossed inside a candle: the paper account fills there, as a
   * resting order on the exchange would have. Live orders go out at the market.
   */
  triggerPrice?: number;
}

/** The exchange's answer about an order: what it has done so far. */
export type OrderReport = OrderProgress & { status: ExchangeOrderStatus };
export type ExchangeOrderStatus = "open" | "partially_filled" | "filled" | "canceled" | "expired" | "rejected";

/** Where to look for an order sent earlier. */
export interface OrderQuery {
  symbol: string;
  side: OrderSide;
  clientOrderId: string;
  exchangeOrderId: string | null;
  amount: number;
  /** When it was sent (epoch ms): searches do not look further back. */
  sentSince: number;
}

export interface Balance {
  currency: string;
  free: number;
  used: number;
  total: number;
}

/** Places orders and reports balances: paper (simulated fills at market prices) or live. */
export interface Broker {
  readonly mode: "paper" | "live";
  /**
   * Sends a market order. Throws OrderRefusedError when the exchange refused it
   * (nothing was placed); any other error leaves its fate unknown until looked up.
   */
  placeOrder(request: OrderRequest): Promise<OrderReport>;
  /**
   * What became of an order sent earlier, or undefined when the exchange never got
   * it. Sends nothing. Throws OrderLookupUnavailableError when the exchange offers
   * no way to find it.
   */
  lookupOrder(query: OrderQuery): Promise<OrderReport | undefined>;
  /** Whether a stop-loss can rest on the exchange (placeStopLoss); where not, the bot watches the stop itself. */
  supportsStopLoss(): Promise<boolean>;
  /** Places a stop-limit sell that rests on the exchange until `stopPrice` trades, then sells at `limitPrice` or better. Refusals throw OrderRefusedError. */
  placeStopLoss(request: StopLossRequest): Promise<OrderReport>;
  /** Cancels an order and says what it had done by then (it may have filled first); undefined when the exchange never had it. */
  cancelOrder(query: OrderQuery): Promise<OrderReport | undefined>;
  balances(): Promise<Balance[]>;
}

export interface StopLossRequest {
  symbol: string;
  /** Base amount to sell, rounded to the market's precision. */
  amount: number;
  stopPrice: number;
  /** The lowest price it may sell at once triggered (spot exchanges take stop-limit orders, not stop-market). */
  limitPrice: number;
  clientOrderId: string;
}

/** The exchange refused the order: nothing was placed, so nothing is to be settled. */
export class OrderRefusedError extends Error {
  override readonly name: string = "OrderRefusedError";
}

/** The exchange cannot be asked about the order now (no way to list or fetch it). */
export class OrderLookupUnavailableError extends Error {
  override readonly name = "OrderLookupUnavailableError";
}
