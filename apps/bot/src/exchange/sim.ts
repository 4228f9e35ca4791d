import { SIM_DEFAULT_SYMBOLS, TIMEFRAME_MS, alignToTimeframe, type Timeframe } from "@candlekeep/core";
import { SymbolNotListedError } from "./retry";
import type { ExchangeCandle, MarketData, OrderRules, Ticker } from "./types";

/**
 * The simulated exchange: deterministic market data for the coins it lists (see
 * simListing), at any time, on a simulated clock that never runs ahead of the wall clock.
 *
 * How prices are made (all randomness is a hash of seed, symbol and an index,
 * so any candle can be computed on its own, in any order, in any process):
 *
 * - Day anchors: the log price at each UTC midnight is a sum of smooth noise
 *   octaves over the day index (periods 2…128 days, amplitude ∝ √period), so
 *   it moves like a random walk over weeks yet stays bounded over years.
 * - Inside a day: a random walk of 96 fifteen-minute steps made of regimes
 *   (8–47 candles each) with their own drift (trend up, down or none) and
 *   volatility, bridged so it starts and ends on the day's anchors.
 * - 15m candles come from that path (wicks and volume from more hashes);
 *   1h, 4h and 1d candles are aggregated from them, so every timeframe agrees.
 * - One day of one symbol is generated at once and kept in a small LRU cache.
 */

// Math's functions bound once: generation makes millions of calls, and inside a vm
// context (jest's test environment) every lookup of the global Math is ~50× slower.
const { abs, ceil, exp, floor, imul, log, log10, max, min, round, sqrt } = Math;

const STEP_MS = TIMEFRAME_MS["15m"];
/** How far `advance()` moves the clock unless told otherwise: one 15m candle. */
export const SIM_DEFAULT_STEP_MS = STEP_MS;

/** Where a replay of `candles` 15m candles up to `now` starts: that many before now's 15m candle (SIM_REPLAY_CANDLES). */
export function simReplayStart(candles: number, now: number): number {
  return alignToTimeframe(now, "15m") - candles * STEP_MS;
}
const DAY_MS = TIMEFRAME_MS["1d"];
const STEPS_PER_DAY = DAY_MS / STEP_MS;

/** The sim lists every coin from this date (unless listed later: SimExchangeOptions.listedFrom); earlier requests start here (as for a real listing). */
export const SIM_LISTED_FROM = Date.UTC(2017, 0, 1);

/** How many coins the sim lists: SIM_DEFAULT_SYMBOLS' coins, then S021 … S5000. */
export const SIM_MAX_SYMBOLS = 5000;

const SIM_SYMBOL = /^([A-Z0-9]{1,20})\/([A-Z0-9]{1,20})$/;
const SYNTHETIC_BASE = /^S(\d{3,4})$/;
/** The default coins' bases: BTC, ETH, … */
const DEFAULT_BASES: readonly string[] = SIM_DEFAULT_SYMBOLS.map((symbol) => symbol.slice(0, symbol.indexOf("/")));

/** True for the coins the sim lists: the default coins and S021 … S5000 (spelled as topSymbols names them). */
function listedBase(base: string): boolean {
  if (DEFAULT_BASES.includes(base)) return true;
  const synthetic = SYNTHETIC_BASE.exec(base);
  if (synthetic === null) return false;
  const rank = Number(synthetic[1]);
  return rank > DEFAULT_BASES.length && rank <= SIM_MAX_SYMBOLS && syntheticBase(rank) === base;
}

/** What the sim lists, for a message: "BTC, ETH, … OP and S021 … S5000, each quoted in USDT". */
export function simListing(quoteCurrency: string): string {
  return `${DEFAULT_BASES.join(", ")} and ${syntheticBase(DEFAULT_BASES.length + 1)} … ${syntheticBase(SIM_MAX_SYMBOLS)}, each quoted in ${quoteCurrency}`;
}

