import { alignToTimeframe, TIMEFRAME_MS, type Timeframe } from "@candlekeep/core";
import { saveCandles, type CandleInput } from "./candles";
import { latestDecisionTracePerSymbol, recordDecisionTraces, type DecisionTraceInput } from "./decision-traces";
import { recordEvents, type EventInput } from "./events";
import { auditHistory, listCandleGaps, markRangeUnavailable, seriesAuditStates, type CandleGap } from "./history";
import { removeCandles, removeDecisionTraces, vacuumTable } from "./retention";
import { useTestDatabase, type SuiteDatabase } from "./test-database-hooks";
import { captureLogger, DATABASE_KINDS } from "./testing";

const NOW = Date.UTC(2026, 5, 1, 12, 7);
const DAY = 86_400_000;
const HOUR = 3_600_000;
const SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"];

/** A decision trace of about the size the bot writes. */
const trace = (symbol: string, time: number, exchange = "test"): DecisionTraceInput => ({
  exchange,
  symbol,
  time: new Date(time),
  payload: { action: "NO_SIGNAL", price: 101.5, candleTime: new Date(time).toISOString(), reasons: ["emaFast 101.2 > emaSlow 99.8 (+1.40%, uptrend)", "rsi 72.1 above entry band 45..70", "atr 1.2 (1.18% of price)"] },
});

/** One trace per symbol every `stepMs` from `from` (inclusive) to `to` (exclusive). */
function traces(from: number, to: number, stepMs: number, exchange = "test"): DecisionTraceInput[] {
  const rows: DecisionTraceInput[] = [];
  for (let time = from; time < to; time += stepMs) for (const symbol of SYMBOLS) rows.push(trace(symbol, time, exchange));
  return rows;
}

const openAt = (timeframe: Timeframe, ago: number) => alignToTimeframe(NOW, timeframe) - ago * TIMEFRAME_MS[timeframe];

/** Candles of a series from `oldest` candles back to the one forming now, leaving out the inclusive [from, to] runs of `holes`. */
function series(exchange: string, symbol: string, timeframe: Timeframe, oldest: number, holes: ReadonlyArray<readonly [number, number]> = [], newest = 0): CandleInput[] {
  const rows: CandleInput[] = [];
  for (let ago = oldest; ago >= newest; ago -= 1) {
    if (holes.some(([from, to]) => ago <= from && ago >= to)) continue;
    rows.push({ exchange, symbol, timeframe, openTime: openAt(timeframe, ago), open: 10, high: 11, low: 9, close: 10.5, volume: 1, isClosed: ago > 0 });
  }
  return rows;
}

const gap = (exchange: string, symbol: string, timeframe: Timeframe, from: number, to: number, unavailable = false): CandleGap => ({
  exchange,
  symbol,
  timeframe,
  fromTime: openAt(timeframe, from),
  toTime: openAt(timeframe, to),
  missing: from - to + 1,
  unavailable,
});

