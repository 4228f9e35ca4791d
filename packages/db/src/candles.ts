import { isTimeframe, TIMEFRAME_MS, type Candle, type Timeframe } from "@candlekeep/core";
import type { Database } from "./connect";
import { CandleMap } from "./candle-map";
import { seriesCandleAt, writeCandleSeries, type SaveCandlesOptions, type SeriesColumns } from "./candle-write";
import { PG_EPOCH_MS } from "./copy-binary";

/** A candle as the bot hands it to the database: the candle and the series it belongs to. */
export interface CandleInput extends Candle {
  exchange: string;
  symbol: string;
  timeframe: string;
}

export interface StoredCandle extends CandleInput {
  timeframe: Timeframe;
}

export interface RejectedCandle {
  candle: CandleInput;
  reason: string;
}

export interface SaveCandlesResult {
  /** Rows inserted or changed. Re-sending an identical candle writes nothing. */
  written: number;
  /** Valid rows sent to the database (after merging duplicates within the batch). */
  accepted: number;
  rejected: RejectedCandle[];
}

// Earlier than any exchange's data (the first Bitcoin block) is a unit mistake.
const EARLIEST_OPEN_TIME = Date.UTC(2009, 0, 3);

function priceProblem(name: string, value: number): string | undefined {
  return Number.isFinite(value) && value > 0 ? undefined : `${name} must be a finite positive price (got ${value})`;
}

/** Why no candle of this series can be stored (a name empty, the timeframe unknown), or undefined when none of that is wrong. */
export function seriesProblem(exchange: string, symbol: string, timeframe: string): string | undefined {
  if (!exchange) return "exchange is empty";
  if (!symbol) return "symbol is empty";
  if (!isTimeframe(timeframe)) return `unknown timeframe "${timeframe}" (expected 15m, 1h, 4h or 1d)`;
  return undefined;
}

/** Why `candle` cannot be stored, or undefined when it is fine. */
export function candleProblem(candle: CandleInput, nowMs: number = Date.now()): string | undefined {
  // seriesProblem has checked the timeframe when it finds nothing.
  return seriesProblem(candle.exchange, candle.symbol, candle.timeframe) ?? candleValuesProblem(candle, candle.timeframe as Timeframe, nowMs);
}

/** Why `candle`'s values cannot be stored in a series of `timeframe`, or undefined when they are fine. */
export function candleValuesProblem(candle: Candle, timeframe: Timeframe, nowMs: number = Date.now()): string | undefined {
  const { open, high, low, close, volume, openTime } = candle;
  // Called for every candle queued: no per-row arrays or closures.
  const price = priceProblem("open", open) ?? priceProblem("high", high) ?? priceProblem("low", low) ?? priceProblem("close", close);
  if (price !== undefined) return price;
  if (!Number.isFinite(volume) || volume < 0) return `volume must be finite and ≥ 0 (got ${volume})`;
  if (high < Math.max(open, close)) return `high ${high} is below max(open, close) ${Math.max(open, close)}`;
  if (low > Math.min(open, close)) return `low ${low} is above min(open, close) ${Math.min(open, close)}`;
  if (!Number.isSafeInteger(openTime)) return `open time must be whole epoch milliseconds (got ${openTime})`;
  const step = TIMEFRAME_MS[timeframe];
  if (openTime % step !== 0) return `open time ${timeText(openTime)} is not aligned to ${timeframe}`;
  if (openTime < EARLIEST_OPEN_TIME) return `open time ${timeText(openTime)} is before 2009`;
  if (openTime > nowMs + step) return `open time ${timeText(openTime)} is in the future`;
  return undefined;
}

/** ISO text of an epoch-ms time, or the number itself beyond what Date can show (toISOString would throw). */
function timeText(ms: number): string {
  return Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString() : `${ms} ms`;
}

/** Splits a batch into storable candles and rejected ones with their reasons. */
export function validateCandles(candles: readonly CandleInput[], nowMs: number = Date.now()): { valid: StoredCandle[]; rejected: RejectedCandle[] } {
  const valid: StoredCandle[] = [];
  const rejected: RejectedCandle[] = [];
  for (const candle of candles) {
    const reason = candleProblem(candle, nowMs);
    if (reason === undefined) valid.push(candle as StoredCandle);
    else rejected.push({ candle, reason });
  }
  return { valid, rejected };
}

