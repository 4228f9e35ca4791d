import { isTimeframe, TIMEFRAME_MS, type Timeframe } from "@candlekeep/core";
import type { Database } from "./connect";

/** A candle as the bot hands it to the database; times are epoch milliseconds (UTC). */
export interface CandleInput {
  exchange: string;
  symbol: string;
  timeframe: string;
  openTime: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
  /** false for the still-forming candle, which later writes may update. */
  isClosed: boolean;
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

/** Why `candle` cannot be stored, or undefined when it is fine. */
export function candleProblem(candle: CandleInput, nowMs: number = Date.now()): string | undefined {
  if (!candle.exchange) return "exchange is empty";
  if (!candle.symbol) return "symbol is empty";
  if (!isTimeframe(candle.timeframe)) return `unknown timeframe "${candle.timeframe}" (expected 15m, 1h, 4h or 1d)`;
  const { open, high, low, close, volume, openTime } = candle;
  for (const [name, value] of [["open", open], ["high", high], ["low", low], ["close", close]] as const) {
    if (!Number.isFinite(value) || value <= 0) return `${name} must be a finite positive price (got ${value})`;
  }
  if (!Number.isFinite(volume) || volume < 0) return `volume must be finite and ≥ 0 (got ${volume})`;
  if (high < Math.max(open, close)) return `high ${high} is below max(open, close) ${Math.max(open, close)}`;
  if (low > Math.min(open, close)) return `low ${low} is above min(open, close) ${Math.min(open, close)}`;
  if (!Number.isSafeInteger(openTime)) return `open time must be whole epoch milliseconds (got ${openTime})`;
  const step = TIMEFRAME_MS[candle.timeframe];
  if (openTime % step !== 0) return `open time ${new Date(openTime).toISOString()} is not aligned to ${candle.timeframe}`;
  if (openTime < EARLIEST_OPEN_TIME) return `open time ${new Date(openTime).toISOString()} is before 2009`;
  if (openTime > nowMs + step) return `open time ${new Date(openTime).toISOString()} is in the future`;
  return undefined;
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

export function candleKey(candle: Pick<CandleInput, "exchange" | "symbol" | "timeframe" | "openTime">): string {
  return `${candle.exchange}\u0000${candle.symbol}\u0000${candle.timeframe}\u0000${candle.openTime}`;
}

/** One row per key, the last one winning: an upsert may not touch a row twice. */
function lastPerKey(candles: StoredCandle[]): StoredCandle[] {
  const byKey = new Map<string, StoredCandle>();
  for (const candle of candles) byKey.set(candleKey(candle), candle);
  return byKey.size === candles.length ? candles : [...byKey.values()];
}

// One statement per chunk: unnest turns ten arrays into rows server-side, which is
// ~10× faster than createMany. A forming candle is updated only when a value
// changed, and a closed candle is never turned back into a forming one.
const UPSERT_CANDLES = `
INSERT INTO candles AS c (exchange, symbol, timeframe, open_time, open, high, low, close, volume, is_closed, updated_at)
SELECT u.exchange, u.symbol, u.timeframe, timestamptz 'epoch' + u.open_ms * interval '1 millisecond',
       u.open, u.high, u.low, u.close, u.volume, u.is_closed, now()
FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::float8[], $6::float8[], $7::float8[], $8::float8[], $9::float8[], $10::bool[])
     AS u(exchange, symbol, timeframe, open_ms, open, high, low, close, volume, is_closed)
ON CONFLICT (exchange, symbol, timeframe, open_time) DO UPDATE
SET open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low, close = EXCLUDED.close,
    volume = EXCLUDED.volume, is_closed = EXCLUDED.is_closed, updated_at = EXCLUDED.updated_at
WHERE (EXCLUDED.is_closed OR NOT c.is_closed)
  AND (c.open, c.high, c.low, c.close, c.volume, c.is_closed)
      IS DISTINCT FROM (EXCLUDED.open, EXCLUDED.high, EXCLUDED.low, EXCLUDED.close, EXCLUDED.volume, EXCLUDED.is_closed)`;

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

/**
 * Bulk upsert of candles of any number of series. Invalid rows are rejected with
 * their reason and the rest saved. Database errors propagate (the caller keeps
 * the batch and retries); with several chunks, earlier chunks may be written
 * already, which a retry re-sends harmlessly.
 */
export async function saveCandles(db: Pick<Database, "sql">, candles: readonly CandleInput[], nowMs: number = Date.now()): Promise<SaveCandlesResult> {
  const { valid, rejected } = validateCandles(candles, nowMs);
  const rows = lastPerKey(valid);
  let written = 0;
  for (let start = 0; start < rows.length; start += CANDLE_CHUNK_ROWS) {
    const result = await db.sql.query(UPSERT_CANDLES, columns(rows.slice(start, start + CANDLE_CHUNK_ROWS)));
    written += result.rowCount;
  }
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
 * The latest `perSeries` candles of every (symbol × timeframe) series of
 * `exchange`, in one query, oldest first within each series. Used to restore the
 * bot's state at start.
 */
export async function latestCandlesPerSeries(
  db: Pick<Database, "sql">,
  options: { exchange: string; symbols: readonly string[]; timeframes: readonly Timeframe[]; perSeries: number },
): Promise<StoredCandle[]> {
  const result = await db.sql.query<CandleRow>(
    `SELECT ${CANDLE_COLUMNS}
     FROM unnest($2::text[]) AS s(symbol)
     CROSS JOIN unnest($3::text[]) AS t(timeframe)
     CROSS JOIN LATERAL (
       SELECT c.open_time, c.open, c.high, c.low, c.close, c.volume, c.is_closed, c.exchange
       FROM candles c WHERE c.exchange = $1 AND c.symbol = s.symbol AND c.timeframe = t.timeframe
       ORDER BY c.open_time DESC LIMIT $4
     ) AS c
     ORDER BY s.symbol, t.timeframe, c.open_time`,
    [options.exchange, [...options.symbols], [...options.timeframes], options.perSeries],
  );
  return result.rows.map(toCandle);
}
