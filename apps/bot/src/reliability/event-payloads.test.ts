import { latestEvents, MAX_EVENT_PAYLOAD_BYTES, newestDecisionTraceTime, type EventInput } from "@candlekeep/db";
import { useServerTestBot } from "../testing/server-bot";

/**
 * Reliability, bad input 9: oversized and hostile event payloads, recorded the
 * way the bot records its events (queued during a tick, written in one batch
 * with its decision traces). They are stored as data, or truncated with a
 * marker, never executed, and never make the batch (or the bot) fail.
 */

const INJECTION = "'); DROP TABLE candles; --";

describe("hostile event payloads end to end (simulated exchange, PostgreSQL server)", () => {
  const testBot = useServerTestBot();

  it("stores them safely in the same batch as the decision traces, truncating what is too large, and keeps writing", async () => {
    const started = await testBot.start({ SYMBOLS: "BTC/USDT,ETH/USDT" });
    await started.ticks(1);
    const circular: Record<string, unknown> = { name: "loop" };
    circular.self = circular;
    const hostile: EventInput[] = [
      { type: "HOSTILE_LARGE", payload: { blob: "x".repeat(2 * 1024 * 1024), rows: Array.from({ length: 20_000 }, (_, i) => ({ i, v: `${i}` })) } },
      { type: "HOSTILE_SQL", symbol: INJECTION, payload: { text: INJECTION, [INJECTION]: "$1 $$ \\x00 %s ${x}" }, eventKey: INJECTION },
      { type: "HOSTILE_CONTROL", payload: { text: "nul\u0000 bell\u0007 esc\u001b[31m cr\r lf\n tab\t lone surrogate \ud800 emoji 🚀 rtl \u202e" } },
      { type: "HOSTILE_SHAPES", payload: { big: 2n ** 70n, error: new Error("boom"), circular, nan: Number.NaN, inf: Number.POSITIVE_INFINITY, undef: undefined } },
      { type: "HOSTILE_FIELDS", symbol: "S".repeat(100_000), time: new Date(Number.NaN), eventKey: "k".repeat(50_000), payload: { ok: true } },
      { type: "HOSTILE_TIME", time: new Date(-8.64e15), payload: { ok: true } },
    ];
    started.runtime.pendingEvents.push(...hostile);
    const [report] = await started.ticks(1);
    expect(report?.eventsDropped).toBe(0);
    expect(report?.failed).toEqual([]);
    expect(report?.events).toBeGreaterThan(hostile.length); // the decision traces went in the same batch

    const db = await started.database.get();
    const stored = new Map((await latestEvents(db, { limit: 1000 })).map((event) => [event.type, event]));
    // Decision traces of that tick were stored beside them.
    expect(await newestDecisionTraceTime(db, started.runtime.market.id)).toEqual(new Date(report?.exchangeTime ?? 0));

    const large = stored.get("HOSTILE_LARGE")?.payload as { truncated: boolean; originalBytes: number; preview: string };
    expect(large.truncated).toBe(true);
    expect(large.originalBytes).toBeGreaterThan(MAX_EVENT_PAYLOAD_BYTES);
    expect(large.preview.startsWith('{"blob":"xxx')).toBe(true);

    const sql = stored.get("HOSTILE_SQL");
    expect(sql?.symbol).toBe(INJECTION);
    expect(sql?.payload).toEqual({ text: INJECTION, [INJECTION]: "$1 $$ \\x00 %s ${x}" });
    const candles = await db.sql.query<{ n: string }>("SELECT count(*) AS n FROM candles");
    expect(Number(candles.rows[0]?.n)).toBeGreaterThan(0); // the table is still there

    expect(stored.get("HOSTILE_CONTROL")?.payload).toEqual({ text: "nul bell\u0007 esc\u001b[31m cr\r lf\n tab\t lone surrogate \ufffd emoji 🚀 rtl \u202e" });
    expect(stored.get("HOSTILE_SHAPES")?.payload).toEqual({ big: "1180591620717411303424", error: { name: "Error", message: "boom" }, circular: { name: "loop", self: "[Circular]" }, nan: null, inf: null });

    const fields = stored.get("HOSTILE_FIELDS");
    expect(fields?.symbol?.length).toBeLessThanOrEqual(200);
    expect(fields?.symbol?.endsWith("…")).toBe(true);
    expect(Math.abs((fields?.time.getTime() ?? 0) - Date.now())).toBeLessThan(60 * 60_000); // an invalid time becomes now
    expect(stored.get("HOSTILE_TIME")?.time.getTime()).toBeGreaterThan(0);

    // The writer goes on: the next tick's events are recorded, and replaying the keyed events stores nothing twice.
    started.runtime.pendingEvents.push(...hostile.filter((e) => e.eventKey !== undefined));
    const [next] = await started.ticks(1);
    expect(next?.eventsDropped).toBe(0);
    const keyed = await db.sql.query<{ n: string }>("SELECT count(*) AS n FROM system_events WHERE type IN ('HOSTILE_SQL', 'HOSTILE_FIELDS')");
    expect(Number(keyed.rows[0]?.n)).toBe(2);
  });
});