/** One row per key, the last one winning: an upsert may not touch a row twice. */
function lastPerKey(candles: StoredCandle[]): StoredCandle[] {
  const byKey = new CandleMap<StoredCandle>();
  for (const candle of candles) byKey.set(candle, candle);
  return byKey.size === candles.length ? candles : [...byKey.values()];
}

/** Valid rows, in their order, as columns: one series per run of rows of the same series. */
function toSeriesColumns(rows: readonly StoredCandle[]): SeriesColumns[] {
  const batch: SeriesColumns[] = [];
  let run: { exchange: string; symbol: string; timeframe: Timeframe; length: number; openTime: number[]; open: number[]; high: number[]; low: number[]; close: number[]; volume: number[]; isClosed: number[] } | undefined;
  for (const row of rows) {
    if (run === undefined || row.symbol !== run.symbol || row.timeframe !== run.timeframe || row.exchange !== run.exchange) {
      run = { exchange: row.exchange, symbol: row.symbol, timeframe: row.timeframe, length: 0, openTime: [], open: [], high: [], low: [], close: [], volume: [], isClosed: [] };
      batch.push(run);
    }
    run.openTime.push(row.openTime);
    run.open.push(row.open);
    run.high.push(row.high);
    run.low.push(row.low);
    run.close.push(row.close);
    run.volume.push(row.volume);
    run.isClosed.push(row.isClosed ? 1 : 0);
    run.length += 1;
  }
  return batch;
}

/**
 * Bulk upsert of candles of any number of series. Invalid rows are rejected with
 * their reason and the rest saved; of rows with the same key the last is kept.
 * Written by writeCandleSeries (see it for how, and for `options`). Database
 * errors propagate (the caller keeps the batch and retries).
 */
export async function saveCandles(
  db: Pick<Database, "sql"> & Partial<Pick<Database, "pool">>,
  candles: readonly CandleInput[],
  nowMs: number = Date.now(),
  options: SaveCandlesOptions = {},
): Promise<SaveCandlesResult> {
  const { valid, rejected } = validateCandles(candles, nowMs);
  const rows = lastPerKey(valid);
  const written = await writeCandleSeries(db, toSeriesColumns(rows), options);
  return { written, accepted: rows.length, rejected };
}

interface CandleRow {
  exchange: string;
  symbol: string;
  timeframe: Timeframe;
  open_ms: string | number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
  is_closed: boolean;
}

function toCandle(row: CandleRow): StoredCandle {
  return {
    exchange: row.exchange,
    symbol: row.symbol,
    timeframe: row.timeframe,
    openTime: Number(row.open_ms),
    open: row.open,
    high: row.high,
    low: row.low,
    close: row.close,
    volume: row.volume,
    isClosed: row.is_closed,
  };
}

const CANDLE_COLUMNS = `exchange, symbol, timeframe, (extract(epoch from open_time) * 1000)::int8 AS open_ms, open, high, low, close, volume, is_closed`;


/** The most recent `limit` candles of one series, oldest first. */
export async function recentCandles(
  db: Pick<Database, "sql">,
  series: { exchange: string; symbol: string; timeframe: Timeframe },
  limit: number,
): Promise<StoredCandle[]> {
  const result = await db.sql.query<CandleRow>(
    `SELECT ${CANDLE_COLUMNS} FROM candles WHERE exchange = $1 AND symbol = $2 AND timeframe = $3 ORDER BY open_time DESC LIMIT $4`,
    [series.exchange, series.symbol, series.timeframe, limit],
  );
  return result.rows.map(toCandle).reverse();
}

/** One series' stored candles as columns, oldest first (see SeriesColumns). */
export interface StoredSeries extends SeriesColumns {
  readonly openTime: Float64Array;
  readonly open: Float64Array;
  readonly high: Float64Array;
  readonly low: Float64Array;
  readonly close: Float64Array;
  readonly volume: Float64Array;
  readonly isClosed: Uint8Array;
}

/** Bytes of one candle in a series' packed column: open time (timestamptz, binary), five float8, one bool. */
const PACKED_CANDLE_BYTES = 8 + 5 * 8 + 1;