/** USD price and typical daily volatility of the default coins (rough real-world levels). */
const KNOWN_COINS: Readonly<Record<string, { usd: number; dailyVol: number }>> = {
  BTC: { usd: 65_000, dailyVol: 0.025 },
  ETH: { usd: 3_200, dailyVol: 0.032 },
  SOL: { usd: 150, dailyVol: 0.045 },
  BNB: { usd: 580, dailyVol: 0.028 },
  XRP: { usd: 0.55, dailyVol: 0.04 },
  ADA: { usd: 0.45, dailyVol: 0.042 },
  DOGE: { usd: 0.12, dailyVol: 0.05 },
  AVAX: { usd: 30, dailyVol: 0.048 },
  DOT: { usd: 6.5, dailyVol: 0.042 },
  LINK: { usd: 14, dailyVol: 0.045 },
  MATIC: { usd: 0.6, dailyVol: 0.046 },
  LTC: { usd: 80, dailyVol: 0.035 },
  TRX: { usd: 0.12, dailyVol: 0.025 },
  ATOM: { usd: 8, dailyVol: 0.044 },
  UNI: { usd: 7.5, dailyVol: 0.048 },
  XLM: { usd: 0.1, dailyVol: 0.038 },
  NEAR: { usd: 5, dailyVol: 0.05 },
  APT: { usd: 8.5, dailyVol: 0.052 },
  ARB: { usd: 0.9, dailyVol: 0.055 },
  OP: { usd: 1.8, dailyVol: 0.055 },
};
const USD_QUOTES = new Set(["USDT", "USDC", "USD", "BUSD", "FDUSD", "DAI", "TUSD"]);

/** 24h quote volume of the most traded coin; rank r trades TOP_DAILY_QUOTE_VOLUME · r^-1.15. */
const TOP_DAILY_QUOTE_VOLUME = 2e9;

/** Day-anchor noise octaves, in days. */
const ANCHOR_PERIODS_DAYS = [2, 4, 8, 16, 32, 64, 128] as const;
/** Per-regime drift, in units of the step volatility: strong/mild trends both ways, and calm. */
const REGIME_TRENDS = [-0.6, -0.3, 0, 0, 0.3, 0.6] as const;
const REGIME_VOLATILITY = [0.6, 1, 1, 1.6] as const;

// Hash streams: one per independent use of randomness.
const STREAM_ANCHOR = 100;
const STREAM_DAY_VOLATILITY = 200;
const STREAM_REGIME = 300;
const STREAM_STEP = 400;
const STREAM_WICK = 500;
const STREAM_VOLUME = 600;
const STREAM_PARTIAL = 700;
const STREAM_COIN_LEVELS = 800;

// Layout of one generated day: 97 path prices, then 96 highs, 96 lows, 96 volumes.
const PATH = 0;
const HIGH = STEPS_PER_DAY + 1;
const LOW = HIGH + STEPS_PER_DAY;
const VOLUME = LOW + STEPS_PER_DAY;
const DAY_LENGTH = VOLUME + STEPS_PER_DAY;

/** Extra cached days beyond two per coin in use (today and yesterday). */
const DEFAULT_HISTORY_CACHE_DAYS = 256;

export interface SimExchangeOptions {
  seed: number;
  /** The simulated clock's start (epoch ms); clamped to the wall clock. */
  startTime: number;
  /** How far `advance()` moves the clock; 15 minutes by default. */
  stepMs?: number;
  wallClock?: () => number;
  /** Symbols whose calls throw (fault injection for tests); see also failSymbols(). */
  failingSymbols?: Iterable<string>;
  /** Days of history kept cached besides today/yesterday per coin (~3 KB each). */
  historyCacheDays?: number;
  /** The currency every listed coin is quoted in: the paper account's (QUOTE_CURRENCY); USDT by default. */
  quoteCurrency?: string;
  /**
   * Coins listed after SIM_LISTED_FROM (symbol → epoch ms): like a real exchange, the sim has no
   * candles of them opening before their listing, so a backfill reaching further back finds none there.
   */
  listedFrom?: Readonly<Record<string, number>>;
  /**
   * Coins the sim stops listing at this market time (symbol → epoch ms): from then on it leaves them
   * out of its listing and every call for them throws SymbolNotListedError, as a real exchange's
   * "invalid symbol" answer does through ccxt (tests of a coin delisted while the bot runs).
   */
  delistedFrom?: Readonly<Record<string, number>>;
}

