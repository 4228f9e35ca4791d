import { createHash } from "node:crypto";
import { describeError } from "@candlekeep/core";
import type pg from "pg";
import type { Database } from "./connect";
import { binaryCopyChunks, type CopyColumn } from "./copy-binary";
import { runCopyScriptOnPool } from "./copy-script";
import { distinctValuesCte, type SqlRunner } from "./sql";

export type EventLevel = "debug" | "info" | "warn" | "error";

/**
 * Known event types; others are allowed (the audit trail grows with the bot). COIN_DELISTED: an open
 * position's coin the exchange no longer lists, reported once; the bot leaves that position alone.
 */
export type EventType = "ORDER" | "ERROR" | "STARTUP" | "SHUTDOWN" | "POSITION_OPENED" | "POSITION_CLOSED" | "COIN_DELISTED" | (string & {});

export interface EventInput {
  type: EventType;
  symbol?: string | null;
  level?: EventLevel;
  payload?: unknown;
  /** When it happened (exchange/simulated time for decisions); defaults to now. */
  time?: Date;
  /** Idempotency key: a second write with the same key is ignored. */
  eventKey?: string;
}

export interface StoredEvent {
  id: string;
  time: Date;
  type: string;
  symbol: string | null;
  level: string;
  payload: unknown;
}

/** Largest payload stored as is; larger ones are replaced by a marked preview. */
export const MAX_EVENT_PAYLOAD_BYTES = 64 * 1024;
const PREVIEW_CHARS = 2048;

/**
 * A JSON.stringify replacer for whatever the bot puts in a payload: BigInt as its
 * decimal string, an Error as its name and message (JSON.stringify gives {}), and
 * a reference back to an enclosing object as "[Circular]" (the rest is kept; an
 * object merely referenced twice is not a cycle).
 */
function payloadReplacer(): (this: unknown, key: string, value: unknown) => unknown {
  const ancestors: unknown[] = [];
  return function replace(this: unknown, _key: string, value: unknown): unknown {
    if (typeof value === "bigint") return value.toString();
    if (typeof value !== "object" || value === null) return value;
    // `this` is the object holding `value`: drop ancestors that are not on its path.
    while (ancestors.length > 0 && ancestors[ancestors.length - 1] !== this) ancestors.pop();
    if (ancestors.includes(value)) return "[Circular]";
    ancestors.push(value);
    if (value instanceof Error) return { name: value.name, message: value.message };
    return value;
  };
}

/** Nesting beyond which a payload takes the replacer's path: deeper than any payload the bot builds, and where a cycle ends up. */
const PLAIN_JSON_MAX_DEPTH = 32;

/**
 * True when JSON.stringify gives the same text without payloadReplacer as with
 * it: primitives other than BigInt, arrays, Dates, and plain objects without a
 * toJSON of their own, nested at most PLAIN_JSON_MAX_DEPTH deep (so a cycle is
 * never plain). Decision traces and most events are plain, and the replacer is a JavaScript
 * call for every value, which this walk spares them.
 */
function isPlainJson(value: unknown, depth: number): boolean {
  if (typeof value === "bigint") return false;
  if (typeof value !== "object" || value === null) return true;
  if (depth > PLAIN_JSON_MAX_DEPTH) return false;
  if (Array.isArray(value)) {
    for (const item of value) if (!isPlainJson(item, depth + 1)) return false;
    return true;
  }
  if (value instanceof Date) return true;
  const prototype: unknown = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) return false;
  const record = value as Record<string, unknown>;
  if (typeof record.toJSON === "function") return false;
  for (const key in record) if (!isPlainJson(record[key], depth + 1)) return false;
  return true;
}

/**
 * What jsonb refuses in JSON text, fixed: the escape \u0000 (NUL) is removed, and
 * an escaped lone UTF-16 surrogate (JSON.stringify writes one as \udXXX) becomes
 * U+FFFD. An escape counts only after an even number of backslashes, so the text
 * "\\u0000" (a literal backslash) is left alone.
 */
export function jsonbSafe(json: string): string {
  // Nearly every payload has no escape at all: skip the regular expression.
  if (!json.includes("\\u")) return json;
  return json.replace(/(?<!\\)((?:\\\\)*)\\u(0000|d[89a-f][0-9a-f]{2})/gi, (_match, backslashes: string, code: string) =>
    code === "0000" ? backslashes : `${backslashes}\\ufffd`,
  );
}

/**
 * JSON text of a payload that PostgreSQL will store: NUL characters (which jsonb
 * refuses) removed, lone surrogates replaced, unserialisable values (BigInt,
 * cycles, Errors) described instead of thrown, and oversized payloads truncated
 * with a marker.
 */
export function eventPayloadJson(payload: unknown): string {
  let text: string;
  try {
    const value = payload ?? {};
    text = (isPlainJson(value, 0) ? JSON.stringify(value) : JSON.stringify(value, payloadReplacer())) ?? "{}";
  } catch (error) {
    // e.g. a getter or toJSON that throws
    text = JSON.stringify({ unserializable: describeError(error) });
  }
  text = jsonbSafe(text);
  const bytes = Buffer.byteLength(text);
  if (bytes > MAX_EVENT_PAYLOAD_BYTES) {
    // The preview may end inside a surrogate pair; jsonbSafe repairs the half left over.
    text = jsonbSafe(JSON.stringify({ truncated: true, originalBytes: bytes, preview: text.slice(0, PREVIEW_CHARS) }));
  }
  return text;
}

