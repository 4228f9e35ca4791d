import { randomUUID } from "node:crypto";
import { alignToTimeframe, describeError, type Logger } from "@candlekeep/core";
import { recentCandles, saveCandles, type CandleInput } from "./candles";
import type { Database } from "./connect";
import { latestEvents, recordEvents } from "./events";
import type { SqlRunner } from "./sql";

/**
 * Writes one row of each kind through the same paths the bot uses where they
 * accept a plain connection (candles, events) and plain SQL for the rest, reads
 * each back and compares, all inside one transaction that is always rolled back:
 * real data is never touched. Values use an exchange no real row has, so even
 * the uniqueness constraints cannot meet a real row. (Sequences, which ignore
 * rollbacks, do advance: ids of the next real rows skip a number.)
 */

export const ROUNDTRIP_EXCHANGE = "verify-roundtrip";
const SYMBOL = "VERIFY/ROUNDTRIP";
const EVENT_TYPE = "VERIFY_ROUNDTRIP";

export type RoundTripKind = "candle" | "event" | "position" | "trade" | "order" | "account";
export const ROUNDTRIP_KINDS: readonly RoundTripKind[] = ["candle", "event", "position", "trade", "order", "account"];

export interface RoundTripResult {
  kind: RoundTripKind;
  ok: boolean;
  /** Why it failed: the database error, or which values came back different. */
  problem: string | undefined;
}

/** A numeric as its shortest decimal text ("12.500" → "12.5"), for exact comparison. */
function canonicalDecimal(value: unknown): string {
  const text = String(value);
  if (!text.includes(".")) return text;
  return text.replace(/0+$/, "").replace(/\.$/, "");
}

/** JSON text with sorted keys: jsonb does not keep key order. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

type Comparable = string | number | boolean | null | Date | { json: unknown } | { decimal: string | null };

function comparable(value: Comparable): string {
  if (value instanceof Date) return value.toISOString();
  if (value !== null && typeof value === "object") return "json" in value ? canonicalJson(value.json) : value.decimal === null ? "null" : canonicalDecimal(value.decimal);
  return JSON.stringify(value);
}

/** "field: wrote X, read Y" for each differing field; empty when equal. */
function differences(wrote: Record<string, Comparable>, read: Record<string, Comparable> | undefined): string[] {
  if (read === undefined) return ["the row was not found after writing it"];
  return Object.keys(wrote).flatMap((key) => {
    const a = comparable(wrote[key] ?? null);
    const b = comparable(read[key] ?? null);
    return a === b ? [] : [`${key}: wrote ${a}, read ${b}`];
  });
}

const toDate = (value: unknown) => (value instanceof Date ? value : new Date(String(value)));
const decimalOrNull = (value: unknown) => ({ decimal: value === null || value === undefined ? null : String(value) });

/** A value the plain-SQL kinds write: text, a timestamp, a numeric as its exact text, or JSON. */
type SqlValue = string | Date | { decimal: string | null } | { json: unknown };
/** A field of such a row: its column, the value, and for text stored as an enum, the enum's type. */
type SqlField = [column: string, value: SqlValue, enumType?: string];

const isDecimal = (value: SqlValue): value is { decimal: string | null } => typeof value === "object" && "decimal" in value;
const isJson = (value: SqlValue): value is { json: unknown } => typeof value === "object" && "json" in value;

/** The parameter sent for a value, cast so PostgreSQL parses it as the column's type (numerics from exact text). */
function sqlParameter(value: SqlValue, enumType: string | undefined, index: number): { param: unknown; placeholder: string } {
  if (isDecimal(value)) return { param: value.decimal, placeholder: `$${index}::numeric` };
  if (isJson(value)) return { param: JSON.stringify(value.json), placeholder: `$${index}::jsonb` };
  return { param: value, placeholder: enumType === undefined ? `$${index}` : `$${index}::${enumType}` };
}

/** Numerics and enums come back as text (exact, no float conversion); the rest as pg parses them. */
function readBack(value: SqlValue, raw: unknown): Comparable {
  if (isDecimal(value)) return decimalOrNull(raw);
  if (isJson(value)) return { json: raw };
  return value instanceof Date ? toDate(raw) : String(raw);
}

/**
 * Inserts one row of `table` with plain SQL (`defaults`: columns given as SQL,
 * not compared), reads it back by its id and lists the fields that differ.
 */
