import { setTimeout as sleep } from "node:timers/promises";
import { TIMEFRAME_MS, alignToTimeframe } from "@candlekeep/core";
import { auditHistory, latestDecisionTracePerSymbol, listCandleGaps, recordDecisionTraces, recordEvents, seriesAuditStates, type Database, type DecisionTraceInput, type EventInput } from "@candlekeep/db";
import { createEmbeddedTestDatabase, openOnTestDatabase } from "@candlekeep/db/testing";
import { keepHistory } from "../history/keeper";
import { repairHistory } from "../history/repair";
import { backfillDays } from "../testing/backfill";
import { startTestBot, type TestBot } from "../testing/bot";
import { recordCandleRequests } from "../testing/candle-requests";
import { spawnBot } from "../testing/process";
import { useServerTestBot } from "../testing/server-bot";
import type { Action } from "../strategy/types";
import { keepRetention, retentionPass } from "./keeper";

/** The running bot's retention in the background (in process, PostgreSQL server, the sim). */

const SYMBOLS = ["BTC/USDT", "ETH/USDT"];
const DAY = 86_400_000;
const STEP = TIMEFRAME_MS["15m"];
/** The sim starts this many 15m candles back: room for a week of history before its clock. */
const FAR_BACK = 2000;

/** The first line logged from index `from` on with `message`, waited for. */
async function logged(bot: TestBot, message: string, from = 0): Promise<Record<string, unknown>> {
  for (let waited = 0; waited < 60_000; waited += 50) {
    const line = bot.logger.lines.slice(from).find((l) => l.message === message);
    if (line) return line.meta ?? {};
    await sleep(50);
  }
  throw new Error(`not logged within 60 s: ${message}`);
}

const event = (type: string, symbol: string | null, time: number, payload: object = {}): EventInput => ({ type, symbol, time: new Date(time), payload });
const trace = (symbol: string, time: number): DecisionTraceInput => ({ exchange: "sim", symbol, time: new Date(time), payload: { action: "NO_SIGNAL" } });

/** Events per type (decision traces as DECISION_TRACE), and whether older than `cutoff`. */
async function eventCounts(db: Database, cutoff: number): Promise<Record<string, number>> {
  const result = await db.sql.query<{ type: string; old: boolean; n: string | number }>(
    `SELECT type, time < timestamptz 'epoch' + $1::int8 * interval '1 millisecond' AS old, count(*) AS n
     FROM (SELECT type, time FROM system_events UNION ALL SELECT 'DECISION_TRACE', time FROM decision_traces) AS e GROUP BY 1, 2 ORDER BY 1, 2`,
    [cutoff],
  );
  return Object.fromEntries(result.rows.map((row) => [`${row.type} ${row.old ? "old" : "new"}`, Number(row.n)]));
}

/** The oldest stored candle per series (epoch ms). */
async function oldestCandles(db: Database): Promise<Record<string, number>> {
  const result = await db.sql.query<{ symbol: string; timeframe: string; first: string | number }>(
    "SELECT symbol, timeframe, (extract(epoch from min(open_time)) * 1000)::int8 AS first FROM candles WHERE exchange = 'sim' GROUP BY 1, 2 ORDER BY 1, 2",
  );
  return Object.fromEntries(result.rows.map((row) => [`${row.symbol} ${row.timeframe}`, Number(row.first)]));
}

