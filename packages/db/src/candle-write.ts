import type { Candle, Timeframe } from "@candlekeep/core";
import type pg from "pg";
import type { Database } from "./connect";
import { BinaryCopyWriter, BOOL_FIELD_BYTES, COPY_BINARY_HEADER, COPY_BINARY_TRAILER, FLOAT8_FIELD_BYTES, INT4_FIELD_BYTES, ROW_HEADER_BYTES, textFieldBytes, TIMESTAMPTZ_FIELD_BYTES } from "./copy-binary";
import { insertedRows, runCopyScriptOnPool } from "./copy-script";
import type { SqlRunner } from "./sql";

/**
 * Candles of one series as columns: entry i of every array is candle i
 * (isClosed 1 for a closed candle, 0 for a forming one). How many candles
 * travel between the bot and the database without an object for each.
 */
export interface SeriesColumns {
  readonly exchange: string;
  readonly symbol: string;
  readonly timeframe: Timeframe;
  readonly length: number;
  readonly openTime: ArrayLike<number>;
  readonly open: ArrayLike<number>;
  readonly high: ArrayLike<number>;
  readonly low: ArrayLike<number>;
  readonly close: ArrayLike<number>;
  readonly volume: ArrayLike<number>;
  readonly isClosed: ArrayLike<number>;
}

/** Candle `i` of a series held as columns, as an object (for the few readers that want objects). */
export function seriesCandleAt(series: SeriesColumns, i: number): Candle {
  return {
    openTime: series.openTime[i] as number,
    open: series.open[i] as number,
    high: series.high[i] as number,
    low: series.low[i] as number,
    close: series.close[i] as number,
    volume: series.volume[i] as number,
    isClosed: series.isClosed[i] === 1,
  };
}

/** Rows per statement: keeps parameter arrays modest while one round trip carries thousands. */
export const CANDLE_CHUNK_ROWS = 5000;
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
   * then on its core is free, and PostgreSQL can upsert on both (both halves at
   * once would compete with the decisions; figures in docs/performance.md).
   * If either half fails the write fails; the caller keeps the whole batch,
   * and re-sending the half that was written changes nothing.
   */
  secondHalfFrom?: Promise<unknown>;
}

/** Rows [from, to) of one series: how a batch is cut into chunks and halves without copying. */
interface SeriesRange {
  series: SeriesColumns;
  from: number;
  to: number;
}

const rowsOf = (ranges: readonly SeriesRange[]): number => ranges.reduce((sum, range) => sum + range.to - range.from, 0);