/** Thrown for a symbol under fault injection, like a network error would be. */
export class SimulatedExchangeError extends Error {
  override readonly name = "SimulatedExchangeError";
}

interface CoinProfile {
  symbol: string;
  /** Hash of seed, symbol and use: the key of each independent random sequence of this coin. */
  streams: CoinStreams;
  logBase: number;
  /** Log-return standard deviation of one 15m step in a normal regime. */
  stepVolatility: number;
  /** Scale of the day-anchor octaves (amplitude = scale · √period). */
  anchorScale: number;
  quoteVolumePerStep: number;
  /** Prices are rounded to 1/priceScale (about 7 significant digits at the base price). */
  priceScale: number;
  volumeScale: number;
  /** Half the bid/ask spread, relative. */
  halfSpread: number;
  /** The coin's last day asked for, while its buffer is cached: a tick asks for the same day ~10 times per coin. */
  lastDay: CachedDay | undefined;
}

/** A generated day in the cache. */
interface CachedDay {
  coin: CoinProfile;
  day: number;
  data: Float64Array;
}

interface CoinStreams {
  anchor: number[];
  dayVolatility: number;
  regime: number;
  step: number;
  wick: number;
  volume: number;
  partial: number;
}

interface Ohlcv {
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
}

/** Amounts are multiples of 10⁻⁸ of a coin. */
const SIM_AMOUNT_SCALE = 1e8;
/** The smallest order the sim takes, in its quote currency (USDT), as large spot exchanges have. */
export const SIM_MIN_ORDER_COST = 10;

export class SimExchange implements MarketData {
  readonly id = "sim";
  private time: number;
  private readonly stepMs: number;
  private readonly wallClock: () => number;
  private readonly seedKey: number;
  private failing: Set<string>;
  private readonly profiles = new Map<string, CoinProfile>();
  private readonly days = new Map<string, CachedDay>();
  private readonly historyCacheDays: number;
  private readonly quoteCurrency: string;
  private readonly listedFrom: ReadonlyMap<string, number>;
  private readonly delistedFrom: ReadonlyMap<string, number>;
  // Scratch buffers for generating one day; generation is synchronous, so sharing is safe.
  private readonly walk = new Float64Array(STEPS_PER_DAY + 1);
  private readonly stepSigma = new Float64Array(STEPS_PER_DAY);
  private readonly stepActivity = new Float64Array(STEPS_PER_DAY);
  /** Buffers of days evicted from the cache, for the next days generated (freeBuffer). */
  private readonly spareBuffers: Float64Array[] = [];
  /** What `aggregate` fills in (synchronously, so one is enough). */
  private readonly values: Ohlcv = { open: 0, high: 0, low: 0, close: 0, volume: 0 };

  constructor(options: SimExchangeOptions) {
    this.wallClock = options.wallClock ?? Date.now;
    this.stepMs = options.stepMs ?? STEP_MS;
    if (!(this.stepMs > 0)) throw new RangeError(`sim stepMs must be positive (got ${this.stepMs})`);
    this.time = min(options.startTime, this.wallClock());
    this.seedKey = hashInts(mix32(options.seed | 0), mix32(floor(options.seed / 2 ** 32) | 0), 0x5eed);
    this.failing = new Set(options.failingSymbols ?? []);
    this.historyCacheDays = options.historyCacheDays ?? DEFAULT_HISTORY_CACHE_DAYS;
    this.quoteCurrency = options.quoteCurrency ?? "USDT";
    this.listedFrom = new Map(Object.entries(options.listedFrom ?? {}));
    this.delistedFrom = new Map(Object.entries(options.delistedFrom ?? {}));
  }

  now(): number {
    return this.time;
  }

  /**
   * True while the clock is a whole step or more behind the wall clock: the sim is replaying the
   * past, and a candle it reports as forming is a state of a moment already gone (its final,
   * closed state comes a few steps later). False once caught up, while it follows the wall clock.
   */
  replaying(): boolean {
    return this.time + this.stepMs <= this.wallClock();
  }

