import { candleValuesProblem, seriesProblem, writeCandleSeries, type Database, type RejectedCandle, type SaveCandlesOptions, type StoredSeries } from "@candlekeep/db";
import type { Logger, Timeframe } from "@candlekeep/core";
import type { ExchangeCandle } from "../exchange/types";
import type { CandleColumns } from "./columns";
import { PendingCandles } from "./pending";
import { CandleSeries } from "./series";

/**
 * Holds, per series, the recent candles the strategy reads, and the candles not
 * yet written to the database (the pending batch). The pending batch is only
 * ever emptied by a successful write: a failed flush keeps every row for the
 * next one, so nothing accepted is lost.
 *
 * Memory is bounded: when `maxPending` rows wait (those being written
 * included), `add` refuses new candles and the series' fetch cursor does not
 * move, so they are fetched again once the database has caught up.
 *
 * While the exchange replays the past (the sim catching up to the clock), its
 * forming candles are states of moments already gone, superseded a few steps
 * later by the closed candle: they are held for the strategy and the latest
 * price but not written, which is most of a replay's rows (1,500 of 2,500 per
 * tick at 500 coins). Once caught up, forming candles are written again.
 *
 * At most one write runs at a time (`startFlush`): candles added while it runs
 * wait in the pending batch for the next one, so a slow database delays writes
 * but never the ticks that add candles.
 */

export interface AddResult {
  /** Candles queued for the next write. */
  accepted: number;
  rejected: RejectedCandle[];
  /** Candles refused because the pending batch is full (fetched again later). */
  deferred: number;
}

export interface FlushResult {
  written: number;
  flushed: number;
}

const NO_CANDLES: CandleColumns = Object.freeze({
  length: 0,
  openTime: new Float64Array(0),
  open: new Float64Array(0),
  high: new Float64Array(0),
  low: new Float64Array(0),
  close: new Float64Array(0),
  volume: new Float64Array(0),
});

export class CandleManager {
  /** symbol → timeframe → series; nested so lookups in the tick's hot path build no key strings. */
  private readonly series = new Map<string, Partial<Record<Timeframe, CandleSeries>>>();
  private pending: PendingCandles;
  /** A written batch, cleared, to become the next pending batch (PendingCandles.clear). */
  private spare: PendingCandles | undefined;
  /** The batch being written and its outcome, while a write runs. */
  private writing: { batch: PendingCandles; done: Promise<FlushResult> } | undefined;
  private pendingFullLogged = false;
  /** Whether the last `add` saw the exchange replaying; a change is logged. */
  private replayingSeen = false;

  constructor(
    private readonly options: {
      exchange: string;
      historyCandles: number;
      maxPending: number;
      logger: Logger;
      /** The exchange's clock: candles opening in its future are rejected. */
      now: () => number;
      /** PostgreSQL cancels a write statement running longer (the batch stays pending). */
      writeTimeoutMs?: number;
      /** True while the exchange replays the past (SimExchange.replaying); a real exchange never does. */
      replaying?: () => boolean;
    },
  ) {
    this.pending = new PendingCandles(options.exchange);
  }

  /** Candles not yet in the database: waiting, or in the write that is running. */
  get pendingCount(): number {
    return this.pending.size + (this.writing?.batch.size ?? 0);
  }

  /** True while a write runs. */
  get flushing(): boolean {
    return this.writing !== undefined;
  }

  /** Seeds the in-memory history from stored series (already in the database, not pending). */
  restore(stored: readonly StoredSeries[]): void {
    for (const series of stored) this.seriesFor(series.symbol, series.timeframe).putStored(series);
  }

  /** openTime of the newest candle known for the series (stored or pending); fetches resume there. */
  lastOpenTime(symbol: string, timeframe: Timeframe): number | undefined {
    return this.series.get(symbol)?.[timeframe]?.lastOpenTime();
  }

  /** Close of the series' newest candle (it may be forming): the latest price seen. */
  lastClose(symbol: string, timeframe: Timeframe): number | undefined {
    return this.series.get(symbol)?.[timeframe]?.lastClose();
  }

  /** The series' closed candles, oldest first, as views valid until the next `add` or `restore`. */
  closedColumns(symbol: string, timeframe: Timeframe): CandleColumns {
    return this.series.get(symbol)?.[timeframe]?.closedColumns() ?? NO_CANDLES;
  }

  /** The series' candles opening at or after `since`, oldest first, the forming one included: what moved since a check. */
  candlesSince(symbol: string, timeframe: Timeframe, since: number): ExchangeCandle[] {
    return this.series.get(symbol)?.[timeframe]?.since(since) ?? [];
  }

