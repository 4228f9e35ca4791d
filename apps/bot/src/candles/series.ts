import type { StoredSeries } from "@candlekeep/db";
import type { ExchangeCandle } from "../exchange/types";
import type { CandleColumns } from "./columns";

/** A held candle's state (one byte per candle). */
const FORMING = 0;
const CLOSED = 1;
/** Forming, and not going to the database: a replay's state of a moment already gone (CandleManager.add). */
const FORMING_UNWRITTEN = 2;

/**
 * The recent candles of one series, oldest first, stored as columns of numbers
 * in one buffer: 49 bytes a candle instead of an object and six boxed numbers
 * (~110 bytes), which is most of the bot's heap at hundreds of coins.
 *
 * Holds at least the newest `keep` candles; older ones are dropped in steps,
 * so the copy happens once per many candles, not per candle. The buffer is
 * allocated once, full size: growing it by steps left the freed smaller
 * buffers as holes in the process's malloc heap (RSS that never came back), and a series fills up within its first backfill anyway.
 */
export class CandleSeries {
  private readonly openTimes: Float64Array;
  private readonly opens: Float64Array;
  private readonly highs: Float64Array;
  private readonly lows: Float64Array;
  private readonly closes: Float64Array;
  private readonly volumes: Float64Array;
  private readonly states: Uint8Array;
  private readonly columns: readonly (Float64Array | Uint8Array)[];
  private count = 0;

  constructor(private readonly keep: number) {
    const capacity = keep + Math.max(16, keep >> 3);
    // One buffer for all columns: one allocation per series instead of seven.
    const buffer = new ArrayBuffer(capacity * (6 * Float64Array.BYTES_PER_ELEMENT + 1));
    const column = (k: number) => new Float64Array(buffer, k * capacity * Float64Array.BYTES_PER_ELEMENT, capacity);
    this.openTimes = column(0);
    this.opens = column(1);
    this.highs = column(2);
    this.lows = column(3);
    this.closes = column(4);
    this.volumes = column(5);
    this.states = new Uint8Array(buffer, 6 * capacity * Float64Array.BYTES_PER_ELEMENT, capacity);
    this.columns = [this.openTimes, this.opens, this.highs, this.lows, this.closes, this.volumes, this.states];
  }

  /** openTime of the newest candle; undefined when empty. */
  lastOpenTime(): number | undefined {
    return this.count > 0 ? this.openTimes[this.count - 1] : undefined;
  }

  /** Close of the newest candle (closed or forming); undefined when empty. */
  lastClose(): number | undefined {
    return this.count > 0 ? this.closes[this.count - 1] : undefined;
  }

  /**
   * True when a candle with the same openTime and the same values is held, and
   * was not put as unwritten: that one, fetched again unchanged, must be written then.
   */
  holds(candle: ExchangeCandle): boolean {
    const i = this.indexOf(candle.openTime);
    return (
      i >= 0 &&
      this.states[i] === (candle.isClosed ? CLOSED : FORMING) &&
      this.opens[i] === candle.open &&
      this.highs[i] === candle.high &&
      this.lows[i] === candle.low &&
      this.closes[i] === candle.close &&
      this.volumes[i] === candle.volume
    );
  }

  /**
   * The closed candles (all but a forming last one), as views into the store:
   * valid until the next `put`, which may move or overwrite them.
   */
  closedColumns(): CandleColumns {
    const n = this.count > 0 && this.states[this.count - 1] !== CLOSED ? this.count - 1 : this.count;
    return {
      length: n,
      openTime: this.openTimes.subarray(0, n),
      open: this.opens.subarray(0, n),
      high: this.highs.subarray(0, n),
      low: this.lows.subarray(0, n),
      close: this.closes.subarray(0, n),
      volume: this.volumes.subarray(0, n),
    };
  }

  /** The candles opening at or after `since`, oldest first, the forming last one included, as copies. */
  since(since: number): ExchangeCandle[] {
    const candles: ExchangeCandle[] = [];
    for (let i = this.insertionPoint(since); i < this.count; i += 1) {
      candles.push({
        openTime: this.openTimes[i] as number,
        open: this.opens[i] as number,
        high: this.highs[i] as number,
        low: this.lows[i] as number,
        close: this.closes[i] as number,
        volume: this.volumes[i] as number,
        isClosed: this.states[i] === CLOSED,
      });
    }
    return candles;
  }

  /**
   * Adds a candle, or replaces the one held with the same openTime. `unwritten`:
   * a forming candle the database will not get (see `holds`).
   */
  put(candle: ExchangeCandle, unwritten = false): void {
    const index = this.slotFor(candle.openTime);
    this.openTimes[index] = candle.openTime;
    this.opens[index] = candle.open;
    this.highs[index] = candle.high;
    this.lows[index] = candle.low;
    this.closes[index] = candle.close;
    this.volumes[index] = candle.volume;
    this.states[index] = candle.isClosed ? CLOSED : unwritten ? FORMING_UNWRITTEN : FORMING;
  }

  /** Adds stored candles given as columns, oldest first (a restore: no object per candle). */
  putStored(stored: StoredSeries): void {
    for (let i = 0; i < stored.length; i += 1) {
      const openTime = stored.openTime[i] as number;
      const index = this.slotFor(openTime);
      this.openTimes[index] = openTime;
      this.opens[index] = stored.open[i] as number;
      this.highs[index] = stored.high[i] as number;
      this.lows[index] = stored.low[i] as number;
      this.closes[index] = stored.close[i] as number;
      this.volumes[index] = stored.volume[i] as number;
      this.states[index] = stored.isClosed[i] === 1 ? CLOSED : FORMING;
    }
  }

  /** Where the candle opening at `openTime` goes: its own slot if held, else a new one in order. */
  private slotFor(openTime: number): number {
    const last = this.lastOpenTime();
    if (last === undefined || openTime > last) {
      this.makeRoom();
      this.count += 1;
      return this.count - 1;
    }
    let index = this.insertionPoint(openTime);
    if (this.openTimes[index] !== openTime) {
      this.makeRoom();
      // makeRoom may have dropped old candles: find the place again.
      index = this.insertionPoint(openTime);
      this.shiftRight(index);
      this.count += 1;
    }
    return index;
  }

  /** Index of the candle opening at `openTime`; -1 when absent. */
  private indexOf(openTime: number): number {
    const i = this.insertionPoint(openTime);
    return i < this.count && this.openTimes[i] === openTime ? i : -1;
  }

  /** First index whose openTime is ≥ `openTime` (binary search). */
  private insertionPoint(openTime: number): number {
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.openTimes[mid] as number) < openTime) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Ensures one free slot: when the buffer is full, drops the oldest candles down to `keep − 1`. */
  private makeRoom(): void {
    if (this.count < this.openTimes.length) return;
    const drop = this.count - this.keep + 1;
    for (const column of this.columns) column.copyWithin(0, drop, this.count);
    this.count -= drop;
  }

  private shiftRight(from: number): void {
    for (const column of this.columns) column.copyWithin(from + 1, from, this.count);
  }
}