  /** Moves the clock one step forward, never past the wall clock (once caught up, it follows it). */
  advance(): number {
    this.time = min(this.time + this.stepMs, this.wallClock());
    return this.time;
  }

  /** Makes every call for these symbols throw until replaced (an empty set heals them). */
  failSymbols(symbols: Iterable<string>): void {
    this.failing = new Set(symbols);
  }

  /**
   * The default coins, then synthetic ones (S021 …), by volume. The sim quotes them in one
   * currency, the paper account's, so every coin it lists can be traded; none in another.
   */
  async topSymbols(count: number, quote: string): Promise<string[]> {
    if (quote !== this.quoteCurrency) return [];
    const wanted = min(max(0, floor(count)), SIM_MAX_SYMBOLS);
    const symbols: string[] = [];
    for (let rank = 1; symbols.length < wanted && rank <= SIM_MAX_SYMBOLS; rank += 1) {
      const base = DEFAULT_BASES[rank - 1] ?? syntheticBase(rank);
      if (base !== quote && this.delistedAt(`${base}/${quote}`) === undefined) symbols.push(`${base}/${quote}`);
    }
    return symbols;
  }

  /** Symbols outside the listing (simListing): another base or quote, lowercase, a contract's `:SETTLE`; and those delisted by now (delistedFrom). */
  async unknownSymbols(symbols: readonly string[]): Promise<string[]> {
    return symbols.filter((symbol) => !this.lists(symbol) || this.delistedAt(symbol) !== undefined);
  }

  /** When the coin was delisted, if it is by now (delistedFrom). */
  private delistedAt(symbol: string): number | undefined {
    const from = this.delistedFrom.get(symbol);
    return from !== undefined && this.time >= from ? from : undefined;
  }

  private lists(symbol: string): boolean {
    const match = SIM_SYMBOL.exec(symbol);
    return match !== null && match[2] === this.quoteCurrency && match[1] !== match[2] && listedBase(match[1] ?? "");
  }

  async fetchCandles(symbol: string, timeframe: Timeframe, since: number | undefined, limit: number): Promise<ExchangeCandle[]> {
    const coin = this.coin(symbol, "fetchOHLCV");
    const step = TIMEFRAME_MS[timeframe];
    const now = this.time;
    const last = alignToTimeframe(now, timeframe);
    const listed = ceil(max(SIM_LISTED_FROM, this.listedFrom.get(symbol) ?? SIM_LISTED_FROM) / step) * step;
    const requested = since === undefined ? last - (limit - 1) * step : ceil(since / step) * step;
    const first = max(requested, listed);
    if (!(limit > 0) || first > last) return [];
    const count = min(floor(limit), (last - first) / step + 1);
    const candles: ExchangeCandle[] = [];
    const values = this.values;
    for (let i = 0; i < count; i += 1) {
      const openTime = first + i * step;
      const isClosed = openTime + step <= now;
      this.aggregate(coin, openTime, isClosed ? openTime + step : now, values);
      candles.push({ openTime, open: values.open, high: values.high, low: values.low, close: values.close, volume: values.volume, isClosed });
    }
    return candles;
  }

  async fetchTicker(symbol: string): Promise<Ticker> {
    const coin = this.coin(symbol, "fetchTicker");
    const now = this.time;
    const last = this.aggregate(coin, alignToTimeframe(now, "15m"), now, this.values).close;
    const bid = max(1 / coin.priceScale, floor(last * (1 - coin.halfSpread) * coin.priceScale) / coin.priceScale);
    let ask = ceil(last * (1 + coin.halfSpread) * coin.priceScale) / coin.priceScale;
    if (ask <= bid) ask = (round(bid * coin.priceScale) + 1) / coin.priceScale;
    return { symbol, last, bid, ask, quoteVolume: this.quoteVolume24h(coin, now), timestamp: now };
  }