  /**
   * Validates fetched candles and queues the valid ones for the next flush.
   * Unchanged candles (same values as held) are not queued again, nor, during
   * a replay, forming ones (see the class comment).
   */
  add(symbol: string, timeframe: Timeframe, fetched: readonly ExchangeCandle[]): AddResult {
    const result: AddResult = { accepted: 0, rejected: [], deferred: 0 };
    const now = this.options.now();
    const { exchange } = this.options;
    const held = this.series.get(symbol)?.[timeframe];
    const replaying = this.options.replaying?.() ?? false;
    if (replaying !== this.replayingSeen) {
      this.replayingSeen = replaying;
      this.options.logger.info(replaying ? "the exchange replays the past: closed candles only are written until it catches up" : "caught up with the clock: forming candles are written again");
    }
    const seriesReason = seriesProblem(exchange, symbol, timeframe);
    const accepted: ExchangeCandle[] = [];
    const unwritten: ExchangeCandle[] = [];
    let firstDeferredTime = Number.POSITIVE_INFINITY;
    for (const candle of fetched) {
      // A candle held with the same values was validated when it was accepted.
      if (held?.holds(candle)) continue;
      const reason = seriesReason ?? candleValuesProblem(candle, timeframe, now);
      if (reason !== undefined) {
        // Field by field: a spread here showed in the tick's fetch phase.
        const { openTime, open, high, low, close, volume, isClosed } = candle;
        result.rejected.push({ candle: { exchange, symbol, timeframe, openTime, open, high, low, close, volume, isClosed }, reason });
        continue;
      }
      if (replaying && !candle.isClosed) {
        unwritten.push(candle);
        continue;
      }
      if (this.pendingCount >= this.options.maxPending && !this.pending.has(symbol, timeframe, candle.openTime)) {
        result.deferred += 1;
        firstDeferredTime = Math.min(firstDeferredTime, candle.openTime);
        continue;
      }
      this.pending.set(symbol, timeframe, candle);
      accepted.push(candle);
    }
    if (result.deferred > 0 && !this.pendingFullLogged) {
      this.pendingFullLogged = true;
      this.options.logger.warn("pending candle limit reached; fetching pauses until the database catches up", {
        maxPendingCandles: this.options.maxPending,
      });
    }
    result.accepted = accepted.length;
    // Deferred candles must be fetched again: only advance the series up to
    // the last candle accepted before the first deferral.
    if (accepted.length > 0 || unwritten.length > 0) {
      const series = this.seriesFor(symbol, timeframe);
      for (const candle of accepted) if (candle.openTime < firstDeferredTime) series.put(candle);
      for (const candle of unwritten) if (candle.openTime < firstDeferredTime) series.put(candle, true);
    }
    return result;
  }

  /**
   * Starts writing every pending candle of every series in one bulk upsert and
   * returns its outcome. If a write is running already, no second one starts:
   * its outcome is returned and the candles queued meanwhile wait for the next.
   * On failure the batch is put back (newer values queued meanwhile win) and
   * the error raised. `secondHalfFrom`: see SaveCandlesOptions.
   */
  startFlush(db: Pick<Database, "sql"> & Partial<Pick<Database, "pool">>, secondHalfFrom?: Promise<unknown>): Promise<FlushResult> {
    if (this.writing) return this.writing.done;
    if (this.pending.size === 0) return Promise.resolve({ written: 0, flushed: 0 });
    const batch = this.pending;
    this.pending = this.spare ?? new PendingCandles(this.options.exchange);
    this.spare = undefined;
    // write() settles asynchronously, so `writing` is always set before it is cleared.
    const done = this.write(db, batch, secondHalfFrom);
    this.writing = { batch, done };
    return done;
  }

  /**
   * Writes everything pending: waits for a running write (whose failure puts
   * its candles back), then writes the rest. For the backfill and shutdown,
   * where no tick adds candles meanwhile.
   */
  async flushPending(db: Pick<Database, "sql"> & Partial<Pick<Database, "pool">>): Promise<FlushResult> {
    await this.writing?.done.catch(() => undefined);
    return this.startFlush(db);
  }

  private async write(db: Pick<Database, "sql"> & Partial<Pick<Database, "pool">>, batch: PendingCandles, secondHalfFrom: Promise<unknown> | undefined): Promise<FlushResult> {
    try {
      const timeout = this.options.writeTimeoutMs;
      const options: SaveCandlesOptions = { ...(timeout === undefined ? {} : { statementTimeoutMs: timeout }), ...(secondHalfFrom ? { secondHalfFrom } : {}) };
      // Every candle was validated as it was queued, and is held once per key.
      const written = await writeCandleSeries(db, batch.series(), options);
      this.writing = undefined;
      const flushed = batch.size;
      batch.clear();
      this.spare = batch;
      if (this.pendingFullLogged && this.pending.size < this.options.maxPending) {
        this.pendingFullLogged = false;
        this.options.logger.info("pending candles written; fetching resumes", { written });
      }
      return { written, flushed };
    } catch (error) {
      this.writing = undefined;
      batch.setAll(this.pending);
      this.pending = batch;
      throw error;
    }
  }

  private seriesFor(symbol: string, timeframe: Timeframe): CandleSeries {
    let bySymbol = this.series.get(symbol);
    if (!bySymbol) {
      bySymbol = {};
      this.series.set(symbol, bySymbol);
    }
    return (bySymbol[timeframe] ??= new CandleSeries(this.options.historyCandles));
  }
}