/** Longest type, symbol and level stored; they are indexed, and an index entry must stay small. */
export const MAX_EVENT_TEXT_CHARS = 200;
/** Longest event key stored as is; a longer one keeps its start and a hash of the whole. */
const MAX_EVENT_KEY_CHARS = 400;
const LATEST_EVENT_TIME = Date.UTC(9999, 11, 31);

/** `time` in epoch ms when it is a date between 1970 and 9999, else `nowMs`. */
export function storableTimeMs(time: Date | undefined, nowMs: number): number {
  const timeMs = time instanceof Date ? time.getTime() : Number.NaN;
  return timeMs >= 0 && timeMs <= LATEST_EVENT_TIME ? timeMs : nowMs;
}

/** An event with every field made storable, as both write paths send it. */
interface StorableEvent {
  timeMs: number;
  type: string;
  symbol: string | null;
  level: string;
  eventKey: string | null;
  /** JSON text (eventPayloadJson). */
  payload: string;
}

/** Text PostgreSQL stores: over-long text cut with a trailing "…", NUL characters (which text refuses) removed. */
export function storableText(value: string, max: number): string {
  const text = value.length <= max ? value : `${value.slice(0, max - 1)}…`;
  return text.includes("\0") ? text.replaceAll("\0", "") : text;
}

/**
 * Every field made storable, so one bad event (an invalid date, a 1 MB symbol)
 * cannot make the whole batch fail: a time that is not a date between 1970 and
 * 9999 becomes now, over-long texts are cut, an over-long key is shortened
 * without losing its uniqueness. (A lone UTF-16 surrogate left by a cut
 * becomes U+FFFD on the way: JSON escapes are repaired by jsonbSafe, UTF-8
 * encoding replaces it.)
 */
function storableEvent(event: EventInput, nowMs: number): StorableEvent {
  const key = event.eventKey ?? null;
  return {
    timeMs: storableTimeMs(event.time, nowMs),
    type: storableText(String(event.type), MAX_EVENT_TEXT_CHARS),
    symbol: event.symbol == null ? null : storableText(String(event.symbol), MAX_EVENT_TEXT_CHARS),
    level: storableText(String(event.level ?? "info"), MAX_EVENT_TEXT_CHARS),
    eventKey:
      key === null ? null : storableText(key.length <= MAX_EVENT_KEY_CHARS ? key : `${key.slice(0, MAX_EVENT_KEY_CHARS - 72)}…sha256:${createHash("sha256").update(key).digest("hex")}`, MAX_EVENT_KEY_CHARS),
    payload: eventPayloadJson(event.payload),
  };
}

// Embedded engine (and a caller without the pool): the batch as one JSON array parameter.
const INSERT_EVENTS_FROM_JSON = `
INSERT INTO system_events (time, type, symbol, level, payload, event_key)
SELECT (e->>'time')::timestamptz, e->>'type', e->>'symbol', e->>'level', e->'payload', e->>'eventKey'
FROM jsonb_array_elements($1::jsonb) AS e
ON CONFLICT (event_key) DO NOTHING`;

/** One row of the JSON array: the payload's JSON text spliced in as is, not stringified again as a string. */
function eventRowJson(row: StorableEvent): string {
  const fields = jsonbSafe(JSON.stringify({ time: new Date(row.timeMs).toISOString(), type: row.type, symbol: row.symbol, level: row.level, eventKey: row.eventKey }));
  return `${fields.slice(0, -1)},"payload":${row.payload}}`;
}

async function insertViaJson(sql: SqlRunner, rows: readonly StorableEvent[]): Promise<void> {
  await sql.query(INSERT_EVENTS_FROM_JSON, [`[${rows.map(eventRowJson).join(",")}]`]);
}

// Server engine: binary COPY into a per-connection staging table, then one
// insert from it, as one script in one message (runCopyScriptOnPool), like the
// candle write: the server parses each payload once instead of the whole JSON
// array and then each element again, and this process builds no big string.
// Rows are inserted in the order given (a staging table is read back in
// the order it was filled), so ids follow the batch's order on both paths.
const CREATE_EVENTS_STAGING = `CREATE TEMP TABLE IF NOT EXISTS events_staging (
  time timestamptz, type text, symbol text, level text, payload jsonb, event_key text
) ON COMMIT DELETE ROWS`;
const COPY_EVENTS_STAGING = `COPY events_staging (time, type, symbol, level, payload, event_key) FROM STDIN (FORMAT binary)`;
const INSERT_EVENTS_FROM_STAGING = `INSERT INTO system_events (time, type, symbol, level, payload, event_key)
SELECT time, type, symbol, level, payload, event_key FROM events_staging
ON CONFLICT (event_key) DO NOTHING`;
const EVENTS_COPY_SCRIPT = [CREATE_EVENTS_STAGING, COPY_EVENTS_STAGING, INSERT_EVENTS_FROM_STAGING].join(";\n");
/** Events per buffer written to the COPY stream (payloads are at most 64 KiB each). */
const EVENT_COPY_CHUNK_ROWS = 500;
const EVENT_COPY_COLUMNS: readonly CopyColumn<StorableEvent>[] = [
  { type: "timestamptz", of: (row) => row.timeMs },
  { type: "text", of: (row) => row.type },
  { type: "text", of: (row) => row.symbol },
  { type: "text", of: (row) => row.level },
  { type: "jsonb", of: (row) => row.payload },
  { type: "text", of: (row) => row.eventKey },
];