  /** Like a large spot exchange's: amounts to 8 decimals, orders worth at least SIM_MIN_ORDER_COST. */
  async orderRules(symbol: string): Promise<OrderRules> {
    this.coin(symbol, "orderRules");
    // The product is rounded to 15 digits first: 20530.27514788 × 10⁸ is 2053027514787.9998 in binary.
    const roundAmount = (amount: number) => floor(Number((amount * SIM_AMOUNT_SCALE).toPrecision(15))) / SIM_AMOUNT_SCALE;
    return { roundAmount, minAmount: 1 / SIM_AMOUNT_SCALE, minCost: SIM_MIN_ORDER_COST };
  }

  async close(): Promise<void> {
    this.days.clear();
    this.spareBuffers.length = 0;
    for (const coin of this.profiles.values()) coin.lastDay = undefined;
  }

  /** Generated days held in the cache (~3 KB each): two per coin in use plus the history allowance. */
  get cachedDays(): number {
    return this.days.size;
  }

  /** The coin's profile; a coin the sim does not list (or no longer lists) throws what ccxt's BadSymbol becomes. */
  private coin(symbol: string, operation: string): CoinProfile {
    if (this.failing.has(symbol)) throw new SimulatedExchangeError(`sim: simulated exchange failure for ${symbol}`);
    const delistedAt = this.delistedAt(symbol);
    if (delistedAt !== undefined) {
      throw new SymbolNotListedError(`sim ${operation} ${symbol} failed: sim no longer lists ${symbol} (delisted at ${new Date(delistedAt).toISOString()})`, this.id, operation, symbol);
    }
    let profile = this.profiles.get(symbol);
    if (!profile) {
      const match = SIM_SYMBOL.exec(symbol);
      if (!match || !this.lists(symbol)) throw new SymbolNotListedError(`sim does not list ${symbol}; it lists ${simListing(this.quoteCurrency)}`, this.id, operation, symbol);
      profile = this.createProfile(symbol, match[1] ?? "", match[2] ?? "");
      this.profiles.set(symbol, profile);
    }
    return profile;
  }

  private createProfile(symbol: string, base: string, quote: string): CoinProfile {
    const baseCoin = coinLevels(base);
    const price = USD_QUOTES.has(quote) ? baseCoin.usd : baseCoin.usd / coinLevels(quote).usd;
    const rank = coinRank(symbol, base);
    const digits = floor(log10(price));
    const dailyVolatility = baseCoin.dailyVol;
    const coinKey = hashInts(this.seedKey, fnv1a(symbol), 0);
    const stream = (id: number) => hashInts(coinKey, id, 0);
    return {
      symbol,
      streams: {
        anchor: ANCHOR_PERIODS_DAYS.map((period) => stream(STREAM_ANCHOR + period)),
        dayVolatility: stream(STREAM_DAY_VOLATILITY),
        regime: stream(STREAM_REGIME),
        step: stream(STREAM_STEP),
        wick: stream(STREAM_WICK),
        volume: stream(STREAM_VOLUME),
        partial: stream(STREAM_PARTIAL),
      },
      logBase: log(price),
      stepVolatility: dailyVolatility / sqrt(STEPS_PER_DAY),
      // Daily anchor changes then have roughly the coin's daily volatility (see anchor()).
      anchorScale: dailyVolatility * 0.75,
      quoteVolumePerStep: (TOP_DAILY_QUOTE_VOLUME * rank ** -1.15) / STEPS_PER_DAY,
      priceScale: 10 ** clamp(6 - digits, 0, 12),
      volumeScale: 10 ** clamp(digits + 2, 0, 8),
      halfSpread: rank <= SIM_DEFAULT_SYMBOLS.length ? 0.00005 : 0.0005,
      lastDay: undefined,
    };
  }

