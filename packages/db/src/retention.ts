import { TIMEFRAME_MS, type Timeframe } from "@candlekeep/core";
import type { Database } from "./connect";
import { forgetHistoryBefore } from "./history";
import { distinctValuesCte, type SqlResult } from "./sql";

/**
 * Retention: decision traces and candles older than a cutoff, removed by batched deletes, a few
 * thousand rows per statement, each statement its own short transaction, so no lock is held for
 * long and the ticks' writes go on between them; VACUUM (vacuumTable) then makes the space reusable.
 *
 * Not time partitions dropped whole: every read of a coin's newest trace would probe each
 * partition, and a partition's drop locks the whole table. The drop is much faster than a day's
 * delete, but the delete runs beside the ticks at about their usual time, an hour's worth at a time
 * (figures in docs/performance.md). decision_traces' key holds the time, so partitioning stays open.
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

/** What a batched delete walks: one table's rows of one exchange, per symbol (and timeframe) oldest first through its primary key. */
interface SeriesTable {
  table: "candles" | "decision_traces";
  timeColumn: "open_time" | "time";
  /** Candles: one timeframe's series. */
  timeframe?: Timeframe;
}

// Per symbol its oldest rows through the primary key, at most $4 each, every symbol in one statement.
function deleteOldestSql({ table, timeColumn, timeframe }: SeriesTable): string {
  const sameTimeframe = (alias: string) => (timeframe === undefined ? "" : `AND ${alias}timeframe = $6`);
  return `WITH batch AS (
  SELECT s.symbol, r.${timeColumn} FROM unnest($2::text[], $3::int8[]) AS s(symbol, after_ms)
  CROSS JOIN LATERAL (
    SELECT ${timeColumn} FROM ${table}
    WHERE exchange = $1 AND symbol = s.symbol ${sameTimeframe("")} AND ${timeColumn} > coalesce(${TS("s.after_ms")}, timestamptz '-infinity') AND ${timeColumn} < ${TS("$5::int8")}
    ORDER BY ${timeColumn} LIMIT $4
  ) AS r
), deleted AS (
  DELETE FROM ${table} d USING batch b
  WHERE d.exchange = $1 AND d.symbol = b.symbol ${sameTimeframe("d.")} AND d.${timeColumn} = b.${timeColumn}
  RETURNING d.symbol, d.${timeColumn}
)
SELECT symbol, count(*)::int AS rows, ${MS(`max(${timeColumn})`)} AS last_ms FROM deleted GROUP BY symbol`;
}

/**
 * Deletes the rows of `series` of `exchange` older than `before` (epoch ms), every symbol's, in
 * statements of at most `batchRows` shared among the symbols still holding old rows; each
 * statement continues each symbol from where the last one ended, so it never walks the index
 * entries of rows deleted before it (they stay until a VACUUM).
 */
async function removeOldest(db: Pick<Database, "sql">, series: SeriesTable, options: RetentionOptions & { exchange: string; before: number }): Promise<RemovedRows> {
  const limit = batchRows(options);
  const sql = deleteOldestSql(series);
  const removed: RemovedRows = { rows: 0, statements: 0, stopped: false };
  // Symbols still holding old rows, each with the time its next statement starts after.
  let pending = new Map<string, number | null>((await storedSymbols(db, series.table, options.exchange)).map((symbol) => [symbol, null]));
  while (pending.size > 0) {
    if (options.signal?.aborted) return { ...removed, stopped: true };
    const perSymbol = Math.max(1, Math.floor(limit / pending.size));
    const parameters: unknown[] = [options.exchange, [...pending.keys()], [...pending.values()], perSymbol, options.before];
    if (series.timeframe !== undefined) parameters.push(series.timeframe);
    const result = await db.sql.query<{ symbol: string; rows: number; last_ms: string | number }>(sql, parameters);
    removed.statements += 1;
    const next = new Map<string, number | null>();
    for (const row of result.rows) {
      removed.rows += row.rows;
      if (row.rows >= perSymbol) next.set(row.symbol, Number(row.last_ms));
    }
    options.onProgress?.(removed.rows);
    pending = next;
  }
  return removed;
}

/** Every symbol with rows of `exchange` in `table`, found by skipping through the primary key. */
async function storedSymbols(db: Pick<Database, "sql">, table: SeriesTable["table"], exchange: string): Promise<string[]> {
  const result = await db.sql.query<{ value: string | null }>(`WITH RECURSIVE ${distinctValuesCte("symbols", table, "symbol", "exchange = $1")} SELECT value FROM symbols WHERE value IS NOT NULL`, [exchange]);
  return result.rows.flatMap((row) => (row.value === null ? [] : [row.value]));
}

/** Deletes the decision traces of `exchange` from before `before` (epoch ms), oldest first, in statements of `batchRows`. */
export function removeDecisionTraces(db: Pick<Database, "sql">, options: RetentionOptions & { exchange: string; before: number }): Promise<RemovedRows> {
  return removeOldest(db, { table: "decision_traces", timeColumn: "time" }, options);
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
  if (TIMEFRAME_MS[options.timeframe] === undefined) throw new RangeError(`unknown timeframe ${String(options.timeframe)}`);
  const removed = await removeOldest(db, { table: "candles", timeColumn: "open_time", timeframe: options.timeframe }, options);
  if (!removed.stopped) await forgetHistoryBefore(db, { exchange: options.exchange, timeframe: options.timeframe, before: options.before });
  return removed;
}

/** The tables retention deletes from. */
export type RetentionTable = "decision_traces" | "candles";

/**
 * VACUUM of a table retention deleted from: the deleted rows' space is reused by the next inserts
 * instead of the table growing (the embedded engine has no autovacuum, and a server's may be off or
 * far behind). It reads and writes beside the ticks (no lock against them); on the server without
 * a statement bound, as a large table takes a while.
 */
export async function vacuumTable(db: Pick<Database, "kind" | "sql" | "session">, table: RetentionTable): Promise<void> {
  const statement = `VACUUM ${table === "candles" ? "candles" : "decision_traces"}`;
  if (db.kind === "server") await db.session((connection) => connection.exec(statement), { queryTimeoutMs: 0 });
  else await db.sql.exec(statement);
}
