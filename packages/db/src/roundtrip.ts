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

export type RoundTripKind = "candle" | "event" | "position" | "trade" | "account";
export const ROUNDTRIP_KINDS: readonly RoundTripKind[] = ["candle", "event", "position", "trade", "account"];

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
      async run(connection) {
        const wrote = {
          exchange: ROUNDTRIP_EXCHANGE,
          symbol: SYMBOL,
          side: "LONG",
          quantity: { decimal: "0.123456789012345678" },
          entryPrice: { decimal: "65432.1" },
          takeProfit: { decimal: "70000.000000000000000001" },
          stopLoss: { decimal: null },
          entryOrderId: `verify-entry-${id}`,
          openedAt,
          metadata: { json: { trailing: 61000.5, note: "round-trip" } },
        };
        const inserted = await connection.query<{ id: number }>(
          `INSERT INTO positions (exchange, symbol, side, quantity, entry_price, take_profit, stop_loss, entry_order_id, opened_at, updated_at, metadata)
           VALUES ($1, $2, $3::position_side, $4::numeric, $5::numeric, $6::numeric, $7::numeric, $8, $9, now(), $10::jsonb)
           RETURNING id`,
          [wrote.exchange, wrote.symbol, wrote.side, wrote.quantity.decimal, wrote.entryPrice.decimal, wrote.takeProfit.decimal, wrote.stopLoss.decimal, wrote.entryOrderId, openedAt, JSON.stringify(wrote.metadata.json)],
        );
        const read = await connection.query<Record<string, unknown>>(
          `SELECT exchange, symbol, side::text AS side, quantity::text AS quantity, entry_price::text AS entry_price, take_profit::text AS take_profit,
                  stop_loss::text AS stop_loss, entry_order_id, opened_at, metadata
           FROM positions WHERE id = $1`,
          [inserted.rows[0]?.id],
        );
        const row = read.rows[0];
        return differences(
          wrote,
          row && {
            exchange: String(row.exchange),
            symbol: String(row.symbol),
            side: String(row.side),
            quantity: decimalOrNull(row.quantity),
            entryPrice: decimalOrNull(row.entry_price),
            takeProfit: decimalOrNull(row.take_profit),
            stopLoss: decimalOrNull(row.stop_loss),
            entryOrderId: String(row.entry_order_id),
            openedAt: toDate(row.opened_at),
            metadata: { json: row.metadata },
          },
        );
      },
    },
    {
      kind: "trade",
      async run(connection) {
        const wrote = {
          exchange: ROUNDTRIP_EXCHANGE,
          symbol: SYMBOL,
          side: "SHORT",
          quantity: { decimal: "1.5" },
          entryPrice: { decimal: "100.25" },
          exitPrice: { decimal: "99.125" },
          entryTime: openedAt,
          exitTime: now,
          fees: { decimal: "0.000000000000000001" },
          realizedPnl: { decimal: "1.687499999999999999" },
          exitReason: "TAKE_PROFIT",
          entryOrderId: `verify-entry-${id}`,
          exitOrderId: `verify-exit-${id}`,
        };
        const inserted = await connection.query<{ id: number }>(
          `INSERT INTO trades (exchange, symbol, side, quantity, entry_price, exit_price, entry_time, exit_time, fees, realized_pnl, exit_reason, entry_order_id, exit_order_id)
           VALUES ($1, $2, $3::position_side, $4::numeric, $5::numeric, $6::numeric, $7, $8, $9::numeric, $10::numeric, $11::exit_reason, $12, $13)
           RETURNING id`,
          [wrote.exchange, wrote.symbol, wrote.side, wrote.quantity.decimal, wrote.entryPrice.decimal, wrote.exitPrice.decimal, openedAt, now, wrote.fees.decimal, wrote.realizedPnl.decimal, wrote.exitReason, wrote.entryOrderId, wrote.exitOrderId],
        );
        const read = await connection.query<Record<string, unknown>>(
          `SELECT exchange, symbol, side::text AS side, quantity::text AS quantity, entry_price::text AS entry_price, exit_price::text AS exit_price,
                  entry_time, exit_time, fees::text AS fees, realized_pnl::text AS realized_pnl, exit_reason::text AS exit_reason, entry_order_id, exit_order_id
           FROM trades WHERE id = $1`,
          [inserted.rows[0]?.id],
        );
        const row = read.rows[0];
        return differences(
          wrote,
          row && {
            exchange: String(row.exchange),
            symbol: String(row.symbol),
            side: String(row.side),
            quantity: decimalOrNull(row.quantity),
            entryPrice: decimalOrNull(row.entry_price),
            exitPrice: decimalOrNull(row.exit_price),
            entryTime: toDate(row.entry_time),
            exitTime: toDate(row.exit_time),
            fees: decimalOrNull(row.fees),
            realizedPnl: decimalOrNull(row.realized_pnl),
            exitReason: String(row.exit_reason),
            entryOrderId: String(row.entry_order_id),
            exitOrderId: String(row.exit_order_id),
          },
        );
      },
    },
    {
      kind: "account",
      async run(connection) {
        const wrote = {
          time: now,
          exchange: ROUNDTRIP_EXCHANGE,
          currency: "USDT",
          free: { decimal: "9876.543210987654321" },
          used: { decimal: "123.456789012345679" },
          total: { decimal: "10000" },
          equity: { decimal: "10012.000000000000000001" },
        };
        const inserted = await connection.query<{ id: number }>(
          `INSERT INTO account_state (time, exchange, currency, free, used, total, equity)
           VALUES ($1, $2, $3, $4::numeric, $5::numeric, $6::numeric, $7::numeric) RETURNING id`,
          [now, wrote.exchange, wrote.currency, wrote.free.decimal, wrote.used.decimal, wrote.total.decimal, wrote.equity.decimal],
        );
        const read = await connection.query<Record<string, unknown>>(
          `SELECT time, exchange, currency, free::text AS free, used::text AS used, total::text AS total, equity::text AS equity FROM account_state WHERE id = $1`,
          [inserted.rows[0]?.id],
        );
        const row = read.rows[0];
        return differences(
          wrote,
          row && {
            time: toDate(row.time),
            exchange: String(row.exchange),
            currency: String(row.currency),
            free: decimalOrNull(row.free),
            used: decimalOrNull(row.used),
            total: decimalOrNull(row.total),
            equity: decimalOrNull(row.equity),
          },
        );
      },
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
