import { createHash } from "node:crypto";
import { describeError } from "@candlekeep/core";
import type { Database } from "./connect";

export type EventLevel = "debug" | "info" | "warn" | "error";

/** Known event types; others are allowed (the audit trail grows with the bot). */
export type EventType = "DECISION_TRACE" | "ORDER" | "ERROR" | "STARTUP" | "SHUTDOWN" | "POSITION_OPENED" | "POSITION_CLOSED" | (string & {});

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

/**
 * What jsonb refuses in JSON text, fixed: the escape \u0000 (NUL) is removed, and
 * an escaped lone UTF-16 surrogate (JSON.stringify writes one as \udXXX) becomes
 * U+FFFD. An escape counts only after an even number of backslashes, so the text
 * "\\u0000" (a literal backslash) is left alone.
 */
function jsonbSafe(json: string): string {
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
    text = JSON.stringify(payload ?? {}, payloadReplacer()) ?? "{}";
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

const INSERT_EVENTS = `
INSERT INTO system_events (time, type, symbol, level, payload, event_key)
SELECT (e->>'time')::timestamptz, e->>'type', e->>'symbol', e->>'level', e->'payload', e->>'eventKey'
FROM jsonb_array_elements($1::jsonb) AS e
ON CONFLICT (event_key) DO NOTHING`;

/** Longest type, symbol and level stored; they are indexed, and an index entry must stay small. */
export const MAX_EVENT_TEXT_CHARS = 200;
/** Longest event key stored as is; a longer one keeps its start and a hash of the whole. */
const MAX_EVENT_KEY_CHARS = 400;
const LATEST_EVENT_TIME = Date.UTC(9999, 11, 31);

function clampText(value: string, max: number): string {
  return value.length <= max ? value : `${value.slice(0, max - 1)}…`;
}

/**
 * One event as the INSERT reads it, as JSON text. Every field is made storable,
 * so one bad event (an invalid date, a 1 MB symbol) cannot make the whole batch
 * fail: a time that is not a date between 1970 and 9999 becomes now, over-long
 * texts are cut with a trailing "…", an over-long key is shortened without
 * losing its uniqueness.
 */
function eventRowJson(event: EventInput, now: Date): string {
  const timeMs = event.time instanceof Date ? event.time.getTime() : Number.NaN;
  const key = event.eventKey ?? null;
  const fields = jsonbSafe(
    JSON.stringify({
      time: (timeMs >= 0 && timeMs <= LATEST_EVENT_TIME ? new Date(timeMs) : now).toISOString(),
      type: clampText(String(event.type), MAX_EVENT_TEXT_CHARS),
      symbol: event.symbol == null ? null : clampText(String(event.symbol), MAX_EVENT_TEXT_CHARS),
      level: clampText(String(event.level ?? "info"), MAX_EVENT_TEXT_CHARS),
      eventKey: key === null || key.length <= MAX_EVENT_KEY_CHARS ? key : `${key.slice(0, MAX_EVENT_KEY_CHARS - 72)}…sha256:${createHash("sha256").update(key).digest("hex")}`,
    }),
  );
  // The payload's JSON text is spliced in as is, not stringified again as a string: half the
  // bytes to send, no second escaping here and no second parse in the server.
  return `${fields.slice(0, -1)},"payload":${eventPayloadJson(event.payload)}}`;
}

/**
 * Writes events in one statement. Non-critical, as in the seed: a failure is
 * logged and swallowed. Returns how many were dropped (0 on success).
 */
export async function recordEvents(db: Pick<Database, "sql" | "logger">, events: readonly EventInput[]): Promise<number> {
  if (events.length === 0) return 0;
  const now = new Date();
  try {
    await db.sql.query(INSERT_EVENTS, [`[${events.map((event) => eventRowJson(event, now)).join(",")}]`]);
    return 0;
  } catch (error) {
    db.logger.warn("events not recorded", { dropped: events.length, types: [...new Set(events.map((e) => e.type))], error: describeError(error) });
    return events.length;
  }
}

/** Writes one event; non-critical (logged and swallowed). Returns true when stored. */
export async function recordEvent(db: Pick<Database, "sql" | "logger">, event: EventInput): Promise<boolean> {
  return (await recordEvents(db, [event])) === 0;
}

interface EventRow {
  id: string;
  time: Date;
  type: string;
  symbol: string | null;
  level: string;
  payload: unknown;
}

const toEvent = (row: EventRow): StoredEvent => ({ ...row, id: String(row.id), time: new Date(row.time) });

export async function latestEvents(
  db: Pick<Database, "sql">,
  filter: { type?: string; symbol?: string; limit?: number } = {},
): Promise<StoredEvent[]> {
  const result = await db.sql.query<EventRow>(
    `SELECT id, time, type, symbol, level, payload FROM system_events
     WHERE ($1::text IS NULL OR type = $1) AND ($2::text IS NULL OR symbol = $2)
     ORDER BY time DESC, id DESC LIMIT $3`,
    [filter.type ?? null, filter.symbol ?? null, filter.limit ?? 50],
  );
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
