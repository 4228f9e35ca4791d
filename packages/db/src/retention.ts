import { TIMEFRAME_MS, type Timeframe } from "@candlekeep/core";
import type { Database } from "./connect";
import { forgetHistoryBefore } from "./history";
import { distinctValuesCte, type SqlResult } from "./sql";

/**
 * Retention: decision traces and candles older than a cutoff, removed by batched deletes, a few
 * thousand rows per statement, each statement its own short transaction, so no lock is held for
 * long and the ticks' writes go on between them; VACUUM (vacuumTable) then makes the space reusable.
 *
 * Not time partitions dropped whole: system_events holds every event type in one table, and its
 * idempotency (ON CONFLICT (event_key), the paper account's one opening event, an order's one
 * POSITION_OPENED) needs unique keys that a partitioned table allows only with the partition's
 * time in them; the existing table would have to be copied into partitions at deploy; every read
 * of a coin's newest trace would probe each partition; and a partition's drop locks the whole table.
 * The drop is much faster than a day's delete, but the delete runs beside the ticks at about their
 * usual time, an hour's worth at a time (figures in docs/performance.md, 2026-12-05).
 */

/** Rows per delete statement, each its own short transaction. */
export const RETENTION_BATCH_ROWS = 5000;

export interface RetentionOptions {
  /** Ends the work between statements; what is removed stays removed. */
  signal?: AbortSignal;
  batchRows?: number;
  /** Called after each statement with the rows removed so far. */
  onProgress?: (removed: number) => void;
}

export interface RemovedRows {
  rows: number;
  statements: number;
  /** `signal` ended the work before everything older than the cutoff was removed. */
  stopped: boolean;
}

const TS = (msExpression: string) => `(timestamptz 'epoch' + (${msExpression}) * interval '1 millisecond')`;
const MS = (timeExpression: string) => `(extract(epoch from ${timeExpression}) * 1000)::int8`;

function batchRows(options: RetentionOptions): number {
  const rows = options.batchRows ?? RETENTION_BATCH_ROWS;
  if (!Number.isSafeInteger(rows) || rows < 1) throw new RangeError(`batchRows ${rows} must be a whole number ≥ 1`);
  return rows;
}

// Oldest first through the (type, time) index, each statement from where the last one ended: a
// statement never walks the index entries of rows deleted before it (they stay until a VACUUM).
const DELETE_TRACES = `WITH batch AS (
  SELECT id FROM system_events
  WHERE type = 'DECISION_TRACE' AND time >= coalesce(${TS("$1::int8")}, timestamptz '-infinity') AND time < ${TS("$2::int8")}
  ORDER BY time LIMIT $3
), deleted AS (
  DELETE FROM system_events e USING batch WHERE e.id = batch.id RETURNING e.time
)
SELECT count(*)::int AS rows, ${MS("max(time)")} AS last_ms FROM deleted`;

interface TraceBatch {
  rows: number;
  /** The newest time deleted: the next statement starts there. */
  last_ms: string | number | null;
}

/**
 * Deletes DECISION_TRACE events whose time is before `before` (epoch ms), oldest first, in
 * statements of `batchRows`. No other event type is touched.
 */
export async function removeDecisionTraces(db: Pick<Database, "sql">, options: RetentionOptions & { before: number }): Promise<RemovedRows> {
  const limit = batchRows(options);
  const removed: RemovedRows = { rows: 0, statements: 0, stopped: false };
  let from: number | null = null;
  for (;;) {
    if (options.signal?.aborted) return { ...removed, stopped: true };
    const result: SqlResult<TraceBatch> = await db.sql.query<TraceBatch>(DELETE_TRACES, [from, options.before, limit]);
    const row: TraceBatch | undefined = result.rows[0];
    removed.statements += 1;
    removed.rows += row?.rows ?? 0;
    options.onProgress?.(removed.rows);
    if (!row || row.rows < limit || row.last_ms === null) return removed;
    from = Number(row.last_ms);
  }
}

