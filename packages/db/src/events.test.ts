import { TIMEFRAME_MS } from "@candlekeep/core";
import { saveCandles } from "./candles";
import { eventPayloadJson, latestEventPerSymbol, latestEvents, MAX_EVENT_PAYLOAD_BYTES, recordEvent, recordEvents, type EventInput } from "./events";
import { savePosition } from "./positions";
import { useTestDatabase, type SuiteDatabase } from "./test-database-hooks";
import { captureLogger, countTableReads, DATABASE_KINDS, openTestDatabase } from "./testing";
import type { Database } from "./connect";

const T0 = Date.UTC(2026, 3, 1, 12);
const at = (minutes: number) => new Date(T0 + minutes * 60_000);

async function eventCount(db: Pick<Database, "sql">): Promise<number> {
  const result = await db.sql.query<{ n: string | number }>("SELECT count(*) AS n FROM system_events");
  return Number(result.rows[0]?.n);
}

/** The one stored payload of events of `type`. */
async function storedPayload(db: Pick<Database, "sql">, type: string): Promise<unknown> {
  const events = await latestEvents(db, { type });
  expect(events).toHaveLength(1);
  return events[0]?.payload;
}

describe.each(DATABASE_KINDS)("system events on the %s engine", (kind) => {
  const logger = captureLogger();
  let db: SuiteDatabase;
  useTestDatabase(kind, { logger, tables: "system_events", opened: (opened) => (db = opened) });

  it("stores type, symbol, level, payload and time as given", async () => {
    const payload = { action: "BUY", reasons: ["rsi < 30", "macd cross"], indicators: { rsi: 28.5, macd: -0.0012 }, ok: true, none: null };
    expect(await recordEvent(db, { type: "DECISION_TRACE", symbol: "BTC/USDT", level: "debug", payload, time: at(5) })).toBe(true);
    const [event] = await latestEvents(db);
    expect(event).toEqual({ id: expect.any(String), type: "DECISION_TRACE", symbol: "BTC/USDT", level: "debug", payload, time: at(5) });
    expect(logger.lines.filter((l) => l.level === "warn")).toEqual([]);
  });

  it("defaults the level to info, the symbol to null, the payload to {} and the time to now", async () => {
    const before = Date.now();
    expect(await recordEvent(db, { type: "STARTUP" })).toBe(true);
    const [event] = await latestEvents(db);
    expect(event).toMatchObject({ type: "STARTUP", symbol: null, level: "info", payload: {} });
    expect(event?.time.getTime()).toBeGreaterThanOrEqual(before - 1);
    expect(event?.time.getTime()).toBeLessThanOrEqual(Date.now() + 1);
  });

  it("ignores a second write with the same event key, keeping the first", async () => {
    expect(await recordEvent(db, { type: "ORDER", symbol: "ETH/USDT", payload: { n: 1 }, eventKey: "order:42" })).toBe(true);
    expect(await recordEvent(db, { type: "ORDER", symbol: "ETH/USDT", payload: { n: 2 }, eventKey: "order:42" })).toBe(true);
    expect(await recordEvents(db, [{ type: "ORDER", payload: { n: 3 }, eventKey: "order:43" }, { type: "ORDER", payload: { n: 4 }, eventKey: "order:43" }])).toBe(0);
    expect((await latestEvents(db, { type: "ORDER" })).map((e) => e.payload).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)))).toEqual([{ n: 1 }, { n: 3 }]);
    expect(logger.lines.filter((l) => l.level === "warn")).toEqual([]);
  });

  it("stores SQL text verbatim without executing it", async () => {
    const sql = "'); DROP TABLE candles; --";
    expect(await recordEvent(db, { type: `HOSTILE${sql}`, symbol: sql, payload: { [sql]: sql, "a\"b": "\\\"'" } })).toBe(true);
    const [event] = await latestEvents(db, { symbol: sql });
    expect(event).toMatchObject({ type: `HOSTILE${sql}`, symbol: sql, payload: { [sql]: sql, "a\"b": "\\\"'" } });
    const candles = await db.sql.query<{ present: boolean }>("SELECT to_regclass('candles') IS NOT NULL AS present");
    expect(candles.rows).toEqual([{ present: true }]);
  });

  it("keeps control characters and strips NUL characters, which PostgreSQL cannot store", async () => {
    const control = "bell\u0007 tab\t newline\n cr\r escape\u001b[31m del\u007f";
    expect(await recordEvent(db, { type: "CONTROL", payload: { control, nul: "a\u0000b\u0000", "k\u0000ey": ["\u0000x"] } })).toBe(true);
    expect(await storedPayload(db, "CONTROL")).toEqual({ control, nul: "ab", key: ["x"] });
  });

  it("keeps a literal backslash-u0000 text, which is not a NUL character", async () => {
    const text = "C:\\u0000dir and \\\\u0000 too";
    expect(await recordEvent(db, { type: "BACKSLASH", payload: { text, real: "x\u0000y" } })).toBe(true);
    expect(await storedPayload(db, "BACKSLASH")).toEqual({ text, real: "xy" });
  });

  it("replaces a lone UTF-16 surrogate, which PostgreSQL refuses, and keeps proper emoji", async () => {
    const broken = "price 😀".slice(0, -1);
    expect(await recordEvent(db, { type: "SURROGATE", payload: { broken, emoji: "🚀 to the moon" } })).toBe(true);
    expect(await storedPayload(db, "SURROGATE")).toEqual({ broken: "price \ufffd", emoji: "🚀 to the moon" });
  });

  it("stores BigInt values as decimal strings", async () => {
    expect(await recordEvent(db, { type: "BIGINT", payload: { volume: 12345678901234567890n, list: [1n, -2n] } })).toBe(true);
    expect(await storedPayload(db, "BIGINT")).toEqual({ volume: "12345678901234567890", list: ["1", "-2"] });
  });

  it("describes a circular reference instead of throwing, keeping the rest of the payload", async () => {
    const shared = { level: 1 };
    const node: { name: string; shared: typeof shared; again: typeof shared; self?: unknown; children: unknown[] } = { name: "root", shared, again: shared, children: [] };
    node.self = node;
    node.children.push({ parent: node });
    expect(await recordEvent(db, { type: "CIRCULAR", payload: node })).toBe(true);
    expect(await storedPayload(db, "CIRCULAR")).toEqual({ name: "root", shared: { level: 1 }, again: { level: 1 }, children: [{ parent: "[Circular]" }], self: "[Circular]" });
  });

  it("stores an Error in a payload with its name and message", async () => {
    expect(await recordEvent(db, { type: "ERROR", level: "error", payload: { error: new RangeError("price out of range") } })).toBe(true);
    expect(await storedPayload(db, "ERROR")).toEqual({ error: { name: "RangeError", message: "price out of range" } });
  });

  it("replaces a payload over 64 KiB with a truncation marker holding its size and a preview", async () => {
    const payload = { candles: Array.from({ length: 5000 }, (_, i) => ({ i, close: 100 + i / 7 })) };
    const json = JSON.stringify(payload);
    expect(Buffer.byteLength(json)).toBeGreaterThan(MAX_EVENT_PAYLOAD_BYTES);
    expect(await recordEvent(db, { type: "HUGE", payload })).toBe(true);
    const stored = await storedPayload(db, "HUGE");
    expect(stored).toEqual({ truncated: true, originalBytes: Buffer.byteLength(json), preview: json.slice(0, 2048) });
    expect(Buffer.byteLength(JSON.stringify(stored))).toBeLessThan(MAX_EVENT_PAYLOAD_BYTES);
  });

  it("stores a truncated payload even when the preview would cut an emoji in half", async () => {
    const payload = { s: `x${"😀".repeat(40_000)}` };
    expect(await recordEvent(db, { type: "HUGE_EMOJI", payload })).toBe(true);
    const stored = await storedPayload(db, "HUGE_EMOJI");
    expect(stored).toMatchObject({ truncated: true, originalBytes: Buffer.byteLength(JSON.stringify(payload)) });
    expect(JSON.stringify(stored)).not.toMatch(/\\ud83d"/);
  });

  it("keeps a payload of exactly the limit as it is", () => {
    const filler = "a".repeat(MAX_EVENT_PAYLOAD_BYTES - JSON.stringify({ s: "" }).length);
    expect(eventPayloadJson({ s: filler })).toBe(JSON.stringify({ s: filler }));
    expect(JSON.parse(eventPayloadJson({ s: `${filler}b` }))).toMatchObject({ truncated: true });
  });

  it("writes many events of any shape in one call, hostile ones included", async () => {
    const events: EventInput[] = Array.from({ length: 1000 }, (_, i) => ({ type: "BULK", symbol: `C${i % 10}/USDT`, payload: { i }, time: at(i) }));
    const cycle: { self?: unknown } = {};
    cycle.self = cycle;
    events.push({ type: "BULK", payload: { nul: "\u0000", big: 1n, cycle }, time: at(2000) });
    events.push({ type: "BULK", payload: { lone: "\ud800" }, time: at(2001) });
    events.push({ type: "BULK\u0000", symbol: "\udc00BAD/USDT", payload: { error: new Error("boom") }, time: at(2002) });
    expect(await recordEvents(db, events)).toBe(0);
    expect(await eventCount(db)).toBe(1003);
    expect((await latestEvents(db, { limit: 1 }))[0]).toMatchObject({ type: "BULK", symbol: "\ufffdBAD/USDT", payload: { error: { name: "Error", message: "boom" } } });
    expect(await recordEvents(db, [])).toBe(0);
  });

  it("numbers the events of a batch in the order given, across write chunks, skipping keys already stored", async () => {
    expect(await recordEvents(db, [{ type: "ORDER", eventKey: "order-5", payload: { i: -1 }, time: at(0) }])).toBe(0);
    const events: EventInput[] = Array.from({ length: 1200 }, (_, i) => ({ type: "ORDER", eventKey: `order-${i}`, payload: { i }, time: at(0) }));
    expect(await recordEvents(db, events)).toBe(0);
    const stored = await latestEvents(db, { type: "ORDER", limit: 2000 });
    const order = stored.reverse().map((event) => (event.payload as { i: number }).i);
    expect(order).toEqual([-1, ...Array.from({ length: 1200 }, (_, i) => i).filter((i) => i !== 5)]);
  });

  it("stores an event with an invalid time, an oversized symbol and an oversized key beside the others of its batch", async () => {
    const longKey = `k-${"x".repeat(20_000)}`;
    const dropped = await recordEvents(db, [
      { type: "ODD", symbol: "S".repeat(50_000), time: new Date(Number.NaN), eventKey: longKey, payload: { ok: 1 } },
      { type: "ODD", time: new Date(-8.64e15), payload: { ok: 2 } },
      { type: "ODD", time: at(1), payload: { ok: 3 } },
    ]);
    expect(dropped).toBe(0);
    const stored = await latestEvents(db, { type: "ODD" });
    expect(stored.map((e) => (e.payload as { ok: number }).ok).sort()).toEqual([1, 2, 3]);
    const odd = stored.find((e) => (e.payload as { ok: number }).ok === 1);
    expect(odd?.symbol).toHaveLength(200);
    expect(Math.abs((odd?.time.getTime() ?? 0) - Date.now())).toBeLessThan(60_000);
    // The shortened key still identifies the event: the same key again is ignored, a different long one is not.
    expect(await recordEvents(db, [{ type: "ODD", eventKey: longKey, payload: { ok: 4 } }, { type: "ODD", eventKey: `${longKey}y`, payload: { ok: 5 } }])).toBe(0);
    expect((await latestEvents(db, { type: "ODD" })).map((e) => (e.payload as { ok: number }).ok).sort()).toEqual([1, 2, 3, 5]);
  });

  it("filters the latest events by type and symbol, newest first, up to a limit", async () => {
    await recordEvents(db, [
      { type: "DECISION_TRACE", symbol: "BTC/USDT", payload: { n: 1 }, time: at(1) },
      { type: "DECISION_TRACE", symbol: "ETH/USDT", payload: { n: 2 }, time: at(2) },
      { type: "ORDER", symbol: "BTC/USDT", payload: { n: 3 }, time: at(3) },
      { type: "DECISION_TRACE", symbol: "BTC/USDT", payload: { n: 4 }, time: at(4) },
      { type: "STARTUP", payload: { n: 5 }, time: at(5) },
    ]);
    const ns = (events: { payload: unknown }[]) => events.map((e) => e.payload);
    const n = (...values: number[]) => values.map((value) => ({ n: value }));
    expect(ns(await latestEvents(db))).toEqual(n(5, 4, 3, 2, 1));
    expect(ns(await latestEvents(db, { type: "DECISION_TRACE" }))).toEqual(n(4, 2, 1));
    expect(ns(await latestEvents(db, { symbol: "BTC/USDT" }))).toEqual(n(4, 3, 1));
    expect(ns(await latestEvents(db, { type: "DECISION_TRACE", symbol: "BTC/USDT", limit: 1 }))).toEqual(n(4));
    expect(await latestEvents(db, { type: "SHUTDOWN" })).toEqual([]);
  });

  it("returns the newest event of a type per symbol, in the order asked, omitting symbols without one", async () => {
    await recordEvents(db, [
      { type: "DECISION_TRACE", symbol: "BTC/USDT", payload: { n: 1 }, time: at(1) },
      { type: "DECISION_TRACE", symbol: "BTC/USDT", payload: { n: 2 }, time: at(9) },
      { type: "DECISION_TRACE", symbol: "ETH/USDT", payload: { n: 3 }, time: at(3) },
      { type: "ORDER", symbol: "ETH/USDT", payload: { n: 4 }, time: at(20) },
      { type: "ORDER", symbol: "SOL/USDT", payload: { n: 5 }, time: at(20) },
    ]);
    const latest = await latestEventPerSymbol(db, "DECISION_TRACE", ["SOL/USDT", "ETH/USDT", "NONE/USDT", "BTC/USDT"]);
    expect(latest.map((e) => [e.symbol, e.payload, e.time])).toEqual([
      ["ETH/USDT", { n: 3 }, at(3)],
      ["BTC/USDT", { n: 2 }, at(9)],
    ]);
    expect(await latestEventPerSymbol(db, "DECISION_TRACE", [])).toEqual([]);
  });
});