/**
 * One row per series holding its newest candles packed in one bytea, newest
 * first, each candle its values in their binary wire form. Each series is one
 * backward range scan of the primary key; no sort of the whole result (which
 * spilled to disk at 60,000 candles per query, two-thirds of its server time),
 * and no row, text number or object per candle on either side.
 */
const LATEST_PACKED_SQL = `SELECT s.symbol, t.timeframe, p.candles
FROM unnest($2::text[]) WITH ORDINALITY AS s(symbol, n)
CROSS JOIN unnest($3::text[]) WITH ORDINALITY AS t(timeframe, n)
CROSS JOIN LATERAL (
  SELECT string_agg(
    timestamptz_send(c.open_time) || float8send(c.open) || float8send(c.high) || float8send(c.low)
      || float8send(c.close) || float8send(c.volume) || boolsend(c.is_closed),
    ''::bytea ORDER BY c.open_time DESC) AS candles
  FROM (
    SELECT open_time, open, high, low, close, volume, is_closed FROM candles
    WHERE exchange = $1 AND symbol = s.symbol AND timeframe = t.timeframe
    ORDER BY open_time DESC LIMIT $4
  ) AS c
) AS p
WHERE p.candles IS NOT NULL
ORDER BY s.n, t.n`;

/** A series' packed candles (newest first) as columns, oldest first. */
function unpackSeries(exchange: string, symbol: string, timeframe: Timeframe, packed: Uint8Array): StoredSeries {
  const n = packed.byteLength / PACKED_CANDLE_BYTES;
  if (!Number.isInteger(n)) throw new Error(`packed candles of ${symbol} ${timeframe}: ${packed.byteLength} bytes is not a whole number of candles`);
  const series: StoredSeries = {
    exchange,
    symbol,
    timeframe,
    length: n,
    openTime: new Float64Array(n),
    open: new Float64Array(n),
    high: new Float64Array(n),
    low: new Float64Array(n),
    close: new Float64Array(n),
    volume: new Float64Array(n),
    isClosed: new Uint8Array(n),
  };
  const view = new DataView(packed.buffer, packed.byteOffset, packed.byteLength);
  for (let k = 0, at = 0; k < n; k += 1, at += PACKED_CANDLE_BYTES) {
    const i = n - 1 - k;
    // int8 microseconds as two 32-bit halves: exact below 2^53, and no BigInt per candle.
    series.openTime[i] = (view.getInt32(at) * 2 ** 32 + view.getUint32(at + 4)) / 1000 + PG_EPOCH_MS;
    series.open[i] = view.getFloat64(at + 8);
    series.high[i] = view.getFloat64(at + 16);
    series.low[i] = view.getFloat64(at + 24);
    series.close[i] = view.getFloat64(at + 32);
    series.volume[i] = view.getFloat64(at + 40);
    series.isClosed[i] = view.getUint8(at + 48);
  }
  return series;
}

/**
 * The latest `perSeries` candles of every (symbol × timeframe) series of
 * `exchange` that has any, in one query: series in the order asked (each symbol's
 * timeframes in turn), each oldest first. Used to restore the bot's state at start.
 */
export async function latestSeriesCandles(
  db: Pick<Database, "sql">,
  options: { exchange: string; symbols: readonly string[]; timeframes: readonly Timeframe[]; perSeries: number },
): Promise<StoredSeries[]> {
  const result = await db.sql.query<{ symbol: string; timeframe: Timeframe; candles: Uint8Array }>(LATEST_PACKED_SQL, [
    options.exchange,
    [...options.symbols],
    [...options.timeframes],
    options.perSeries,
  ]);
  return result.rows.map((row) => unpackSeries(options.exchange, row.symbol, row.timeframe, row.candles));
}

/** latestSeriesCandles as one candle object each: series in the order asked, each oldest first. */
export async function latestCandlesPerSeries(
  db: Pick<Database, "sql">,
  options: { exchange: string; symbols: readonly string[]; timeframes: readonly Timeframe[]; perSeries: number },
): Promise<StoredCandle[]> {
  const candles: StoredCandle[] = [];
  for (const series of await latestSeriesCandles(db, options)) {
    for (let i = 0; i < series.length; i += 1) {
      candles.push({ exchange: series.exchange, symbol: series.symbol, timeframe: series.timeframe, ...seriesCandleAt(series, i) });
    }
  }
  return candles;
}