  /**
   * OHLCV of the 15m candles from `openTime` up to `until` (the last one partial when `until` is inside it),
   * into `out` and returned: a fetch reads it into the candle it makes, so no second object per candle.
   */
  private aggregate(coin: CoinProfile, openTime: number, until: number, out: Ohlcv): Ohlcv {
    const day = floor(openTime / DAY_MS);
    let data = this.day(coin, day);
    let dayStart = day * DAY_MS;
    const first = (openTime - dayStart) / STEP_MS;
    const open = data[PATH + first] ?? 0;
    out.open = open;
    out.high = open;
    out.low = open;
    out.close = open;
    out.volume = 0;
    // Timeframes up to 1d divide a UTC day and stay inside one generated day; moving
    // to the next day keeps any longer span correct too.
    for (let t = openTime; t < until; t += STEP_MS) {
      if (t >= dayStart + DAY_MS) {
        dayStart += DAY_MS;
        data = this.day(coin, dayStart / DAY_MS);
      }
      const j = (t - dayStart) / STEP_MS;
      if (t + STEP_MS <= until) {
        out.high = max(out.high, data[HIGH + j] ?? 0);
        out.low = min(out.low, data[LOW + j] ?? 0);
        out.close = data[PATH + j + 1] ?? 0;
        out.volume += data[VOLUME + j] ?? 0;
      } else {
        const partial = this.partialStep(coin, data, j, (until - t) / STEP_MS, until);
        out.high = max(out.high, partial.high);
        out.low = min(out.low, partial.low);
        out.close = partial.close;
        out.volume += partial.volume;
      }
    }
    out.volume = roundTo(out.volume, coin.volumeScale);
    return out;
  }

  /**
   * The 15m candle at index `j` of the day when only `fraction` of it has passed:
   * the close follows a bridge from open to the final close (jitter fixed per
   * minute of `now`), and high/low/volume grow towards their final values; it
   * never leaves the final candle's range.
   */
  private partialStep(coin: CoinProfile, data: Float64Array, j: number, fraction: number, now: number): Ohlcv {
    const open = data[PATH + j] ?? 0;
    const finalClose = data[PATH + j + 1] ?? 0;
    const finalHigh = data[HIGH + j] ?? 0;
    const finalLow = data[LOW + j] ?? 0;
    const jitter = normal(coin.streams.partial, floor(now / 60_000));
    const spread = log(finalHigh / finalLow) / 2;
    const logClose = log(open) + log(finalClose / open) * fraction + jitter * spread * sqrt(fraction * (1 - fraction));
    const close = clamp(roundTo(exp(logClose), coin.priceScale), finalLow, finalHigh);
    return {
      open,
      high: max(open, close, roundTo(open + (finalHigh - open) * fraction, coin.priceScale)),
      low: min(open, close, roundTo(open - (open - finalLow) * fraction, coin.priceScale)),
      close,
      volume: (data[VOLUME + j] ?? 0) * fraction,
    };
  }

  private quoteVolume24h(coin: CoinProfile, now: number): number {
    let total = 0;
    const current = alignToTimeframe(now, "15m");
    const from = current - (STEPS_PER_DAY - 1) * STEP_MS;
    for (let day = floor(from / DAY_MS); day * DAY_MS <= current; day += 1) {
      const data = this.day(coin, day);
      const firstJ = max(0, (from - day * DAY_MS) / STEP_MS);
      const lastJ = min(STEPS_PER_DAY - 1, (current - day * DAY_MS) / STEP_MS);
      for (let j = firstJ; j <= lastJ; j += 1) {
        const t = day * DAY_MS + j * STEP_MS;
        const passed = t + STEP_MS <= now ? 1 : (now - t) / STEP_MS;
        total += (data[VOLUME + j] ?? 0) * (data[PATH + j + 1] ?? 0) * passed;
      }
    }
    return round(total * 100) / 100;
  }

  /** One generated day of a coin, from the cache when present. */
  private day(coin: CoinProfile, day: number): Float64Array {
    // The coin's last day again: no key text, no cache lookup (a tick asks for it per timeframe). It is not
    // marked recently used then; an eviction it causes only costs a regeneration (days are deterministic).
    if (coin.lastDay?.day === day) return coin.lastDay.data;
    const key = `${coin.symbol}@${day}`;
    let entry = this.days.get(key);
    if (entry) {
      // Re-inserting marks it most recently used (Map keeps insertion order).
      this.days.delete(key);
      this.days.set(key, entry);
    } else {
      entry = { coin, day, data: this.generateDay(coin, day, this.freeBuffer()) };
      this.days.set(key, entry);
    }
    coin.lastDay = entry;
    return entry.data;
  }

