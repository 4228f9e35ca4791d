import { describeError } from "@candlekeep/core";
import type pg from "pg";
import type { Database } from "./connect";
import { binaryCopyChunks, type CopyColumn } from "./copy-binary";
import { runCopyScriptOnPool } from "./copy-script";
import { eventPayloadJson, jsonbSafe, MAX_EVENT_TEXT_CHARS, storableText, storableTimeMs, type EventLevel } from "./events";
import { distinctValuesCte, type SqlRunner } from "./sql";

/**
 * Decision traces: what the bot decided for a coin (signal or NO_SIGNAL) and why, at most one per
 * coin per tick of exchange time, in their own table keyed (exchange, symbol, time). The key is the
 * idempotency (a tick replayed after a crash stores its traces once) and the only index; it holds
 * the symbol and the time, so the table can be distributed by symbol or split by time
 * (docs/scaling.md). Traces are non-critical, like events: a failed write is logged and dropped.
 */

/** The event type a trace is shown as beside the audit trail's events (dashboard, logs). */
export const DECISION_TRACE = "DECISION_TRACE";

export interface DecisionTraceInput {
  exchange: string;
  symbol: string;
  /** The tick's exchange (or simulated) time. */
  time: Date;
  level?: EventLevel;
  payload: unknown;
}

export interface StoredDecisionTrace {
  exchange: string;
  symbol: string;
  time: Date;
  level: string;
  payload: unknown;
}

/** A trace with every field made storable, as both write paths send it. */
interface StorableTrace {
  exchange: string;
  symbol: string;
  timeMs: number;
  level: string;
  /** JSON text (eventPayloadJson). */
  payload: string;
}

function storableTrace(trace: DecisionTraceInput, nowMs: number): StorableTrace {
  return {
    exchange: storableText(String(trace.exchange), MAX_EVENT_TEXT_CHARS),
    symbol: storableText(String(trace.symbol), MAX_EVENT_TEXT_CHARS),
    timeMs: storableTimeMs(trace.time, nowMs),
    level: storableText(String(trace.level ?? "info"), MAX_EVENT_TEXT_CHARS),
    payload: eventPayloadJson(trace.payload),
  };
}

// Embedded engine (and a caller without the pool): the batch as one JSON array parameter.
const INSERT_TRACES_FROM_JSON = `
INSERT INTO decision_traces (exchange, symbol, time, level, payload)
SELECT t->>'exchange', t->>'symbol', (t->>'time')::timestamptz, t->>'level', t->'payload'
FROM jsonb_array_elements($1::jsonb) AS t
ON CONFLICT (exchange, symbol, time) DO NOTHING`;

function traceRowJson(row: StorableTrace): string {
  const fields = jsonbSafe(JSON.stringify({ exchange: row.exchange, symbol: row.symbol, time: new Date(row.timeMs).toISOString(), level: row.level }));
  return `${fields.slice(0, -1)},"payload":${row.payload}}`;
}

// Server engine: binary COPY into a per-connection staging table and one insert from it, one script (as events.ts).
const TRACES_COPY_SCRIPT = [
  `CREATE TEMP TABLE IF NOT EXISTS traces_staging (exchange text, symbol text, time timestamptz, level text, payload jsonb) ON COMMIT DELETE ROWS`,
  `COPY traces_staging (exchange, symbol, time, level, payload) FROM STDIN (FORMAT binary)`,
  `INSERT INTO decision_traces (exchange, symbol, time, level, payload) SELECT exchange, symbol, time, level, payload FROM traces_staging ON CONFLICT (exchange, symbol, time) DO NOTHING`,
].join(";\n");
const TRACE_COPY_CHUNK_ROWS = 500;
const TRACE_COPY_COLUMNS: readonly CopyColumn<StorableTrace>[] = [
  { type: "text", of: (row) => row.exchange },
  { type: "text", of: (row) => row.symbol },
  { type: "timestamptz", of: (row) => row.timeMs },
  { type: "text", of: (row) => row.level },
  { type: "jsonb", of: (row) => row.payload },
];

