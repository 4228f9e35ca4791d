import type { Candle, Timeframe } from "@candlekeep/core";

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
  close(): Promise<void>;
}

export type OrderSide = "buy" | "sell";

export interface OrderRequest {
  symbol: string;
  side: OrderSide;
  /** Base-currency amount. */
  amount: number;
  /** Our id for the order: a retried request with the same id must not fill twice. */
  clientOrderId: string;
}

export interface Fill {
  orderId: string;
  symbol: string;
  side: OrderSide;
  amount: number;
  price: number;
  /** Fee in the quote currency. */
  fee: number;
  timestamp: number;
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
  marketOrder(request: OrderRequest): Promise<Fill>;
  /**
   * The fill of an order sent earlier (not before `sentSince`, epoch ms) with
   * this request's clientOrderId, or undefined when the exchange never got it.
   * Sends nothing.
   */
  findOrder(request: OrderRequest, sentSince: number): Promise<Fill | undefined>;
  balances(): Promise<Balance[]>;
}