// Per symbol its oldest candles through the primary key, at most $5 each, every symbol in one statement.
const DELETE_CANDLES = `WITH batch AS (
  SELECT s.symbol, c.open_time FROM unnest($2::text[], $4::int8[]) AS s(symbol, after_ms)
  CROSS JOIN LATERAL (
    SELECT open_time FROM candles
    WHERE exchange = $1 AND symbol = s.symbol AND timeframe = $3 AND open_time > coalesce(${TS("s.after_ms")}, timestamptz '-infinity') AND open_time < ${TS("$6::int8")}
    ORDER BY open_time LIMIT $5
  ) AS c
), deleted AS (
  DELETE FROM candles d USING batch b
  WHERE d.exchange = $1 AND d.symbol = b.symbol AND d.timeframe = $3 AND d.open_time = b.open_time
  RETURNING d.symbol, d.open_time
)
SELECT symbol, count(*)::int AS rows, ${MS("max(open_time)")} AS last_ms FROM deleted GROUP BY symbol`;

/** Every symbol with candles of `exchange`, found by skipping through the primary key. */
async function storedSymbols(db: Pick<Database, "sql">, exchange: string): Promise<string[]> {
  const result = await db.sql.query<{ value: string | null }>(`WITH RECURSIVE ${distinctValuesCte("symbols", "candles", "symbol", "exchange = $1")} SELECT value FROM symbols WHERE value IS NOT NULL`, [exchange]);
  return result.rows.flatMap((row) => (row.value === null ? [] : [row.value]));
}

/**
 * Deletes the candles of `exchange` and `timeframe` that open before `before` (epoch ms), every
 * symbol's, in statements of at most `batchRows`, then brings the history audit's state up to it
 * (forgetHistoryBefore), so neither the audit nor a repair asks for them again.
 */
export async function removeCandles(
  db: Pick<Database, "kind" | "sql" | "session" | "logger">,
  options: RetentionOptions & { exchange: string; timeframe: Timeframe; before: number },
): Promise<RemovedRows> {
  const limit = batchRows(options);
  if (TIMEFRAME_MS[options.timeframe] === undefined) throw new RangeError(`unknown timeframe ${String(options.timeframe)}`);
  const removed: RemovedRows = { rows: 0, statements: 0, stopped: false };
  // Symbols still holding old candles, each with the open time its next statement starts after.
  let pending = new Map<string, number | null>((await storedSymbols(db, options.exchange)).map((symbol) => [symbol, null]));
  while (pending.size > 0) {
    if (options.signal?.aborted) return { ...removed, stopped: true };
    const perSymbol = Math.max(1, Math.floor(limit / pending.size));
    const result = await db.sql.query<{ symbol: string; rows: number; last_ms: string | number }>(DELETE_CANDLES, [
      options.exchange,
      [...pending.keys()],
      options.timeframe,
      [...pending.values()],
      perSymbol,
      options.before,
    ]);
    removed.statements += 1;
    const next = new Map<string, number | null>();
    for (const row of result.rows) {
      removed.rows += row.rows;
      if (row.rows >= perSymbol) next.set(row.symbol, Number(row.last_ms));
    }
    options.onProgress?.(removed.rows);
    pending = next;
  }
  await forgetHistoryBefore(db, { exchange: options.exchange, timeframe: options.timeframe, before: options.before });
  return removed;
}

/** The tables retention deletes from. */
export type RetentionTable = "system_events" | "candles";

/**
 * VACUUM of a table retention deleted from: the deleted rows' space is reused by the next inserts
 * instead of the table growing (the embedded engine has no autovacuum, and a server's may be off or
 * far behind). It reads and writes beside the ticks (no lock against them); on the server without
 * a statement bound, as a large table takes a while.
 */
export async function vacuumTable(db: Pick<Database, "kind" | "sql" | "session">, table: RetentionTable): Promise<void> {
  const statement = `VACUUM ${table === "candles" ? "candles" : "system_events"}`;
  if (db.kind === "server") await db.session((connection) => connection.exec(statement), { queryTimeoutMs: 0 });
  else await db.sql.exec(statement);
}