describe("latestEvents on the server engine", () => {
  const logger = captureLogger();
  let db: SuiteDatabase;
  useTestDatabase("server", { logger, tables: "system_events", opened: (opened) => (db = opened) });

  it("finds the newest events of any type reading a few rows per type, however many are stored", async () => {
    const traces = Array.from({ length: 2_000 }, (_, i) => ({ type: "DECISION_TRACE", symbol: i % 2 === 0 ? "BTC/USDT" : "ETH/USDT", payload: { n: i }, time: at(i) }));
    expect(await recordEvents(db, [...traces, { type: "STARTUP", payload: { n: -1 }, time: at(-1) }, { type: "ERROR", symbol: "BTC/USDT", payload: { n: 1_500 }, time: at(1_500.5) }])).toBe(0);
    // With statistics, as autovacuum keeps them for a growing table: without, a table this small is cheaper to read whole.
    await db.sql.exec("ANALYZE system_events");
    const newest = await countTableReads(db, "system_events", (connection) => latestEvents({ sql: connection }, { limit: 2 }));
    expect(newest.result.map((e) => e.payload)).toEqual([{ n: 1_999 }, { n: 1_998 }]);
    const btc = await countTableReads(db, "system_events", (connection) => latestEvents({ sql: connection }, { symbol: "BTC/USDT", limit: 3 }));
    expect(btc.result.map((e) => [e.type, e.payload])).toEqual([
      ["DECISION_TRACE", { n: 1_998 }],
      ["DECISION_TRACE", { n: 1_996 }],
      ["DECISION_TRACE", { n: 1_994 }],
    ]);
    // Three types: a probe each to find them (and one more to end), then the newest rows of each, the
    // symbol's among them picked from the type's index or the symbol's: tens of rows, not the 2,002 stored.
    expect(newest.read).toBeLessThan(50);
    expect(btc.read).toBeLessThan(50);
  });
});

