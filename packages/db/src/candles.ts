import { isTimeframe, TIMEFRAME_MS, type Candle, type Timeframe } from "@candlekeep/core";
import type pg from "pg";
import type { Database } from "./connect";
import { BinaryCopyWriter, BOOL_FIELD_BYTES, COPY_BINARY_HEADER, COPY_BINARY_TRAILER, FLOAT8_FIELD_BYTES, PG_EPOCH_MS, ROW_HEADER_BYTES, textFieldBytes, TIMESTAMPTZ_FIELD_BYTES } from "./copy-binary";
import { CandleMap } from "./candle-map";
import { insertedRows, runCopyScriptOnPool } from "./copy-script";
import type { SqlRunner } from "./sql";

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
/** Rows per statement: keeps parameter arrays modest while one round trip carries thousands. */
export const CANDLE_CHUNK_ROWS = 5000;

function priceProblem(name: string, value: number): string | undefined {
  return Number.isFinite(value) && value > 0 ? undefined : `${name} must be a finite positive price (got ${value})`;
}

/** Why `candle` cannot be stored, or undefined when it is fine. */
export function candleProblem(candle: CandleInput, nowMs: number = Date.now()): string | undefined {
  if (!candle.exchange) return "exchange is empty";
  if (!candle.symbol) return "symbol is empty";
  if (!isTimeframe(candle.timeframe)) return `unknown timeframe "${candle.timeframe}" (expected 15m, 1h, 4h or 1d)`;
  const { open, high, low, close, volume, openTime } = candle;
  // Called for every row of every flush: no per-row arrays or closures.
  const price = priceProblem("open", open) ?? priceProblem("high", high) ?? priceProblem("low", low) ?? priceProblem("close", close);
  if (price !== undefined) return price;
  if (!Number.isFinite(volume) || volume < 0) return `volume must be finite and ≥ 0 (got ${volume})`;
  if (high < Math.max(open, close)) return `high ${high} is below max(open, close) ${Math.max(open, close)}`;
  if (low > Math.min(open, close)) return `low ${low} is above min(open, close) ${Math.min(open, close)}`;
  if (!Number.isSafeInteger(openTime)) return `open time must be whole epoch milliseconds (got ${openTime})`;
  const step = TIMEFRAME_MS[candle.timeframe];
  if (openTime % step !== 0) return `open time ${timeText(openTime)} is not aligned to ${candle.timeframe}`;
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

/**
 * What an upsert does with a key that exists: a forming candle is updated only
 * when a value changed, and a closed candle is never turned back into a forming
 * one. Shared by both write paths so they cannot drift apart.
 */
const ON_CONFLICT_UPDATE = `
ON CONFLICT (exchange, symbol, timeframe, open_time) DO UPDATE
SET open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low, close = EXCLUDED.close,
    volume = EXCLUDED.volume, is_closed = EXCLUDED.is_closed, updated_at = EXCLUDED.updated_at
WHERE (EXCLUDED.is_closed OR NOT c.is_closed)
  AND (c.open, c.high, c.low, c.close, c.volume, c.is_closed)
      IS DISTINCT FROM (EXCLUDED.open, EXCLUDED.high, EXCLUDED.low, EXCLUDED.close, EXCLUDED.volume, EXCLUDED.is_closed)`;

const INSERT_CANDLES = `INSERT INTO candles AS c (exchange, symbol, timeframe, open_time, open, high, low, close, volume, is_closed, updated_at)`;

// Embedded engine (and a caller without the pool): one statement per chunk;
// unnest turns ten arrays into rows server-side, ~10× faster than createMany.
const UPSERT_CANDLES = `${INSERT_CANDLES}
SELECT u.exchange, u.symbol, u.timeframe, timestamptz 'epoch' + u.open_ms * interval '1 millisecond',
       u.open, u.high, u.low, u.close, u.volume, u.is_closed, now()
FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::float8[], $6::float8[], $7::float8[], $8::float8[], $9::float8[], $10::bool[])
     AS u(exchange, symbol, timeframe, open_ms, open, high, low, close, volume, is_closed)
${ON_CONFLICT_UPDATE}`;

function columns(chunk: readonly StoredCandle[]): unknown[] {
  const n = chunk.length;
  const exchange = new Array<string>(n);
  const symbol = new Array<string>(n);
  const timeframe = new Array<string>(n);
  const openTime = new Array<number>(n);
  const open = new Array<number>(n);
  const high = new Array<number>(n);
  const low = new Array<number>(n);
  const close = new Array<number>(n);
  const volume = new Array<number>(n);
  const isClosed = new Array<boolean>(n);
  for (let i = 0; i < n; i += 1) {
    const c = chunk[i] as StoredCandle;
    exchange[i] = c.exchange;
    symbol[i] = c.symbol;
    timeframe[i] = c.timeframe;
    openTime[i] = c.openTime;
    open[i] = c.open;
    high[i] = c.high;
    low[i] = c.low;
    close[i] = c.close;
    volume[i] = c.volume;
    isClosed[i] = c.isClosed;
  }
  return [exchange, symbol, timeframe, openTime, open, high, low, close, volume, isClosed];
}

async function upsertViaUnnest(sql: SqlRunner, rows: readonly StoredCandle[]): Promise<number> {
  let written = 0;
  for (let start = 0; start < rows.length; start += CANDLE_CHUNK_ROWS) {
    const result = await sql.query(UPSERT_CANDLES, columns(rows.slice(start, start + CANDLE_CHUNK_ROWS)));
    written += result.rowCount;
  }
  return written;
}

// Server engine: COPY into a per-connection staging table, then one upsert from
// it, sent as one script (runCopyScriptOnPool: one message, one implicit transaction).
// Sending 20,000-80,000 rows as unnest arrays cost 2.4-2.9× a COPY (array text
// is built in JS and parsed again by the server); COPY streams rows, and its binary format
// spares both sides printing and parsing ~100,000 numbers. The staging table
// lives as long as the pooled connection and is emptied by every commit, so a
// failed write leaves nothing behind. Its column types are the wire format
// written below, spelled out rather than LIKE candles: the INSERT converts to
// whatever candles holds. It has no index: keys are unique already (lastPerKey).
const CREATE_STAGING = `CREATE TEMP TABLE IF NOT EXISTS candles_staging (
  exchange text, symbol text, timeframe text, open_time timestamptz,
  open float8, high float8, low float8, close float8, volume float8, is_closed bool
) ON COMMIT DELETE ROWS`;
const COPY_STAGING = `COPY candles_staging (exchange, symbol, timeframe, open_time, open, high, low, close, volume, is_closed) FROM STDIN (FORMAT binary)`;
const UPSERT_FROM_STAGING = `${INSERT_CANDLES}
SELECT u.exchange, u.symbol, u.timeframe, u.open_time, u.open, u.high, u.low, u.close, u.volume, u.is_closed, now()
FROM candles_staging AS u
${ON_CONFLICT_UPDATE}`;

/** Rows per buffer written to the COPY stream: bounded memory for any batch size. */
const COPY_CHUNK_ROWS = 4000;
const COPY_FIELDS = 10;
/** Bytes of a row besides its three text fields: open time, four prices and the volume, is_closed. */
const COPY_FIXED_ROW_BYTES = ROW_HEADER_BYTES + TIMESTAMPTZ_FIELD_BYTES + 5 * FLOAT8_FIELD_BYTES + BOOL_FIELD_BYTES;

/**
 * Binary COPY rows, `COPY_CHUNK_ROWS` per buffer. Text fields are encoded once
 * per distinct value (a batch repeats a few hundred symbols thousands of times).
 */
function* copyChunks(rows: readonly StoredCandle[]): Generator<Buffer> {
  const encoded = new Map<string, Buffer>();
  const utf8 = (value: string): Buffer => {
    let bytes = encoded.get(value);
    if (bytes === undefined) {
      bytes = Buffer.from(value, "utf8");
      encoded.set(value, bytes);
    }
    return bytes;
  };
  yield COPY_BINARY_HEADER;
  for (let start = 0; start < rows.length; start += COPY_CHUNK_ROWS) {
    const end = Math.min(rows.length, start + COPY_CHUNK_ROWS);
    let size = 0;
    for (let i = start; i < end; i += 1) {
      const c = rows[i] as StoredCandle;
      size += COPY_FIXED_ROW_BYTES + textFieldBytes(utf8(c.exchange).length) + textFieldBytes(utf8(c.symbol).length) + textFieldBytes(utf8(c.timeframe).length);
    }
    const out = new BinaryCopyWriter(size);
    for (let i = start; i < end; i += 1) {
      const c = rows[i] as StoredCandle;
      out.row(COPY_FIELDS);
      out.textBytes(utf8(c.exchange));
      out.textBytes(utf8(c.symbol));
      out.textBytes(utf8(c.timeframe));
      out.timestamptz(c.openTime);
      out.float8(c.open);
      out.float8(c.high);
      out.float8(c.low);
      out.float8(c.close);
      out.float8(c.volume);
      out.bool(c.isClosed);
    }
    yield out.finish();
  }
  yield COPY_BINARY_TRAILER;
}

/**
 * How much longer than its statement_timeout a candle write waits for an answer
 * before it takes its connection for dead: the server's own cancel comes first
 * whenever the server can still be heard.
 */
const SERVER_CANCEL_GRACE_MS = 5000;

async function upsertViaCopy(pool: pg.Pool, rows: readonly StoredCandle[], statementTimeoutMs: number | undefined): Promise<number> {
  const timeout = statementTimeoutMs === undefined ? [] : [`SET LOCAL statement_timeout = ${Math.max(1, Math.round(statementTimeoutMs))}`];
  // The whole write is bounded by its statement timeout on the client too, so a connection gone silent fails it (its batch is kept) instead of holding it for ever.
  const bound = statementTimeoutMs === undefined ? {} : { queryTimeoutMs: Math.max(1, Math.round(statementTimeoutMs)) + SERVER_CANCEL_GRACE_MS };
  const tags = await runCopyScriptOnPool(pool, [...timeout, CREATE_STAGING, COPY_STAGING, UPSERT_FROM_STAGING].join(";\n"), copyChunks(rows), bound);
  return insertedRows(tags[tags.length - 1]);
}

/** Smallest batch written as two transactions when the caller allows it (see SaveCandlesOptions.secondHalfFrom). */
export const TWO_PART_MIN_ROWS = 1000;

export interface SaveCandlesOptions {
  /**
   * Server engine: each statement of the write is cancelled by PostgreSQL after
   * this long (SET LOCAL statement_timeout), so a blocked or very slow database
   * fails the write (the caller keeps the batch) instead of holding it forever;
   * a write without an answer SERVER_CANCEL_GRACE_MS later (a connection gone
   * silent) fails on the client's side and its connection is closed.
   */
  statementTimeoutMs?: number;
  /**
   * Server engine, batches of TWO_PART_MIN_ROWS or more: the batch goes out as two
   * transactions of half the rows each. The first starts at once; the second
   * when the first is done or when this settles, whichever comes first, on a
   * connection of its own. The bot settles it when its decisions are done: from
   * then on its core is free, and PostgreSQL can upsert on both (500-coin ticks,
   * two runs each: −9 and −12 ms at a real exchange's cadence, −1.7 and −3.4 ms
   * on catch-up ticks; both halves from the start competed with the decisions
   * and made catch-up ticks slower).
   * If either half fails the write fails; the caller keeps the whole batch,
   * and re-sending the half that was written changes nothing.
   */
  secondHalfFrom?: Promise<unknown>;
}

/** The two halves of the batch, the second started as SaveCandlesOptions.secondHalfFrom says. */
async function upsertInTwoParts(pool: pg.Pool, rows: readonly StoredCandle[], statementTimeoutMs: number | undefined, secondHalfFrom: Promise<unknown>): Promise<number> {
  const half = Math.ceil(rows.length / 2);
  const first = upsertViaCopy(pool, rows.slice(0, half), statementTimeoutMs);
  // A first half that failed before the caller's signal leaves the second unsent: the write has failed already.
  const firstSucceeded = first.then(() => true, () => false);
  const signalled = secondHalfFrom.then(() => true, () => true);
  const startSecond = Promise.race([firstSucceeded, signalled]);
  const second = startSecond.then((start) => (start ? upsertViaCopy(pool, rows.slice(half), statementTimeoutMs) : 0));
  // Both settled before the outcome is known: a write still running when the caller retries would race the retry.
  const [a, b] = await Promise.allSettled([first, second]);
  if (a.status === "rejected") throw a.reason;
  if (b.status === "rejected") throw b.reason;
  return a.value + b.value;
}

/**
 * Bulk upsert of candles of any number of series. Invalid rows are rejected with
 * their reason and the rest saved. Database errors propagate (the caller keeps
 * the batch and retries).
 *
 * Given the server pool (a whole `Database`), the batch is written in one
 * transaction through COPY, in one round trip, whatever its size (in two, one
 * per half, when the caller gives `secondHalfFrom` and the batch has
 * TWO_PART_MIN_ROWS rows or more). Otherwise (embedded engine, or
 * only a connection, e.g. inside a transaction) through unnest in chunks of
 * CANDLE_CHUNK_ROWS, where earlier chunks may be written already when a later
 * one fails; a retry re-sends them harmlessly.
 */
export async function saveCandles(
  db: Pick<Database, "sql"> & Partial<Pick<Database, "pool">>,
  candles: readonly CandleInput[],
  nowMs: number = Date.now(),
  options: SaveCandlesOptions = {},
): Promise<SaveCandlesResult> {
  const { valid, rejected } = validateCandles(candles, nowMs);
  const rows = lastPerKey(valid);
  if (rows.length === 0) return { written: 0, accepted: 0, rejected };
  const { pool } = db;
  let written: number;
  if (!pool) written = await upsertViaUnnest(db.sql, rows);
  else if (options.secondHalfFrom && rows.length >= TWO_PART_MIN_ROWS) written = await upsertInTwoParts(pool, rows, options.statementTimeoutMs, options.secondHalfFrom);
  else written = await upsertViaCopy(pool, rows, options.statementTimeoutMs);
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

/**
 * Candles of one series as columns, oldest first: entry i of every array is
 * candle i (isClosed 1 for a closed candle, 0 for a forming one). How start-up
 * reads hundreds of thousands of candles without an object for each.
 */
export interface StoredSeries {
  exchange: string;
  symbol: string;
  timeframe: Timeframe;
  length: number;
  openTime: Float64Array;
  open: Float64Array;
  high: Float64Array;
  low: Float64Array;
  close: Float64Array;
  volume: Float64Array;
  isClosed: Uint8Array;
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
      candles.push({
        exchange: series.exchange,
        symbol: series.symbol,
        timeframe: series.timeframe,
        openTime: series.openTime[i] as number,
        open: series.open[i] as number,
        high: series.high[i] as number,
        low: series.low[i] as number,
        close: series.close[i] as number,
        volume: series.volume[i] as number,
        isClosed: series.isClosed[i] === 1,
      });
    }
  }
  return candles;
}