describe("the background retention", () => {
  const testBot = useServerTestBot();
  let db: Database | undefined;
  afterEach(async () => {
    await db?.close();
    db = undefined;
  });

  it("removes the decision traces older than EVENT_RETENTION_DAYS after the first tick, and nothing else; the throttle still resumes from the newest", async () => {
    const bot = await testBot.start({ SYMBOLS: SYMBOLS.join(","), EVENT_RETENTION_DAYS: "30", DECISION_TRACE_INTERVAL_MS: String(DAY) });
    const now = bot.runtime.market.now();
    const cutoff = now - 30 * DAY;
    db = await openOnTestDatabase(testBot.database);
    const old = [...SYMBOLS, "GONE/USDT"].flatMap((symbol) => Array.from({ length: 10 }, (_, day) => trace(symbol, cutoff - (day + 1) * DAY)));
    const others = ["ORDER", "POSITION_OPENED", "POSITION_CLOSED", "ERROR", "STARTUP", "COIN_DELISTED"].map((type) => event(type, "BTC/USDT", cutoff - 5 * DAY));
    const recent = SYMBOLS.map((symbol) => trace(symbol, cutoff + DAY));
    expect(await recordDecisionTraces(db, [...old, ...recent])).toBe(0);
    expect(await recordEvents(db, others)).toBe(0);

    const stop = new AbortController();
    const keeping = keepRetention(bot.runtime, { signal: stop.signal });
    try {
      await sleep(300);
      // Nothing before the first tick.
      expect((await eventCounts(db, cutoff))["DECISION_TRACE old"]).toBe(old.length);
      await bot.ticks(1);
      // The pass's cutoff is 30 days before the exchange time it runs at: after the tick.
      const pass = await logged(bot, "retention pass");
      expect(pass).toMatchObject({ tracesBefore: new Date(bot.runtime.market.now() - 30 * DAY).toISOString(), tracesRemoved: old.length, candlesRemoved: {}, stopped: false });
    } finally {
      stop.abort();
      await keeping;
    }
    const counts = await eventCounts(db, cutoff);
    expect(counts["DECISION_TRACE old"]).toBeUndefined();
    for (const type of ["ORDER", "POSITION_OPENED", "POSITION_CLOSED", "ERROR", "COIN_DELISTED"]) expect(counts[`${type} old`]).toBe(1);
    // The newer traces, the first tick's among them, and this run's STARTUP.
    expect(counts["DECISION_TRACE new"]).toBe(2 * SYMBOLS.length);
    expect(counts["STARTUP new"]).toBe(1);

    // A restart resumes the throttle from each coin's newest trace: an unchanged decision is not recorded again within the interval.
    const newest = await latestDecisionTracePerSymbol(db, { exchange: "sim", symbols: SYMBOLS });
    expect(newest.map((e) => [e.symbol, e.time.getTime()])).toEqual(SYMBOLS.map((symbol) => [symbol, bot.runtime.market.now()]));
    const restarted = await testBot.start({ SYMBOLS: SYMBOLS.join(","), EVENT_RETENTION_DAYS: "30", DECISION_TRACE_INTERVAL_MS: String(DAY) }, { backfill: false });
    for (const stored of newest) {
      const action = (stored.payload as { action: Action }).action;
      const decision = { action, reasons: [], price: 1, candleTime: 0, indicators: { emaFast: null, emaSlow: null, rsi: null, atr: null }, takeProfit: null, stopLoss: null };
      expect(restarted.runtime.traces.trace(stored.symbol, decision, stored.time.getTime() + STEP, { lastPrice: 1, outcome: "none" })).toBeUndefined();
    }
  }, 120_000);

  it("keeps every trace with EVENT_RETENTION_DAYS=0 (and no candle retention): the retention does not run", async () => {
    const bot = await testBot.start({ SYMBOLS: "BTC/USDT", EVENT_RETENTION_DAYS: "0" });
    db = await openOnTestDatabase(testBot.database);
    const ancient = bot.runtime.market.now() - 5000 * DAY;
    await recordDecisionTraces(db, [trace("BTC/USDT", ancient)]);
    const stop = new AbortController();
    // Resolves at once: nothing to remove, ever.
    await keepRetention(bot.runtime, { intervalMs: 10, signal: stop.signal });
    await bot.ticks(2);
    expect((await eventCounts(db, ancient + 1))["DECISION_TRACE old"]).toBe(1);
    expect(bot.logger.lines.some((line) => line.message.startsWith("retention"))).toBe(false);
  }, 60_000);

  it("removes only the named timeframe's candles before CANDLE_RETENTION_DAYS, and neither the audit, the background repair nor backfill --days brings them back", async () => {
    // A week of 15m and 1h history with a hole in each, older than three days.
    const settings = { SYMBOLS: SYMBOLS.join(","), TIMEFRAMES: "15m,1h", SIM_REPLAY_CANDLES: String(FAR_BACK) };
    const loader = await testBot.start(settings, { backfill: false });
    await repairHistory(loader.runtime, backfillDays(loader.runtime, 7));
    db = await openOnTestDatabase(testBot.database);
    const fiveDaysBack = alignToTimeframe(loader.runtime.market.now(), "1h") - 5 * DAY;
    await db.sql.query("DELETE FROM candles WHERE exchange = 'sim' AND symbol = 'BTC/USDT' AND open_time BETWEEN to_timestamp($1::float8 / 1000) AND to_timestamp($2::float8 / 1000)", [fiveDaysBack, fiveDaysBack + 3 * 3_600_000]);
    // Audited afresh, so the holes are found (an audit reads only what is new since the last one).
    await db.sql.query("DELETE FROM series_audit");
    await auditHistory(db, { exchange: "sim" });
    expect((await listCandleGaps(db, { exchange: "sim" })).map((gap) => gap.timeframe)).toEqual(["15m", "1h"]);
    const before = await oldestCandles(db);

    const bot = await testBot.start({ ...settings, CANDLE_RETENTION_DAYS: "15m:3" });
    const firstKept = (now: number) => Math.ceil((now - 3 * DAY) / STEP) * STEP;
    const stop = new AbortController();
    const retention = keepRetention(bot.runtime, { signal: stop.signal });
    let history: Promise<void> = Promise.resolve();
    try {
      await bot.ticks(1);
      const pass = await logged(bot, "retention pass");
      expect(pass).toMatchObject({ tracesRemoved: 0, stopped: false });
      expect(pass.candlesRemoved).toEqual({ "15m": expect.any(Number) });
      // The history keeper after the pass (a repair planned before it would not fetch the 15m hole either: see backfill below).
      history = keepHistory(bot.runtime, { intervalMs: 3_600_000, signal: stop.signal });
      // The 1h hole, outside any retention, is repaired; the 15m one, before the cutoff, is not fetched.
      expect(await logged(bot, "history audit found missing candles; repaired")).toMatchObject({ gaps: 1, candlesMissing: 4, candlesStored: 4, gapsLeft: 0 });
    } finally {
      stop.abort();
      await Promise.all([retention, history]);
    }
    const kept = firstKept(bot.runtime.market.now());
    const after = await oldestCandles(db);
    for (const symbol of SYMBOLS) {
      expect(after[`${symbol} 15m`]).toBe(kept);
      expect(after[`${symbol} 1h`]).toBe(before[`${symbol} 1h`]);
    }
    expect(await listCandleGaps(db, { exchange: "sim", includeUnavailable: true })).toEqual([]);
    expect((await seriesAuditStates(db, { exchange: "sim", timeframes: ["15m"] })).map((state) => state.firstOpenTime)).toEqual(SYMBOLS.map(() => kept));

    // `backfill --days 7` asks the exchange for 1h candles only: the 15m ones it lacks are past their retention.
    const recorded = recordCandleRequests(bot.runtime.market);
    bot.runtime.market = recorded.market;
    const backfilled = await repairHistory(bot.runtime, backfillDays(bot.runtime, 7));
    expect(backfilled).toMatchObject({ failed: [], stopped: false });
    expect(recorded.requests.filter((request) => request.timeframe === "15m" && (request.since ?? 0) < kept)).toEqual([]);
    expect((await oldestCandles(db))[`BTC/USDT 15m`]).toBe(kept);
  }, 180_000);

  it("`backfill --days N` beyond CANDLE_RETENTION_DAYS loads each timeframe back to its retention only, with a warning", async () => {
    const proc = spawnBot(
      { DATABASE_URL: testBot.database.url ?? "", CANDLEKEEP_DATA_DIR: testBot.database.dataDir, SYMBOLS: "BTC/USDT", TIMEFRAMES: "15m,1h", CANDLE_RETENTION_DAYS: "15m:2", SIM_REPLAY_CANDLES: String(FAR_BACK) },
      ["backfill", "--days", "5", "--json"],
    );
    expect(await proc.exited).toBe(0);
    const warnings = proc.lines.filter((line) => line.level === "warn");
    expect(warnings.map((line) => [line.message, line.fields.timeframe, line.fields.retentionDays])).toEqual([
      ["backfill --days reaches past CANDLE_RETENTION_DAYS: this timeframe is loaded back to its retention only", "15m", 2],
    ]);
    const until = Date.parse(String(JSON.parse(proc.stdout()).until));
    db = await openOnTestDatabase(testBot.database);
    const oldest = await oldestCandles(db);
    expect(oldest["BTC/USDT 15m"]).toBe(Math.ceil((until - 2 * DAY) / STEP) * STEP);
    expect(oldest["BTC/USDT 1h"]).toBeLessThanOrEqual(until - 5 * DAY);
  }, 60_000);

  it("passes on the embedded engine too: the traces and candles past their retention go, the rest stays, and the tables are vacuumed", async () => {
    const testDb = createEmbeddedTestDatabase();
    const bot = await startTestBot({ CANDLEKEEP_DATA_DIR: testDb.dataDir, SYMBOLS: "BTC/USDT", TIMEFRAMES: "15m,1h", EVENT_RETENTION_DAYS: "30", CANDLE_RETENTION_DAYS: "15m:2", SIM_REPLAY_CANDLES: "800" }, { backfill: false });
    try {
      const rt = bot.runtime;
      await repairHistory(rt, backfillDays(rt, 5));
      const embedded = await bot.database.get();
      const now = rt.market.now();
      const old = Array.from({ length: 20 }, (_, day) => trace("BTC/USDT", now - (31 + day) * DAY));
      await recordDecisionTraces(embedded, [...old, trace("BTC/USDT", now - DAY)]);
      await recordEvents(embedded, [event("ORDER", "BTC/USDT", now - 40 * DAY)]);
      const before = await oldestCandles(embedded);

      // As if 10,000 rows had gone from each table since its last VACUUM.
      const report = await retentionPass(rt, { signal: new AbortController().signal, unvacuumed: { decision_traces: 10_000, candles: 10_000 } });
      expect(report).toMatchObject({ tracesRemoved: old.length, vacuumed: ["decision_traces", "candles"], stopped: false });
      const firstKept = Math.ceil((now - 2 * DAY) / STEP) * STEP;
      // Five days of 15m candles stored without a hole: every one before the first kept goes.
      expect(report.candlesRemoved["15m"]).toBe((firstKept - (before["BTC/USDT 15m"] ?? firstKept)) / STEP);
      expect(await eventCounts(embedded, now - 30 * DAY)).toEqual({ "ORDER old": 1, "DECISION_TRACE new": 1, "STARTUP new": 1, "PAPER_ACCOUNT new": 1 });
      const after = await oldestCandles(embedded);
      expect(after["BTC/USDT 15m"]).toBe(firstKept);
      expect(after["BTC/USDT 1h"]).toBe(before["BTC/USDT 1h"]);
    } finally {
      await bot.stop();
      await testDb.drop();
    }
  }, 120_000);
});