async function sqlRoundTrip(connection: SqlRunner, table: string, fields: Record<string, SqlField>, defaults: Record<string, string> = {}): Promise<string[]> {
  const entries = Object.entries(fields);
  const sent = entries.map(([, [, value, enumType]], i) => sqlParameter(value, enumType, i + 1));
  const columns = [...entries.map(([, [column]]) => column), ...Object.keys(defaults)];
  const values = [...sent.map((s) => s.placeholder), ...Object.values(defaults)];
  const inserted = await connection.query<{ id: number }>(
    `INSERT INTO ${table} (${columns.join(", ")}) VALUES (${values.join(", ")}) RETURNING id`,
    sent.map((s) => s.param),
  );
  const selected = entries.map(([field, [column, value, enumType]]) => `${isDecimal(value) || enumType !== undefined ? `${column}::text` : column} AS "${field}"`);
  const read = await connection.query<Record<string, unknown>>(`SELECT ${selected.join(", ")} FROM ${table} WHERE id = $1`, [inserted.rows[0]?.id]);
  const row = read.rows[0];
  return differences(
    Object.fromEntries(entries.map(([field, [, value]]) => [field, value])),
    row && Object.fromEntries(entries.map(([field, [, value]]) => [field, readBack(value, row[field])])),
  );
}

interface Step {
  kind: RoundTripKind;
  run(connection: SqlRunner): Promise<string[]>;
}

function steps(nowMs: number, logger: Logger): Step[] {
  const id = randomUUID();
  // timestamptz(3) columns: whole milliseconds survive exactly.
  const now = new Date(nowMs);
  const openedAt = new Date(nowMs - 3_600_000);
  return [
    {
      kind: "candle",
      async run(connection) {
        // Float values with many significant digits: float8 must return them bit for bit.
        const candle: CandleInput = {
          exchange: ROUNDTRIP_EXCHANGE,
          symbol: SYMBOL,
          timeframe: "15m",
          openTime: alignToTimeframe(nowMs, "15m") - 15 * 60_000,
          open: 65432.123456789,
          high: 65500.987654321,
          low: 65400.000000001,
          close: 65450.5,
          volume: 0.000123456789,
          isClosed: true,
        };
        const saved = await saveCandles({ sql: connection }, [candle], nowMs);
        if (saved.rejected.length > 0) return [`the test candle was rejected: ${saved.rejected.map((r) => r.reason).join("; ")}`];
        const [read] = await recentCandles({ sql: connection }, { exchange: ROUNDTRIP_EXCHANGE, symbol: SYMBOL, timeframe: "15m" }, 1);
        return differences({ ...candle }, read && { ...read });
      },
    },
    {
      kind: "event",
      async run(connection) {
        // recordEvents logs and swallows failures (events are non-critical); keep its reason.
        let failure: string | undefined;
        const keep: Logger = {
          ...logger,
          warn: (message, meta) => {
            failure = typeof meta?.error === "string" ? meta.error : message;
          },
        };
        const payload = { exchange: ROUNDTRIP_EXCHANGE, action: "NO_SIGNAL", reasons: ["round-trip", "ünïcödé ✓"], indicators: { rsi: 48.125, ema: [1.5, 2.25] }, none: null };
        const dropped = await recordEvents({ sql: connection, logger: keep }, [{ type: EVENT_TYPE, symbol: SYMBOL, level: "debug", payload, time: now, eventKey: `verify-roundtrip-${id}` }]);
        if (dropped > 0) return [`the test event was not stored: ${failure ?? "unknown error"}`];
        const [read] = await latestEvents({ sql: connection }, { type: EVENT_TYPE, symbol: SYMBOL, limit: 1 });
        return differences(
          { type: EVENT_TYPE, symbol: SYMBOL, level: "debug", time: now, payload: { json: payload } },
          read && { type: read.type, symbol: read.symbol, level: read.level, time: read.time, payload: { json: read.payload } },
        );
      },
    },
    {
      kind: "position",
      run: (connection) =>
        sqlRoundTrip(
          connection,
          "positions",
          {
            exchange: ["exchange", ROUNDTRIP_EXCHANGE],
            symbol: ["symbol", SYMBOL],
            side: ["side", "LONG", "position_side"],
            quantity: ["quantity", { decimal: "0.123456789012345678" }],
            entryPrice: ["entry_price", { decimal: "65432.1" }],
            takeProfit: ["take_profit", { decimal: "70000.000000000000000001" }],
            stopLoss: ["stop_loss", { decimal: null }],
            entryOrderId: ["entry_order_id", `verify-entry-${id}`],
            entryFee: ["entry_fee", { decimal: "0.065432100000000001" }],
            openedAt: ["opened_at", openedAt],
            metadata: ["metadata", { json: { trailing: 61000.5, note: "round-trip" } }],
          },
          { updated_at: "now()" },
        ),
    },
    {
      kind: "trade",
      run: (connection) =>
        sqlRoundTrip(connection, "trades", {
          exchange: ["exchange", ROUNDTRIP_EXCHANGE],
          symbol: ["symbol", SYMBOL],
          side: ["side", "SHORT", "position_side"],
          quantity: ["quantity", { decimal: "1.5" }],
          entryPrice: ["entry_price", { decimal: "100.25" }],
          exitPrice: ["exit_price", { decimal: "99.125" }],
          entryTime: ["entry_time", openedAt],
          exitTime: ["exit_time", now],
          fees: ["fees", { decimal: "0.000000000000000001" }],
          realizedPnl: ["realized_pnl", { decimal: "1.687499999999999999" }],
          exitReason: ["exit_reason", "TAKE_PROFIT", "exit_reason"],
          entryOrderId: ["entry_order_id", `verify-entry-${id}`],
          exitOrderId: ["exit_order_id", `verify-exit-${id}`],
        }),
    },
    {
      // Every column of an order the bot has seen partly filled, fees in two currencies.
      kind: "order",
      run: (connection) =>
        sqlRoundTrip(
          connection,
          "orders",
          {
            exchange: ["exchange", ROUNDTRIP_EXCHANGE],
            mode: ["mode", "paper", "trading_mode"],
            symbol: ["symbol", SYMBOL],
            side: ["side", "sell", "order_side"],
            type: ["type", "market"],
            purpose: ["purpose", "exit", "order_purpose"],
            clientOrderId: ["client_order_id", `verifyexit${id.replace(/-/g, "")}`],
            exchangeOrderId: ["exchange_order_id", `verify-${id}`],
            positionKey: ["position_key", `verify-entry-${id}`],
            exitReason: ["exit_reason", "STOP_LOSS", "exit_reason"],
            requestedAmount: ["requested_amount", { decimal: "0.123456789012345678" }],
            requestedCost: ["requested_cost", { decimal: null }],
            referencePrice: ["reference_price", { decimal: "65432.1" }],
            status: ["status", "partially_filled", "order_status"],
            filledAmount: ["filled_amount", { decimal: "0.1" }],
            averagePrice: ["average_price", { decimal: "65431.999999999999999999" }],
            filledCost: ["filled_cost", { decimal: "6543.199999999999999999" }],
            feeQuote: ["fee_quote", { decimal: "6.5432" }],
            feeBase: ["fee_base", { decimal: "0.000000000000000001" }],
            fees: ["fees", { json: [{ currency: "USDT", cost: 6.5432, quoteValue: 6.5432 }, { currency: "BNB", cost: 0.0001, quoteValue: null }] }],
            error: ["error", "ünïcödé ✓ timeout"],
            createdAt: ["created_at", now],
          },
          { updated_at: "now()" },
        ),
    },
    {
      kind: "account",
      run: (connection) =>
        sqlRoundTrip(connection, "account_state", {
          time: ["time", now],
          exchange: ["exchange", ROUNDTRIP_EXCHANGE],
          currency: ["currency", "USDT"],
          free: ["free", { decimal: "9876.543210987654321" }],
          used: ["used", { decimal: "123.456789012345679" }],
          total: ["total", { decimal: "10000" }],
          equity: ["equity", { decimal: "10012.000000000000000001" }],
        }),
    },
  ];
}