  /**
   * A buffer for one more day: the least recently used day's when the cache is full (its coin
   * forgets it), else a new one. Room stays for today and yesterday of every coin in use, so a
   * tick never thrashes. Recycling instead of allocating: a backfill generates many days, and
   * that many short-lived buffers (freed only at the next GC) fragment the malloc heap, which
   * keeps the RSS high after start-up. A full cache gives up its least recently used
   * quarter of the history allowance at once: the map's deleted entries, which each search for the
   * oldest one walked past again, are passed once per batch instead of once per day.
   */
  private freeBuffer(): Float64Array {
    const spare = this.spareBuffers.pop();
    if (spare !== undefined) return spare;
    const capacity = 2 * this.profiles.size + this.historyCacheDays;
    if (this.days.size < capacity) return new Float64Array(DAY_LENGTH);
    const keep = capacity - Math.max(1, this.historyCacheDays >> 2);
    for (const [oldest, entry] of this.days) {
      if (this.days.size <= keep) break;
      this.days.delete(oldest);
      if (entry.coin.lastDay === entry) entry.coin.lastDay = undefined;
      this.spareBuffers.push(entry.data);
    }
    return this.spareBuffers.pop() ?? new Float64Array(DAY_LENGTH);
  }

  /** Fills `data` (every element is written) with the day's 15m path, highs, lows and volumes. */
  private generateDay(coin: CoinProfile, day: number, data: Float64Array): Float64Array {
    const { walk, stepSigma, stepActivity } = this;
    const { streams, stepVolatility, priceScale, volumeScale } = coin;
    const dayVolatility = stepVolatility * exp(0.35 * smoothNoise(streams.dayVolatility, day, 6));
    const firstStep = day * STEPS_PER_DAY;

    // Regime-switching random walk over the day's 96 steps.
    walk[0] = 0;
    for (let start = 0, regime = 0; start < STEPS_PER_DAY; regime += 1) {
      const h = hashAt(streams.regime, firstStep + regime);
      const length = 8 + (h % 40);
      const trend = REGIME_TRENDS[(h >>> 8) % REGIME_TRENDS.length] ?? 0;
      const volatility = REGIME_VOLATILITY[(h >>> 16) % REGIME_VOLATILITY.length] ?? 1;
      const sigma = dayVolatility * volatility;
      // Busier trading in volatile regimes.
      const activity = (sigma / stepVolatility) ** 0.7;
      const end = min(STEPS_PER_DAY, start + length);
      for (let j = start; j < end; j += 1) {
        stepSigma[j] = sigma;
        stepActivity[j] = activity;
        walk[j + 1] = (walk[j] ?? 0) + sigma * (trend + normal(streams.step, firstStep + j));
      }
      start = end;
    }

    // Bridge: start on today's anchor, end on tomorrow's, so days join up.
    const anchorStart = this.anchor(coin, day);
    const correction = (this.anchor(coin, day + 1) - anchorStart - (walk[STEPS_PER_DAY] ?? 0)) / STEPS_PER_DAY;
    const minPrice = 1 / priceScale;
    let open = max(minPrice, roundTo(exp(anchorStart), priceScale));
    data[PATH] = open;
    for (let j = 0; j < STEPS_PER_DAY; j += 1) {
      const close = max(minPrice, roundTo(exp(anchorStart + (walk[j + 1] ?? 0) + correction * (j + 1)), priceScale));
      const sigma = stepSigma[j] ?? 0;
      const h = hashAt(streams.wick, firstStep + j);
      const top = max(open, close);
      const bottom = min(open, close);
      // Wicks average ~0.4σ on each side, about what a Brownian path's range adds to its body.
      data[PATH + j + 1] = close;
      data[HIGH + j] = max(top, roundTo(top * (1 + sigma * 0.8 * ((h & 0xffff) / 0x10000)), priceScale));
      data[LOW + j] = max(minPrice, min(bottom, roundTo(bottom * (1 - sigma * 0.8 * ((h >>> 16) / 0x10000)), priceScale)));
      // More volume on big moves, log-normal noise around the coin's level.
      const move = abs(close - open) / (open * stepVolatility);
      const noise = exp(0.4 * normal(streams.volume, firstStep + j));
      data[VOLUME + j] = roundTo((coin.quoteVolumePerStep * (stepActivity[j] ?? 1) * (0.6 + 0.4 * move) * noise) / ((open + close) / 2), volumeScale);
      open = close;
    }
    return data;
  }

