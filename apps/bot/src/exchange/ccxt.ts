import { TIMEFRAME_MS, UserFacingError, type Logger, type Timeframe } from "@candlekeep/core";
import type { Exchange, OHLCV, Ticker as CcxtTicker } from "ccxt";
import { callWithRetry, exchangeCallError, type CallDescription, type RetryOptions } from "./retry";
import type { ExchangeCandle, MarketData, Ticker } from "./types";

/** EXCHANGE names an id ccxt does not know. */
export class UnknownExchangeError extends UserFacingError {
  override readonly name = "UnknownExchangeError";
  constructor(readonly exchangeId: string) {
    super(`EXCHANGE "${exchangeId}" is not an exchange ccxt supports. Use "sim" or an id from https://docs.ccxt.com/#/Exchange-Markets (e.g. binance, kraken, coinbase).`);
  }
}

/** The exchange lacks a capability the bot needs (candles, tickers). */
export class UnsupportedExchangeError extends UserFacingError {
  override readonly name = "UnsupportedExchangeError";
}

export interface CcxtExchangeOptions {
  exchangeId: string;
  apiKey?: string | undefined;
  secret?: string | undefined;
}

/**
 * Creates a ccxt exchange by id, with ccxt's rate limiter on.
 *
 * ccxt is loaded on first use: a bot on the simulated exchange never pays for
 * loading a hundred exchange classes, and the one dynamic import keeps every
 * exchange and error class from the same copy of the (ESM/CJS dual) package.
 */
export async function createCcxtExchange(options: CcxtExchangeOptions): Promise<Exchange> {
  const ccxt = (await import("ccxt")).default;
  const { exchangeId } = options;
  if (!ccxt.exchanges.includes(exchangeId)) throw new UnknownExchangeError(exchangeId);
  const ExchangeClass: unknown = Reflect.get(ccxt, exchangeId);
  if (typeof ExchangeClass !== "function") throw new UnknownExchangeError(exchangeId);
  const exchange: unknown = Reflect.construct(ExchangeClass, [
    {
      enableRateLimit: true,
      ...(options.apiKey ? { apiKey: options.apiKey } : {}),
      ...(options.secret ? { secret: options.secret } : {}),
    },
  ]);
  if (!(exchange instanceof ccxt.Exchange)) throw new UnknownExchangeError(exchangeId);
  return exchange;
}

export interface CcxtMarketDataOptions {
  logger: Logger;
  /** Waits between attempts of a transient failure; its length is the number of retries. */
  retryDelaysMs?: readonly number[];
  sleep?: (ms: number) => Promise<void>;
  /** The exchange's clock, for telling the forming candle; the wall clock by default. */
  now?: () => number;
  /** Never shown in messages or logs (ccxt errors can echo request details). */
  secrets?: readonly (string | undefined)[];
}

export type CreateCcxtMarketDataOptions = CcxtExchangeOptions & Omit<CcxtMarketDataOptions, "secrets">;

export async function createCcxtMarketData(options: CreateCcxtMarketDataOptions): Promise<CcxtMarketData> {
  const exchange = await createCcxtExchange(options);
  if (!exchange.has.fetchOHLCV) {
    throw new UnsupportedExchangeError(`${exchange.id} does not provide candles (fetchOHLCV) through ccxt; choose another EXCHANGE.`);
  }
  return new CcxtMarketData(exchange, { ...options, secrets: [options.apiKey, options.secret] });
}

/** Market data from a real exchange through ccxt: retries, clear errors, clean candles. */
export class CcxtMarketData implements MarketData {
  readonly id: string;
  private readonly retry: RetryOptions;
  private readonly clock: () => number;

  constructor(
    private readonly exchange: Exchange,
    options: CcxtMarketDataOptions,
  ) {
    this.id = exchange.id;
    this.clock = options.now ?? Date.now;
    this.retry = { exchange: exchange.id, logger: options.logger, delaysMs: options.retryDelaysMs, sleep: options.sleep, secrets: options.secrets };
  }

  now(): number {
    return this.clock();
  }

