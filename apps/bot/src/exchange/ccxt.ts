import { TIMEFRAME_MS, UserFacingError, alignToTimeframe, type Logger, type Timeframe } from "@candlekeep/core";
import type { Exchange, OHLCV, Ticker as CcxtTicker } from "ccxt";
import { aggregateCandles, timeframeSource, type TimeframeSource } from "./aggregate";
import { callWithRetry, exchangeCallError, type CallDescription, type RetryOptions } from "./retry";
import type { ExchangeCandle, MarketData, OrderRules, Ticker } from "./types";

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

/** TIMEFRAMES names a timeframe the exchange neither has nor can build from a shorter one. */
export class UnsupportedTimeframeError extends UserFacingError {
  override readonly name = "UnsupportedTimeframeError";
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

/**
 * Source candles asked for per request when building a timeframe: Coinbase answers at most 300, the
 * fewest of the large exchanges; one answering fewer is asked again from where its answer ended.
 */
const SOURCE_PAGE = 300;

/** A timeframe the exchange lacks, built from a shorter one it has. */
export interface BuiltTimeframe {
  timeframe: Timeframe;
  from: string;
}

/** Market data from a real exchange through ccxt: retries, clear errors, clean candles. */
export class CcxtMarketData implements MarketData {
  readonly id: string;
  private readonly retry: RetryOptions;
  private readonly clock: () => number;
  private readonly sources = new Map<Timeframe, TimeframeSource>();

  /**
   * @param exchange The ccxt exchange under this market data; live orders go through it too, so the bot
   *   has one rate limiter per exchange and loads its markets once.
   */
  constructor(
    readonly exchange: Exchange,
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

  /** Inactive markets count as unlisted: binance, for one, keeps a delisted pair listed with status BREAK. */
  async unknownSymbols(symbols: readonly string[]): Promise<string[]> {
    const markets = await this.markets();
    return symbols.filter((symbol) => {
      const market = markets[symbol];
      return !isRecord(market) || market.active === false;
    });
  }

  /**
   * The timeframes of `timeframes` the exchange lacks, each with the shorter one it is built from.
   * Throws UnsupportedTimeframeError for one it can neither serve nor build: checked at start.
   */
  builtTimeframes(timeframes: readonly Timeframe[]): BuiltTimeframe[] {
    const built: BuiltTimeframe[] = [];
    for (const timeframe of timeframes) {
      const source = this.sourceOf(timeframe);
      if (source.kind === "built") built.push({ timeframe, from: source.from });
    }
    return built;
  }

  async fetchCandles(symbol: string, timeframe: Timeframe, since: number | undefined, limit: number): Promise<ExchangeCandle[]> {
    const source = this.sourceOf(timeframe);
    if (source.kind === "built") return this.fetchBuilt(symbol, timeframe, source, since, limit);
    const rows = await this.call({ operation: "fetchOHLCV", symbol, detail: timeframe }, () => this.exchange.fetchOHLCV(symbol, timeframe, since, limit));
    return toCandles(rows, TIMEFRAME_MS[timeframe], since, limit, this.now());
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

  async orderRules(symbol: string): Promise<OrderRules> {
    await this.markets();
    const { limits } = this.exchange.market(symbol);
    return {
      // ccxt truncates to the market's precision, and refuses an amount that truncates to nothing.
      roundAmount: (amount) => {
        try {
          return Number(this.exchange.amountToPrecision(symbol, amount));
        } catch {
          return 0;
        }
      },
      minAmount: positiveOrUndefined(limits.amount?.min),
      minCost: positiveOrUndefined(limits.cost?.min),
    };
  }

  async close(): Promise<void> {
    await this.exchange.close();
  }

  /** Where `timeframe`'s candles come from; an exchange that does not declare its timeframes is asked for it as is. */
  private sourceOf(timeframe: Timeframe): TimeframeSource {
    let source = this.sources.get(timeframe);
    if (source) return source;
    const offered = Object.keys(this.exchange.timeframes ?? {});
    source = offered.length === 0 ? { kind: "native" } : timeframeSource(timeframe, offered);
    if (!source) {
      throw new UnsupportedTimeframeError(
        `${this.id} has no ${timeframe} candles, nor a shorter timeframe that divides ${timeframe} to build them from (it has ${offered.join(", ")}); remove ${timeframe} from TIMEFRAMES.`,
      );
    }
    this.sources.set(timeframe, source);
    return source;
  }

  /**
   * Candles of a timeframe the exchange lacks, built from its source timeframe: whole candles only
   * (from the first opening at or after `since`, or the `limit` newest), their source candles
   * fetched a page at a time.
   */
  private async fetchBuilt(symbol: string, timeframe: Timeframe, source: Extract<TimeframeSource, { kind: "built" }>, since: number | undefined, limit: number): Promise<ExchangeCandle[]> {
    const step = TIMEFRAME_MS[timeframe];
    const count = Math.max(0, Math.floor(limit));
    const now = this.now();
    const from = since === undefined ? alignToTimeframe(now, timeframe) - (count - 1) * step : Math.ceil(since / step) * step;
    const end = Math.min(from + count * step, now + 1);
    const rows: ExchangeCandle[] = [];
    for (let cursor = from; cursor < end; ) {
      const wanted = Math.min(SOURCE_PAGE, Math.ceil((end - cursor) / source.fromMs));
      const page = await this.call({ operation: "fetchOHLCV", symbol, detail: `${source.from} (building ${timeframe})` }, () => this.exchange.fetchOHLCV(symbol, source.from, cursor, wanted));
      const fresh = toCandles(page, source.fromMs, cursor, wanted, now).filter((candle) => candle.openTime < end);
      const last = fresh.at(-1);
      // An exchange with nothing more (or one ignoring `since`, answering the same rows again) ends the fetch.
      if (!last) break;
      rows.push(...fresh);
      cursor = last.openTime + source.fromMs;
    }
    return aggregateCandles(rows, source.fromMs, timeframe, now).slice(0, count);
  }

  private async markets(): Promise<Record<string, unknown>> {
    return this.call({ operation: "loadMarkets" }, () => this.exchange.loadMarkets());
  }

  private call<T>(what: CallDescription, run: () => Promise<T>): Promise<T> {
    return callWithRetry(this.retry, what, run);
  }
}

/**
 * ccxt OHLCV rows of candles `stepMs` long → candles: rows with missing prices dropped, sorted by time,
 * duplicates resolved to the last row (the freshest snapshot of that candle),
 * `since`/`limit` applied, and the candle whose period contains `now` marked forming.
 */
export function toCandles(rows: readonly OHLCV[], stepMs: number, since: number | undefined, limit: number, now: number): ExchangeCandle[] {
  const byOpenTime = new Map<number, ExchangeCandle>();
  for (const [openTime, open, high, low, close, volume] of rows) {
    if (!isFiniteNumber(openTime) || !isFiniteNumber(open) || !isFiniteNumber(high) || !isFiniteNumber(low) || !isFiniteNumber(close)) continue;
    if (since !== undefined && openTime < since) continue;
    byOpenTime.set(openTime, { openTime, open, high, low, close, volume: isFiniteNumber(volume) ? volume : 0, isClosed: openTime + stepMs <= now });
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

function positiveOrUndefined(value: number | undefined): number | undefined {
  return isFiniteNumber(value) && value > 0 ? value : undefined;
}

function finiteOrUndefined(value: number | undefined): number | undefined {
  return isFiniteNumber(value) ? value : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null;
}