describe.each(DATABASE_KINDS)("write failures on the %s engine", (kind) => {
  const candle = { exchange: "sim", symbol: "BTC/USDT", timeframe: "1h", openTime: T0 - TIMEFRAME_MS["1h"], open: 1, high: 2, low: 0.5, close: 1.5, volume: 3, isClosed: true };
  const position = { exchange: "sim", symbol: "BTC/USDT", side: "LONG" as const, quantity: 1, entryPrice: 1, takeProfit: null, stopLoss: null, entryOrderId: "e1", openedAt: new Date(T0) };

  it("drops events with a warning and the dropped count when the table is gone, without throwing", async () => {
    const logger = captureLogger();
    const db = await openTestDatabase(kind, logger);
    try {
      await db.sql.exec("DROP TABLE system_events");
      logger.lines.length = 0;
      expect(await recordEvent(db, { type: "DECISION_TRACE", symbol: "BTC/USDT" })).toBe(false);
      expect(await recordEvents(db, [{ type: "A" }, { type: "B" }, { type: "A" }])).toBe(3);
      expect(logger.lines.map((l) => [l.level, l.message, l.meta?.dropped])).toEqual([
        ["warn", "events not recorded", 1],
        ["warn", "events not recorded", 3],
      ]);
      expect(logger.lines[1]?.meta).toMatchObject({ types: ["A", "B"], error: expect.stringMatching(/system_events/) });
    } finally {
      await db.close();
    }
  });

  it("after the database is closed: events are dropped with a warning, candles and positions raise, positions log an error", async () => {
    const logger = captureLogger();
    const db = await openTestDatabase(kind, logger);
    await db.close();
    logger.lines.length = 0;

    await expect(recordEvent(db, { type: "SHUTDOWN" })).resolves.toBe(false);
    expect(logger.lines).toEqual([{ level: "warn", message: "events not recorded", meta: expect.objectContaining({ dropped: 1, types: ["SHUTDOWN"] }) }]);
    logger.lines.length = 0;

    await expect(saveCandles(db, [candle])).rejects.toThrow();
    await expect(savePosition(db, position)).rejects.toThrow();
    expect(logger.lines).toEqual([{ level: "error", message: "savePosition failed", meta: expect.objectContaining({ exchange: "sim", symbol: "BTC/USDT", error: expect.any(String) }) }]);
  });
});

describe("eventPayloadJson", () => {
  it("writes a plain payload exactly as JSON.stringify does, dates, nulls and shared objects included", () => {
    const shared = { price: 101.5 };
    const payload = { action: "BUY", at: new Date(T0), levels: [shared, shared], position: null, skipped: undefined, reasons: ["rsi 55.2", "atr 1.5"] };
    expect(eventPayloadJson(payload)).toBe(JSON.stringify(payload));
  });

  it("describes what JSON.stringify alone would get wrong, however deep it is nested", () => {
    class Fill {
      constructor(readonly error: Error) {}
    }
    expect(JSON.parse(eventPayloadJson({ fill: new Fill(new TypeError("order rejected")) }))).toEqual({ fill: { error: { name: "TypeError", message: "order rejected" } } });
    expect(JSON.parse(eventPayloadJson({ amount: { toJSON: () => ({ units: 5n }) } }))).toEqual({ amount: { units: "5" } });
    let deep: unknown = { volume: 7n };
    for (let i = 0; i < 40; i += 1) deep = { next: deep };
    expect(eventPayloadJson(deep)).toBe(JSON.stringify(deep, (_key, value: unknown) => (typeof value === "bigint" ? value.toString() : value)));
  });
});