  /**
   * Only active spot pairs quoted in `quote`: volumes in different quote currencies do not compare
   * (a USDT/TRY pair's volume in lira would outrank every USDT pair), and the account holds `quote`.
   */
  async topSymbols(count: number, quote: string): Promise<string[]> {
    if (!this.exchange.has.fetchTickers) {
      throw new UnsupportedExchangeError(`${this.id} cannot list tickers to rank coins by volume; set SYMBOLS to a list instead of top:${count}.`);
    }
    const markets = await this.markets();
    const tickers = await this.call({ operation: "fetchTickers" }, () => this.exchange.fetchTickers());
    const ranked: { symbol: string; volume: number }[] = [];
    for (const ticker of Object.values(tickers)) {
      const market = ticker.symbol ? markets[ticker.symbol] : undefined;
      if (!ticker.symbol || !isRecord(market) || market.spot !== true || market.active === false || market.quote !== quote) continue;
      ranked.push({ symbol: ticker.symbol, volume: quoteVolumeOf(ticker) ?? 0 });
    }
    ranked.sort((a, b) => b.volume - a.volume || a.symbol.localeCompare(b.symbol));
    return ranked.slice(0, Math.max(0, count)).map((entry) => entry.symbol);
  }

  async unknownSymbols(symbols: readonly string[]): Promise<string[]> {
    const markets = await this.markets();
    return symbols.filter((symbol) => !(symbol in markets));
  }

  async fetchCandles(symbol: string, timeframe: Timeframe, since: number | undefined, limit: number): Promise<ExchangeCandle[]> {
    const rows = await this.call({ operation: "fetchOHLCV", symbol, detail: timeframe }, () => this.exchange.fetchOHLCV(symbol, timeframe, since, limit));
    return toCandles(rows, timeframe, since, limit, this.now());
  }

  async fetchTicker(symbol: string): Promise<Ticker> {
    const ticker = await this.call({ operation: "fetchTicker", symbol }, () => this.exchange.fetchTicker(symbol));
    const last = ticker.last ?? ticker.close;
    if (last === undefined || !Number.isFinite(last)) {
      throw exchangeCallError(this.retry, { operation: "fetchTicker", symbol }, new Error("the ticker has no last price"), 1, false);
    }
    return {
      symbol,
      last,
      bid: finiteOrUndefined(ticker.bid),
      ask: finiteOrUndefined(ticker.ask),
      quoteVolume: quoteVolumeOf(ticker),
      timestamp: ticker.timestamp ?? this.now(),
    };
  }

  async close(): Promise<void> {
    await this.exchange.close();
  }

  private async markets(): Promise<Record<string, unknown>> {
    return this.call({ operation: "loadMarkets" }, () => this.exchange.loadMarkets());
  }

  private call<T>(what: CallDescription, run: () => Promise<T>): Promise<T> {
    return callWithRetry(this.retry, what, run);
  }
}

/**
 * ccxt OHLCV rows → candles: rows with missing prices dropped, sorted by time,
 * duplicates resolved to the last row (the freshest snapshot of that candle),
 * `since`/`limit` applied, and the candle whose period contains `now` marked forming.
 */
export function toCandles(rows: readonly OHLCV[], timeframe: Timeframe, since: number | undefined, limit: number, now: number): ExchangeCandle[] {
  const step = TIMEFRAME_MS[timeframe];
  const byOpenTime = new Map<number, ExchangeCandle>();
  for (const [openTime, open, high, low, close, volume] of rows) {
    if (!isFiniteNumber(openTime) || !isFiniteNumber(open) || !isFiniteNumber(high) || !isFiniteNumber(low) || !isFiniteNumber(close)) continue;
    if (since !== undefined && openTime < since) continue;
    byOpenTime.set(openTime, { openTime, open, high, low, close, volume: isFiniteNumber(volume) ? volume : 0, isClosed: openTime + step <= now });
  }
  const candles = [...byOpenTime.values()].sort((a, b) => a.openTime - b.openTime);
  const count = Math.max(0, Math.floor(limit));
  return since === undefined ? candles.slice(Math.max(0, candles.length - count)) : candles.slice(0, count);
}

function quoteVolumeOf(ticker: CcxtTicker): number | undefined {
  if (isFiniteNumber(ticker.quoteVolume)) return ticker.quoteVolume;
  const price = ticker.last ?? ticker.close;
  // Some exchanges only report base volume; base × last approximates the quote volume.
  return isFiniteNumber(ticker.baseVolume) && isFiniteNumber(price) ? ticker.baseVolume * price : undefined;
}

function isFiniteNumber(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value);
}

function finiteOrUndefined(value: number | undefined): number | undefined {
  return isFiniteNumber(value) ? value : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null;
}