  /**
   * Log price at the start of `day`: smooth noise octaves with amplitude ∝ √period,
   * which changes like a random walk over each octave's period but never drifts away.
   */
  private anchor(coin: CoinProfile, day: number): number {
    let value = coin.logBase;
    ANCHOR_PERIODS_DAYS.forEach((period, octave) => {
      value += coin.anchorScale * sqrt(period) * smoothNoise(coin.streams.anchor[octave] ?? 0, day, period);
    });
    return value;
  }
}

/** "S021" for rank 21: synthetic coins after the default ones. */
function syntheticBase(rank: number): string {
  return `S${String(rank).padStart(3, "0")}`;
}

/** Position in the sim's volume ranking: the default coins first, synthetic ones by number, others far behind. */
function coinRank(symbol: string, base: string): number {
  const listed = SIM_DEFAULT_SYMBOLS.indexOf(symbol);
  if (listed >= 0) return listed + 1;
  const synthetic = SYNTHETIC_BASE.exec(base);
  if (synthetic) return max(SIM_DEFAULT_SYMBOLS.length + 1, Number(synthetic[1]));
  return 1000 + (fnv1a(symbol) % 4000);
}

/** Price level and volatility of a currency: the table for known coins, a hash-spread guess otherwise. */
function coinLevels(currency: string): { usd: number; dailyVol: number } {
  if (USD_QUOTES.has(currency)) return { usd: 1, dailyVol: 0.001 };
  const known = KNOWN_COINS[currency];
  if (known) return known;
  const h = hashInts(fnv1a(currency), STREAM_COIN_LEVELS, 0);
  // Prices from 0.001 to 10,000 and daily volatility from 3% to 8%.
  return { usd: 10 ** (-3 + 7 * ((h & 0xffff) / 0x10000)), dailyVol: 0.03 + 0.05 * ((h >>> 16) / 0x10000) };
}

/** Value noise: hashed normal values every `period` units, joined by smoothstep curves. */
function smoothNoise(stream: number, x: number, period: number): number {
  const position = x / period;
  const cell = floor(position);
  const t = position - cell;
  const eased = t * t * (3 - 2 * t);
  const from = normal(stream, cell);
  return from + (normal(stream, cell + 1) - from) * eased;
}

const SQRT3 = sqrt(3);

/** Approximately standard normal (Irwin–Hall of four 16-bit uniforms): arithmetic only, so identical everywhere. */
function normal(stream: number, index: number): number {
  const a = hashAt(stream, index);
  const b = mix32(a ^ 0x6a09e667);
  const sum = (a & 0xffff) + (a >>> 16) + (b & 0xffff) + (b >>> 16);
  return (sum / 0x10000 - 2) * SQRT3;
}

/** The `index`-th 32-bit value of a random sequence (indices may be negative: their low 32 bits count). */
function hashAt(stream: number, index: number): number {
  return mix32(stream ^ imul(index | 0, 0xcc9e2d51));
}

/** murmur3's 32-bit finalizer. */
function mix32(value: number): number {
  let h = value;
  h ^= h >>> 16;
  h = imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Hash of three 32-bit integers (indices may be negative: only their low 32 bits count). */
function hashInts(a: number, b: number, c: number): number {
  let h = mix32(a ^ 0x9e3779b9);
  h = mix32(h ^ imul(b | 0, 0xcc9e2d51));
  return mix32(h ^ imul(c | 0, 0x1b873593));
}

function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i += 1) h = imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** Rounds to 1/scale; dividing an integer by a power of ten gives the shortest decimal (65432.1, not 65432.100000000006). */
function roundTo(value: number, scale: number): number {
  return round(value * scale) / scale;
}

function clamp(value: number, lowest: number, highest: number): number {
  return min(highest, max(lowest, value));
}