/**
 * Runs the round trip on one dedicated connection: BEGIN, each kind under its
 * own savepoint (so one broken table does not hide the others), ROLLBACK.
 */
export async function roundTrip(db: Pick<Database, "session" | "logger">, options: { nowMs?: number } = {}): Promise<RoundTripResult[]> {
  const nowMs = Math.floor(options.nowMs ?? Date.now());
  return db.session(async (connection) => {
    await connection.exec("BEGIN");
    try {
      // Never wait behind the bot's locks for long; a slow smoke test is a failed one.
      await connection.exec("SET LOCAL lock_timeout = '5s'; SET LOCAL statement_timeout = '30s'");
      const results: RoundTripResult[] = [];
      for (const step of steps(nowMs, db.logger)) {
        await connection.exec("SAVEPOINT verify_roundtrip");
        let problems: string[];
        try {
          problems = await step.run(connection);
        } catch (error) {
          problems = [describeError(error)];
        }
        // Undone at once, whatever happened: a failed statement (even one a repository
        // swallowed) must not abort the transaction for the kinds after it.
        await connection.exec("ROLLBACK TO SAVEPOINT verify_roundtrip");
        results.push({ kind: step.kind, ok: problems.length === 0, problem: problems.length === 0 ? undefined : problems.join("; ") });
      }
      return results;
    } finally {
      await connection.exec("ROLLBACK");
    }
  });
}