describe.each(DATABASE_KINDS)("retention on the %s engine", (kind) => {
  let db: SuiteDatabase;
  useTestDatabase(kind, { logger: captureLogger(), tables: "decision_traces, system_events, candles, candle_gaps, series_audit", opened: (opened) => (db = opened) });

  /** Rows per table, exchange and side of the cutoff, e.g. "decision_traces test old" or "system_events ORDER old". */
  async function rowCounts(): Promise<Record<string, number>> {
    const result = await db.sql.query<{ key: string; n: string | number }>(
      `SELECT 'decision_traces ' || exchange || CASE WHEN time < timestamptz 'epoch' + $1::int8 * interval '1 millisecond' THEN ' old' ELSE ' new' END AS key, count(*) AS n FROM decision_traces GROUP BY 1
       UNION ALL
       SELECT 'system_events ' || type || CASE WHEN time < timestamptz 'epoch' + $1::int8 * interval '1 millisecond' THEN ' old' ELSE ' new' END, count(*) FROM system_events GROUP BY 1
       ORDER BY 1`,
      [NOW - 90 * DAY],
    );
    return Object.fromEntries(result.rows.map((row) => [row.key, Number(row.n)]));
  }

  it("removes the exchange's decision traces older than the cutoff in statements of at most batchRows, and nothing else, old as it may be", async () => {
    const cutoff = NOW - 90 * DAY;
    const old = traces(cutoff - 2 * DAY, cutoff, 2 * HOUR);
    const kept = traces(cutoff, NOW, 12 * HOUR);
    const otherExchange = traces(cutoff - 2 * DAY, cutoff, 2 * HOUR, "other");
    const events: EventInput[] = ["ORDER", "POSITION_OPENED", "POSITION_CLOSED", "ERROR", "STARTUP", "PAPER_ACCOUNT"].map((type, i) => ({ type, symbol: SYMBOLS[i % SYMBOLS.length], time: new Date(cutoff - 10 * DAY), payload: { n: i } }));
    expect(await recordDecisionTraces(db, [...old, ...kept, ...otherExchange])).toBe(0);
    expect(await recordEvents(db, events)).toBe(0);
    const before = await rowCounts();
    expect(before["decision_traces test old"]).toBe(old.length);

    const perStatement: number[] = [];
    const removed = await removeDecisionTraces(db, { exchange: "test", before: cutoff, batchRows: 7, onProgress: (rows) => perStatement.push(rows - perStatement.reduce((a, b) => a + b, 0)) });
    expect(removed).toMatchObject({ rows: old.length, stopped: false });
    expect(removed.statements).toBe(perStatement.length);
    expect(Math.max(...perStatement)).toBeLessThanOrEqual(7);
    expect(await rowCounts()).toEqual(Object.fromEntries(Object.entries(before).filter(([key]) => key !== "decision_traces test old")));
    // The throttle's restore still finds each coin's newest trace.
    const newest = await latestDecisionTracePerSymbol(db, { exchange: "test", symbols: SYMBOLS });
    expect(newest.map((row) => [row.symbol, row.time.getTime()])).toEqual(SYMBOLS.map((symbol) => [symbol, kept[kept.length - 1]?.time.getTime()]));
    // Nothing is older now: a second pass removes nothing.
    expect(await removeDecisionTraces(db, { exchange: "test", before: cutoff })).toEqual({ rows: 0, statements: 1, stopped: false });
  });

  it("stops between statements when its signal aborts, and a later pass removes the rest", async () => {
    const cutoff = NOW - 90 * DAY;
    await recordDecisionTraces(db, traces(cutoff - DAY, cutoff, HOUR));
    const stop = new AbortController();
    const first = await removeDecisionTraces(db, { exchange: "test", before: cutoff, batchRows: 10, signal: stop.signal, onProgress: () => stop.abort() });
    // Ten rows shared among three coins: three each.
    expect(first).toEqual({ rows: 9, statements: 1, stopped: true });
    expect(await rowCounts()).toEqual({ "decision_traces test old": 24 * SYMBOLS.length - 9 });
    expect(await removeDecisionTraces(db, { exchange: "test", before: cutoff, batchRows: 10 })).toMatchObject({ rows: 24 * SYMBOLS.length - 9, stopped: false });
    expect(await rowCounts()).toEqual({});
  });

  it("reuses the space of removed traces once vacuumed: the table does not grow when as many new ones come in", async () => {
    const cutoff = NOW - 90 * DAY;
    await recordDecisionTraces(db, traces(cutoff - 1000 * HOUR, cutoff, HOUR));
    const size = async () => Number((await db.sql.query<{ bytes: string | number }>("SELECT pg_relation_size('decision_traces') AS bytes")).rows[0]?.bytes);
    const full = await size();
    expect((await removeDecisionTraces(db, { exchange: "test", before: cutoff })).rows).toBe(3000);
    await vacuumTable(db, "decision_traces");
    await recordDecisionTraces(db, traces(cutoff, cutoff + 1000 * HOUR, HOUR));
    expect(await size()).toBeLessThanOrEqual(full);
  });

  it("removes only the given timeframe's candles before the cutoff, and the audit forgets the gaps there and does not find them again", async () => {
    // 15m: 1,000 candles back, the cutoff 400 candles back; a hole before it, one across it, one after it, and an unavailable stretch before it.
    await saveCandles(db, [...series("x", "BTC/USDT", "15m", 999, [[900, 880], [410, 390], [100, 95]]), ...series("x", "ETH/USDT", "15m", 999), ...series("x", "BTC/USDT", "1h", 300, [[290, 280]])], NOW + DAY);
    // A series audited only before the cutoff (its newer candles came later).
    await saveCandles(db, series("x", "SOL/USDT", "15m", 999, [], 600), NOW + DAY);
    await auditHistory(db, { exchange: "x" });
    await markRangeUnavailable(db, { exchange: "x", symbol: "BTC/USDT", timeframe: "15m", fromTime: openAt("15m", 1100), toTime: openAt("15m", 1000) });
    await saveCandles(db, series("x", "SOL/USDT", "15m", 300), NOW + DAY);
    const hourly = (await listCandleGaps(db, { exchange: "x", timeframes: ["1h"], includeUnavailable: true })).length;

    const cutoff = openAt("15m", 400);
    const removed = await removeCandles(db, { exchange: "x", timeframe: "15m", before: cutoff, batchRows: 500 });
    expect(removed.rows).toBe(599 - 21 - 10 + 599 + 400);
    expect(removed.stopped).toBe(false);
    const oldest = await db.sql.query<{ symbol: string; timeframe: string; first: string | number; n: string | number }>(
      "SELECT symbol, timeframe, (extract(epoch from min(open_time)) * 1000)::int8 AS first, count(*) AS n FROM candles WHERE exchange = 'x' GROUP BY 1, 2 ORDER BY 1, 2",
    );
    expect(oldest.rows.map((row) => [row.symbol, row.timeframe, Number(row.first), Number(row.n)])).toEqual([
      ["BTC/USDT", "15m", openAt("15m", 389), 390 - 6],
      ["BTC/USDT", "1h", openAt("1h", 300), 301 - 11],
      ["ETH/USDT", "15m", openAt("15m", 400), 401],
      ["SOL/USDT", "15m", openAt("15m", 300), 301],
    ]);
    // The gap across the cutoff starts at it; those before it are gone; the 1h series is untouched.
    expect(await listCandleGaps(db, { exchange: "x", timeframes: ["15m"], includeUnavailable: true })).toEqual([gap("x", "BTC/USDT", "15m", 400, 390), gap("x", "BTC/USDT", "15m", 100, 95)]);
    expect((await listCandleGaps(db, { exchange: "x", timeframes: ["1h"], includeUnavailable: true })).length).toBe(hourly);
    const audited = await seriesAuditStates(db, { exchange: "x", timeframes: ["15m"] });
    expect(audited.map((state) => [state.symbol, state.firstOpenTime])).toEqual([
      ["BTC/USDT", openAt("15m", 389)],
      ["ETH/USDT", openAt("15m", 400)],
    ]);
    // The next audit reads only SOL (afresh) and finds nothing missing before the cutoff.
    const again = await auditHistory(db, { exchange: "x" });
    expect(again.scannedCandles).toBe(300);
    expect(await listCandleGaps(db, { exchange: "x", timeframes: ["15m"], includeUnavailable: true })).toEqual([gap("x", "BTC/USDT", "15m", 400, 390), gap("x", "BTC/USDT", "15m", 100, 95)]);
  });
});
