import type { Candle, Timeframe } from "@candlekeep/core";
import { seriesCandleAt, type SeriesColumns } from "@candlekeep/db";

/**
 * One series' candles waiting for the database, as columns in open-time order,
 * at most one per open time. Candles mostly come newest last, so a set is an
 * append; one for an open time held replaces it in place. The columns may hold
 * stale entries past `length` once the batch is cleared for reuse.
 */
class PendingSeries implements SeriesColumns {
  readonly openTime: number[];
  readonly open: number[];
  readonly high: number[];
  readonly low: number[];
  readonly close: number[];
  readonly volume: number[];
  readonly isClosed: number[];
  private count = 1;

  /** Holds `first`: columns made from literals hold one candle, where a first push makes room for many, kept while the batch is reused. */
  constructor(
    readonly exchange: string,
    readonly symbol: string,
    readonly timeframe: Timeframe,
    first: Candle,
  ) {
    this.openTime = [first.openTime];
    this.open = [first.open];
    this.high = [first.high];
    this.low = [first.low];
    this.close = [first.close];
    this.volume = [first.volume];
    this.isClosed = [first.isClosed ? 1 : 0];
  }

  get length(): number {
    return this.count;
  }

  has(openTime: number): boolean {
    const i = this.insertionPoint(openTime);
    return i < this.count && this.openTime[i] === openTime;
  }

  /** Holds `candle` at its open time; true when that open time was not held before. */
  set(candle: Candle): boolean {
    const n = this.count;
    const i = n === 0 || candle.openTime > (this.openTime[n - 1] as number) ? n : this.insertionPoint(candle.openTime);
    const added = i === n || this.openTime[i] !== candle.openTime;
    if (added) {
      if (i < n) {
        for (const column of this.columns()) {
          // Slot n first: copyWithin never lengthens an array.
          column[n] = 0;
          column.copyWithin(i + 1, i, n);
        }
      }
      this.count = n + 1;
    }
    this.openTime[i] = candle.openTime;
    this.open[i] = candle.open;
    this.high[i] = candle.high;
    this.low[i] = candle.low;
    this.close[i] = candle.close;
    this.volume[i] = candle.volume;
    this.isClosed[i] = candle.isClosed ? 1 : 0;
    return added;
  }

  /** Holds nothing; the columns keep their room for the next batch. */
  clear(): void {
    this.count = 0;
  }

  private columns(): number[][] {
    return [this.openTime, this.open, this.high, this.low, this.close, this.volume, this.isClosed];
  }

  /** First index below `length` whose open time is ≥ `openTime` (binary search). */
  private insertionPoint(openTime: number): number {
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.openTime[mid] as number) < openTime) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/**
 * Largest batch whose series are kept for reuse when it is cleared: a tick's
 * batch, even at thousands of coins. A backfill's larger batches are let go,
 * so their columns' room is not held for good.
 */
const REUSED_BATCH_MAX_CANDLES = 16_384;

/**
 * Candles waiting for the database, per series, one per key (the last values
 * set win), handed to writeCandleSeries as they are held: as columns of
 * numbers, without an object or a map entry per candle (which, for a
 * backfill's hundreds of thousands of candles, cost more of the bot's time
 * than the write's encoding). A written batch is cleared and reused (`clear`):
 * a tick's thousands of series with a candle or two each would otherwise
 * allocate seven new arrays per series every tick.
 */
export class PendingCandles {
  /** symbol → timeframe → series; nested so lookups build no key strings. */
  private readonly bySymbol = new Map<string, Partial<Record<Timeframe, PendingSeries>>>();
  private count = 0;
  /** The series set last: a page of candles goes to one series. */
  private last: PendingSeries | undefined;

  constructor(private readonly exchange: string) {}

  get size(): number {
    return this.count;
  }

  has(symbol: string, timeframe: Timeframe, openTime: number): boolean {
    return this.bySymbol.get(symbol)?.[timeframe]?.has(openTime) ?? false;
  }

  set(symbol: string, timeframe: Timeframe, candle: Candle): void {
    const held = this.seriesFor(symbol, timeframe);
    if (held === undefined) {
      this.hold(new PendingSeries(this.exchange, symbol, timeframe, candle));
      this.count += 1;
    } else if (held.set(candle)) this.count += 1;
  }

  /** Sets every candle of `newer` over these: what a failed write's batch becomes when candles were queued meanwhile. */
  setAll(newer: PendingCandles): void {
    for (const series of newer.series()) {
      for (let i = 0; i < series.length; i += 1) this.set(series.symbol, series.timeframe, seriesCandleAt(series, i));
    }
  }

  /** Holds nothing again, keeping a tick-sized batch's series and their columns for the next batch. */
  clear(): void {
    if (this.count > REUSED_BATCH_MAX_CANDLES) this.bySymbol.clear();
    else for (const byTimeframe of this.bySymbol.values()) for (const series of Object.values(byTimeframe)) series?.clear();
    this.count = 0;
    this.last = undefined;
  }

  /** The series holding candles, for writeCandleSeries. */
  series(): PendingSeries[] {
    const all: PendingSeries[] = [];
    for (const byTimeframe of this.bySymbol.values()) {
      for (const series of Object.values(byTimeframe)) if (series !== undefined && series.length > 0) all.push(series);
    }
    return all;
  }

  private seriesFor(symbol: string, timeframe: Timeframe): PendingSeries | undefined {
    const last = this.last;
    if (last !== undefined && last.symbol === symbol && last.timeframe === timeframe) return last;
    const series = this.bySymbol.get(symbol)?.[timeframe];
    if (series !== undefined) this.last = series;
    return series;
  }

  private hold(series: PendingSeries): void {
    let bySymbol = this.bySymbol.get(series.symbol);
    if (!bySymbol) {
      bySymbol = {};
      this.bySymbol.set(series.symbol, bySymbol);
    }
    bySymbol[series.timeframe] = series;
    this.last = series;
  }
}