/** `ranges` cut into pieces of at most `rows` rows each, in order. */
function* pieces<Range extends SeriesRange>(ranges: readonly Range[], rows: number): Generator<Range[]> {
  let piece: Range[] = [];
  let room = rows;
  for (const range of ranges) {
    for (let start = range.from; start < range.to; ) {
      const end = Math.min(range.to, start + room);
      piece.push({ ...range, from: start, to: end });
      room -= end - start;
      start = end;
      if (room === 0) {
        yield piece;
        piece = [];
        room = rows;
      }
    }
  }
  if (piece.length > 0) yield piece;
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

/** The ten parameter arrays of UPSERT_CANDLES for `piece`. */
function unnestParameters(piece: readonly SeriesRange[]): unknown[] {
  const exchange: string[] = [];
  const symbol: string[] = [];
  const timeframe: string[] = [];
  const openTime: number[] = [];
  const open: number[] = [];
  const high: number[] = [];
  const low: number[] = [];
  const close: number[] = [];
  const volume: number[] = [];
  const isClosed: boolean[] = [];
  for (const { series, from, to } of piece) {
    for (let i = from; i < to; i += 1) {
      exchange.push(series.exchange);
      symbol.push(series.symbol);
      timeframe.push(series.timeframe);
      openTime.push(series.openTime[i] as number);
      open.push(series.open[i] as number);
      high.push(series.high[i] as number);
      low.push(series.low[i] as number);
      close.push(series.close[i] as number);
      volume.push(series.volume[i] as number);
      isClosed.push(series.isClosed[i] === 1);
    }
  }
  return [exchange, symbol, timeframe, openTime, open, high, low, close, volume, isClosed];
}

async function upsertViaUnnest(sql: SqlRunner, ranges: readonly SeriesRange[]): Promise<number> {
  let written = 0;
  for (const piece of pieces(ranges, CANDLE_CHUNK_ROWS)) written += (await sql.query(UPSERT_CANDLES, unnestParameters(piece))).rowCount;
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
// whatever candles holds. It has no index: keys are unique already (the caller's promise).
// `series` numbers the batch's series; `series_first` marks each series' oldest row.
const CREATE_STAGING = `CREATE TEMP TABLE IF NOT EXISTS candles_staging (
  exchange text, symbol text, timeframe text, open_time timestamptz,
  open float8, high float8, low float8, close float8, volume float8, is_closed bool,
  series int4, series_first bool
) ON COMMIT DELETE ROWS`;
const COPY_STAGING = `COPY candles_staging (exchange, symbol, timeframe, open_time, open, high, low, close, volume, is_closed, series, series_first) FROM STDIN (FORMAT binary)`;
const FROM_STAGING = `SELECT u.exchange, u.symbol, u.timeframe, u.open_time, u.open, u.high, u.low, u.close, u.volume, u.is_closed, now()
FROM candles_staging AS u`;
const UPSERT_FROM_STAGING = `${INSERT_CANDLES}
${FROM_STAGING}
${ON_CONFLICT_UPDATE}`;

// A batch of long runs of new candles (a backfill loading history): the upsert's
// conflict check is an index probe per row, most of its cost. A series of the
// batch with no stored candle at or after its oldest row (one probe per series)
// can only bring new keys: its rows are inserted plainly, the others upserted
// (the probe per row was most of a backfill's server time).
// The upsert goes first: the plain insert then still finds the same series new.
// Another session inserting one of those keys meanwhile fails the write (a
// unique violation): the caller keeps the batch, and its retry upserts.
const FRESH_SERIES = `WITH fresh AS (
  SELECT f.series FROM candles_staging AS f
  WHERE f.series_first AND NOT EXISTS (
    SELECT 1 FROM candles AS s
    WHERE s.exchange = f.exchange AND s.symbol = f.symbol AND s.timeframe = f.timeframe AND s.open_time >= f.open_time
  )
)`;
const UPSERT_STORED_SERIES_FROM_STAGING = `${FRESH_SERIES}
${INSERT_CANDLES}
${FROM_STAGING}
WHERE u.series NOT IN (SELECT series FROM fresh)
${ON_CONFLICT_UPDATE}`;
const INSERT_FRESH_SERIES_FROM_STAGING = `${FRESH_SERIES}
${INSERT_CANDLES}
${FROM_STAGING}
WHERE u.series IN (SELECT series FROM fresh)`;

/**
 * Rows a batch needs per series on average before its series are checked for
 * being new: below it (a tick's one or two candles per series) the probes per
 * series cost more than the plain inserts save.
 */
const FRESH_CHECK_MIN_ROWS_PER_SERIES = 8;

/** Rows per buffer written to the COPY stream: bounded memory for any batch size. */
const COPY_CHUNK_ROWS = 4000;
const COPY_FIELDS = 12;
/** Bytes of a row besides its three text fields: open time, four prices and the volume, is_closed, series, series_first. */
const COPY_FIXED_ROW_BYTES = ROW_HEADER_BYTES + TIMESTAMPTZ_FIELD_BYTES + 5 * FLOAT8_FIELD_BYTES + 2 * BOOL_FIELD_BYTES + INT4_FIELD_BYTES;

/** A range with its series' number in the batch and the row (or -1) holding that series' oldest candle. */
interface NumberedRange extends SeriesRange {
  number: number;
  firstRow: number;
}

/** Numbers the series of `ranges` (one number per exchange, symbol and timeframe) and marks each one's oldest row. */
function numberSeries(ranges: readonly SeriesRange[]): NumberedRange[] {
  const oldest = new Map<string, { number: number; range: number; row: number; openTime: number }>();
  const seenOf = ranges.map((range, index) => {
    const key = `${range.series.exchange}\u0000${range.series.symbol}\u0000${range.series.timeframe}`;
    let seen = oldest.get(key);
    if (seen === undefined) {
      seen = { number: oldest.size, range: -1, row: -1, openTime: Number.POSITIVE_INFINITY };
      oldest.set(key, seen);
    }
    const { openTime } = range.series;
    for (let i = range.from; i < range.to; i += 1) {
      if ((openTime[i] as number) < seen.openTime) {
        seen.openTime = openTime[i] as number;
        seen.range = index;
        seen.row = i;
      }
    }
    return seen;
  });
  return ranges.map((range, index) => {
    const seen = seenOf[index] as { number: number; range: number; row: number };
    return { ...range, number: seen.number, firstRow: seen.range === index ? seen.row : -1 };
  });
}

/**
 * Binary COPY rows, `COPY_CHUNK_ROWS` per buffer. Text fields are encoded once
 * per distinct value (a batch repeats a few hundred symbols thousands of times).
 */
function* copyChunks(ranges: readonly NumberedRange[]): Generator<Buffer> {
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
  for (const piece of pieces(ranges, COPY_CHUNK_ROWS)) {
    let size = 0;
    for (const { series, from, to } of piece) {
      size += (to - from) * (COPY_FIXED_ROW_BYTES + textFieldBytes(utf8(series.exchange).length) + textFieldBytes(utf8(series.symbol).length) + textFieldBytes(utf8(series.timeframe).length));
    }
    const out = new BinaryCopyWriter(size);
    for (const { series, from, to, number, firstRow } of piece) {
      const exchange = utf8(series.exchange);
      const symbol = utf8(series.symbol);
      const timeframe = utf8(series.timeframe);
      const { openTime, open, high, low, close, volume, isClosed } = series;
      for (let i = from; i < to; i += 1) {
        out.row(COPY_FIELDS);
        out.textBytes(exchange);
        out.textBytes(symbol);
        out.textBytes(timeframe);
        out.timestamptz(openTime[i] as number);
        out.float8(open[i] as number);
        out.float8(high[i] as number);
        out.float8(low[i] as number);
        out.float8(close[i] as number);
        out.float8(volume[i] as number);
        out.bool(isClosed[i] === 1);
        out.int4(number);
        out.bool(i === firstRow);
      }
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

async function upsertViaCopy(pool: pg.Pool, ranges: readonly SeriesRange[], statementTimeoutMs: number | undefined): Promise<number> {
  const timeout = statementTimeoutMs === undefined ? [] : [`SET LOCAL statement_timeout = ${Math.max(1, Math.round(statementTimeoutMs))}`];
  // The whole write is bounded by its statement timeout on the client too, so a connection gone silent fails it (its batch is kept) instead of holding it for ever.
  const bound = statementTimeoutMs === undefined ? {} : { queryTimeoutMs: Math.max(1, Math.round(statementTimeoutMs)) + SERVER_CANCEL_GRACE_MS };
  if (rowsOf(ranges) < FRESH_CHECK_MIN_ROWS_PER_SERIES * ranges.length) {
    // Not numbered: the upsert reads neither column (a tick's thousands of series need no key text each).
    const unnumbered = ranges.map((range) => ({ ...range, number: 0, firstRow: -1 }));
    const tags = await runCopyScriptOnPool(pool, [...timeout, CREATE_STAGING, COPY_STAGING, UPSERT_FROM_STAGING].join(";\n"), copyChunks(unnumbered), bound);
    return insertedRows(tags[tags.length - 1]);
  }
  const script = [...timeout, CREATE_STAGING, COPY_STAGING, UPSERT_STORED_SERIES_FROM_STAGING, INSERT_FRESH_SERIES_FROM_STAGING].join(";\n");
  const tags = await runCopyScriptOnPool(pool, script, copyChunks(numberSeries(ranges)), bound);
  return insertedRows(tags[tags.length - 2]) + insertedRows(tags[tags.length - 1]);
}

/** The two halves of the batch, the second started as SaveCandlesOptions.secondHalfFrom says. */
async function upsertInTwoParts(pool: pg.Pool, ranges: readonly SeriesRange[], statementTimeoutMs: number | undefined, secondHalfFrom: Promise<unknown>): Promise<number> {
  const [firstHalf = [], secondHalf = []] = pieces(ranges, Math.ceil(rowsOf(ranges) / 2));
  const first = upsertViaCopy(pool, firstHalf, statementTimeoutMs);
  // A first half that failed before the caller's signal leaves the second unsent: the write has failed already.
  const firstSucceeded = first.then(() => true, () => false);
  const signalled = secondHalfFrom.then(() => true, () => true);
  const startSecond = Promise.race([firstSucceeded, signalled]);
  const second = startSecond.then((start) => (start ? upsertViaCopy(pool, secondHalf, statementTimeoutMs) : 0));
  // Both settled before the outcome is known: a write still running when the caller retries would race the retry.
  const [a, b] = await Promise.allSettled([first, second]);
  if (a.status === "rejected") throw a.reason;
  if (b.status === "rejected") throw b.reason;
  return a.value + b.value;
}

/**
 * Bulk upsert of candles already valid (candleProblem finds nothing) and at most
 * one per key, given as series of columns: saveCandles checks objects and calls
 * it, the bot's pending batch (validated as it is queued) is written with it
 * directly. Returns the rows inserted or changed; database errors propagate
 * (the caller keeps the batch and retries).
 *
 * Given the server pool (a whole `Database`), the batch is written in one
 * transaction through COPY, in one round trip, whatever its size (in two, one
 * per half, when the caller gives `secondHalfFrom` and the batch has
 * TWO_PART_MIN_ROWS rows or more). Otherwise (embedded engine, or
 * only a connection, e.g. inside a transaction) through unnest in chunks of
 * CANDLE_CHUNK_ROWS, where earlier chunks may be written already when a later
 * one fails; a retry re-sends them harmlessly.
 */
export async function writeCandleSeries(
  db: Pick<Database, "sql"> & Partial<Pick<Database, "pool">>,
  batch: readonly SeriesColumns[],
  options: SaveCandlesOptions = {},
): Promise<number> {
  const ranges = batch.filter((series) => series.length > 0).map((series) => ({ series, from: 0, to: series.length }));
  const rows = rowsOf(ranges);
  if (rows === 0) return 0;
  const { pool } = db;
  if (!pool) return upsertViaUnnest(db.sql, ranges);
  if (options.secondHalfFrom && rows >= TWO_PART_MIN_ROWS) return upsertInTwoParts(pool, ranges, options.statementTimeoutMs, options.secondHalfFrom);
  return upsertViaCopy(pool, ranges, options.statementTimeoutMs);
}