async function insertTraces(db: { sql: SqlRunner; pool?: pg.Pool }, rows: readonly StorableTrace[]): Promise<void> {
  if (db.pool) await runCopyScriptOnPool(db.pool, TRACES_COPY_SCRIPT, binaryCopyChunks(rows, TRACE_COPY_COLUMNS, TRACE_COPY_CHUNK_ROWS));
  else await db.sql.query(INSERT_TRACES_FROM_JSON, [`[${rows.map(traceRowJson).join(",")}]`]);
}

/**
 * Writes traces in one statement (one script given the server pool); a trace whose coin already has
 * one at that time is ignored. Non-critical: a failure is logged and swallowed. Returns how many
 * were dropped (0 on success).
 */
export async function recordDecisionTraces(db: Pick<Database, "sql" | "logger"> & Partial<Pick<Database, "pool">>, traces: readonly DecisionTraceInput[]): Promise<number> {
  if (traces.length === 0) return 0;
  const nowMs = Date.now();
  try {
    await insertTraces(db, traces.map((trace) => storableTrace(trace, nowMs)));
    return 0;
  } catch (error) {
    db.logger.warn("decision traces not recorded", { dropped: traces.length, error: describeError(error) });
    return traces.length;
  }
}

/** A row as the driver returns it: the time as a Date or text, depending on the engine. */
interface TraceRow extends Omit<StoredDecisionTrace, "time"> {
  time: Date | string;
}

const toTrace = (row: TraceRow): StoredDecisionTrace => ({ ...row, time: new Date(row.time) });

/** A coin's newest traces, newest first (a backward walk of the key). */
export async function latestDecisionTraces(db: Pick<Database, "sql">, filter: { exchange: string; symbol: string; limit?: number }): Promise<StoredDecisionTrace[]> {
  const result = await db.sql.query<TraceRow>(
    `SELECT exchange, symbol, time, level, payload FROM decision_traces WHERE exchange = $1 AND symbol = $2 ORDER BY time DESC LIMIT $3`,
    [filter.exchange, filter.symbol, filter.limit ?? 50],
  );
  return result.rows.map(toTrace);
}

/** The newest trace of each of `symbols`, in their order (symbols without one are absent), in one query. */
export async function latestDecisionTracePerSymbol(db: Pick<Database, "sql">, filter: { exchange: string; symbols: readonly string[] }): Promise<StoredDecisionTrace[]> {
  const result = await db.sql.query<TraceRow>(
    `SELECT t.exchange, t.symbol, t.time, t.level, t.payload
     FROM unnest($2::text[]) WITH ORDINALITY AS s(symbol, position)
     CROSS JOIN LATERAL (
       SELECT * FROM decision_traces WHERE exchange = $1 AND symbol = s.symbol ORDER BY time DESC LIMIT 1
     ) AS t
     ORDER BY s.position`,
    [filter.exchange, [...filter.symbols]],
  );
  return result.rows.map(toTrace);
}

/** The time of the exchange's newest trace, any coin's (the coins found by skipping through the key); undefined without one. */
export async function newestDecisionTraceTime(db: Pick<Database, "sql">, exchange: string): Promise<Date | undefined> {
  const result = await db.sql.query<{ time: Date | string | null }>(
    `WITH RECURSIVE ${distinctValuesCte("symbols", "decision_traces", "symbol", "exchange = $1")}
     SELECT max(t.time) AS time FROM symbols
     CROSS JOIN LATERAL (SELECT time FROM decision_traces WHERE exchange = $1 AND symbol = symbols.value ORDER BY time DESC LIMIT 1) AS t`,
    [exchange],
  );
  const time = result.rows[0]?.time;
  return time === null || time === undefined ? undefined : new Date(time);
}