async function insertViaCopy(pool: pg.Pool, rows: readonly StorableEvent[]): Promise<void> {
  await runCopyScriptOnPool(pool, EVENTS_COPY_SCRIPT, binaryCopyChunks(rows, EVENT_COPY_COLUMNS, EVENT_COPY_CHUNK_ROWS));
}

/**
 * Writes events in one statement (one script given the server pool). Events
 * are non-critical, as in the seed: a failure is logged and swallowed.
 * Returns how many were dropped (0 on success).
 */
export async function recordEvents(db: Pick<Database, "sql" | "logger"> & Partial<Pick<Database, "pool">>, events: readonly EventInput[]): Promise<number> {
  if (events.length === 0) return 0;
  const nowMs = Date.now();
  try {
    const rows = events.map((event) => storableEvent(event, nowMs));
    await (db.pool ? insertViaCopy(db.pool, rows) : insertViaJson(db.sql, rows));
    return 0;
  } catch (error) {
    db.logger.warn("events not recorded", { dropped: events.length, types: [...new Set(events.map((e) => e.type))], error: describeError(error) });
    return events.length;
  }
}

/** Writes one event; non-critical (logged and swallowed). Returns true when stored. */
export async function recordEvent(db: Pick<Database, "sql" | "logger"> & Partial<Pick<Database, "pool">>, event: EventInput): Promise<boolean> {
  return (await recordEvents(db, [event])) === 0;
}

/** A row as the driver returns it: a bigint id as text or a number, the time as a Date or text, depending on the engine. */
interface EventRow extends Omit<StoredEvent, "id" | "time"> {
  id: string | number;
  time: Date | string;
}

const toEvent = (row: EventRow): StoredEvent => ({ ...row, id: String(row.id), time: new Date(row.time) });

const EVENT_COLUMNS = "id, time, type, symbol, level, payload";

// With a type, the (type, time) or (symbol, type, time) index hands over the newest rows at once.
const LATEST_OF_TYPE = `SELECT ${EVENT_COLUMNS} FROM system_events
WHERE type = $1 AND ($2::text IS NULL OR symbol = $2)
ORDER BY time DESC, id DESC LIMIT $3`;

// Without one, no index is ordered by time alone (one more index on every event
// written), and sorting every stored event grew with the history, on each
// dashboard refresh. So: the types, found by skipping through the
// (type, time) index, then each one's newest rows as above, merged. A handful of types.
const LATEST_OF_EVERY_TYPE = `WITH RECURSIVE ${distinctValuesCte("types", "system_events", "type")}
SELECT ${EVENT_COLUMNS} FROM types
CROSS JOIN LATERAL (
  SELECT ${EVENT_COLUMNS} FROM system_events
  WHERE type = types.value AND ($1::text IS NULL OR symbol = $1)
  ORDER BY time DESC, id DESC LIMIT $2
) AS e
WHERE types.value IS NOT NULL
ORDER BY time DESC, id DESC LIMIT $2`;

/** The newest events (of `type`, of `symbol`, or all), newest first; the cost does not grow with the events stored. */
export async function latestEvents(
  db: Pick<Database, "sql">,
  filter: { type?: string; symbol?: string; limit?: number } = {},
): Promise<StoredEvent[]> {
  const symbol = filter.symbol ?? null;
  const limit = filter.limit ?? 50;
  const result =
    filter.type === undefined
      ? await db.sql.query<EventRow>(LATEST_OF_EVERY_TYPE, [symbol, limit])
      : await db.sql.query<EventRow>(LATEST_OF_TYPE, [filter.type, symbol, limit]);
  return result.rows.map(toEvent);
}

/** The newest event of `type` for each of `symbols`, in their order (symbols without one are absent), in one query. */
export async function latestEventPerSymbol(db: Pick<Database, "sql">, type: string, symbols: readonly string[]): Promise<StoredEvent[]> {
  const result = await db.sql.query<EventRow>(
    `SELECT e.id, e.time, e.type, e.symbol, e.level, e.payload
     FROM unnest($2::text[]) WITH ORDINALITY AS s(symbol, position)
     CROSS JOIN LATERAL (
       SELECT * FROM system_events WHERE symbol = s.symbol AND type = $1 ORDER BY time DESC, id DESC LIMIT 1
     ) AS e
     ORDER BY s.position`,
    [type, [...symbols]],
  );
  return result.rows.map(toEvent);
}
