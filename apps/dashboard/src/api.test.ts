import { TIMEFRAME_MS, alignToTimeframe, type Timeframe } from "@candlekeep/core";
import { auditHistory, databaseGrowth, markRangeUnavailable, recordDecisionTraces, recordEvent } from "@candlekeep/db";
import { growthSeedSql, openTestDatabase, SEEDED_GROWTH } from "@candlekeep/db/testing";
import Fastify, { type FastifyInstance } from "fastify";
import { dashboardApi, MAX_GAP_RANGES, STORAGE_REFRESH_MS } from "./api";
import type { CandlesResponse, CoverageResponse, EquityResponse, EventsResponse, OrdersResponse, PositionsResponse, SystemResponse, TradesResponse } from "./api-types";
import { COINS, PARTIAL_COIN, STALE_COIN, fillDatabase, fixtureSource } from "./testing/fixture";

const NOW = Date.UTC(2026, 10, 25, 12, 7);
/** Open time of the candle `ago` candles before the one forming at NOW. */
const openAt = (timeframe: Timeframe, ago: number) => alignToTimeframe(NOW, timeframe) - ago * TIMEFRAME_MS[timeframe];

describe("the dashboard API on a real database", () => {
  let db: Awaited<ReturnType<typeof openTestDatabase>>;
  let app: FastifyInstance;
  let base: string;
  // Over real HTTP: fastify's inject needs an ESM-only module jest cannot load.
  const get = async <T>(url: string) => {
    const response = await fetch(`${base}${url}`);
    const body = (await response.json()) as T;
    return { status: response.status, body };
  };

  beforeAll(async () => {
    db = await openTestDatabase("server");
    await fillDatabase(db, NOW);
    app = Fastify();
    await app.register(dashboardApi(fixtureSource(db, NOW, { live: () => ({ startedAt: new Date(NOW - 60_000), ticks: 7, lastTickAt: new Date(NOW - 1000), lastFlushAt: new Date(NOW - 900), pendingCandles: 3, databaseDownSince: undefined }) })));
    base = await app.listen({ host: "127.0.0.1", port: 0 });
  });
  afterAll(async () => {
    await app.close();
    await db.close();
  });

  it("colours every coin × timeframe by verify's freshness rule, with how far back its candles reach", async () => {
    const { status, body } = await get<CoverageResponse>("/api/coverage");
    expect(status).toBe(200);
    expect(body.coins.map((c) => c.symbol)).toEqual(COINS);
    const state = (symbol: string, tf: string) => body.coins.find((c) => c.symbol === symbol)?.series[tf]?.state;
    expect(state("BTC/USDT", "15m")).toBe("fresh");
    expect(state("BTC/USDT", "1d")).toBe("fresh");
    for (const tf of ["15m", "1h", "4h", "1d"]) expect(state(STALE_COIN, tf)).toBe("stale");
    expect(state(PARTIAL_COIN, "1d")).toBe("missing");
    expect(body.totals).toEqual({ fresh: 15, late: 0, stale: 4, missing: 1 });
    expect(body.coins[0]?.series["15m"]).toMatchObject({ firstOpenTime: alignToTimeframe(NOW, "15m") - 119 * TIMEFRAME_MS["15m"], lastOpenTime: alignToTimeframe(NOW, "15m"), behind: 0, recentGaps: 0 });
  });

  it("gives a coin's candles oldest first with its trade entries and exits as markers", async () => {
    const { status, body } = await get<CandlesResponse>("/api/coins/BTC%2FUSDT/candles?timeframe=15m&limit=50");
    expect(status).toBe(200);
    expect(body.candles).toHaveLength(50);
    expect(body.candles[49]?.openTime).toBe(alignToTimeframe(NOW, "15m"));
    expect(body.candles[0]?.openTime).toBeLessThan(body.candles[1]?.openTime ?? 0);
    expect(body.markers.map((m) => m.kind)).toEqual(["entry", "exit"]);
    expect(body.markers[1]).toMatchObject({ side: "LONG", price: 104, exitReason: "TAKE_PROFIT", time: alignToTimeframe(NOW - 12 * TIMEFRAME_MS["15m"], "15m") });
    // A dash names the same coin, for scripts that would rather not encode a slash.
    expect((await get<CandlesResponse>("/api/coins/eth-usdt/candles?timeframe=1h")).body).toMatchObject({ symbol: "ETH/USDT", timeframe: "1h", markers: [{ kind: "entry", tradeId: null }] });
  });

  it("answers 400 with a clear message for unknown coins, timeframes and bad limits", async () => {
    expect(await get("/api/coins/NOPE-USDT/candles")).toEqual({ status: 400, body: { error: expect.stringContaining('unknown symbol "NOPE-USDT"') } });
    expect(await get("/api/coins/BTC-USDT/candles?timeframe=5m")).toEqual({ status: 400, body: { error: 'unknown timeframe "5m": use one of 15m, 1h, 4h, 1d' } });
    expect(await get("/api/coins/BTC-USDT/candles?limit=0")).toEqual({ status: 400, body: { error: 'limit must be a whole number from 1 to 5000, in decimal digits (got "0")' } });
    expect(await get("/api/coins/BTC-USDT/candles?limit=99999")).toEqual({ status: 400, body: { error: 'limit must be a whole number from 1 to 5000, in decimal digits (got "99999")' } });
    expect(await get("/api/coins/BTC-USDT/candles?limit=ten")).toEqual({ status: 400, body: { error: 'limit must be a whole number from 1 to 5000, in decimal digits (got "ten")' } });
    expect(await get("/api/coins/BTC-USDT/candles?from=1")).toEqual({ status: 400, body: { error: "unknown query parameter from" } });
    expect(await get("/api/coins/BTC-USDT/events?type=drop table")).toEqual({ status: 400, body: { error: expect.stringContaining("type must be an event type") } });
    expect(await get("/api/trades?symbol=XYZ/USDT")).toEqual({ status: 400, body: { error: expect.stringContaining('unknown symbol "XYZ/USDT"') } });
  });

  it("takes a limit in decimal digits only: no hex, exponent, sign, fraction, spaces or repeats", async () => {
    for (const bad of ["0x10", "1e3", "-1", "+5", "5.0", "%205", "5%20", "", "１０", "0b11", "Infinity", "99999999999999999999"]) {
      const { status, body } = await get<{ error: string }>(`/api/trades?limit=${bad}`);
      expect({ bad, status }).toEqual({ bad, status: 400 });
      expect(body.error).toMatch(/^limit must be a whole number from 1 to 1000, in decimal digits \(got ".*"\)$/);
    }
    expect(await get("/api/trades?limit=1&limit=2")).toEqual({ status: 400, body: { error: "limit must be a whole number from 1 to 1000, in decimal digits, given once" } });
    expect(await get("/api/trades?symbol=BTC-USDT&symbol=ETH-USDT")).toEqual({ status: 400, body: { error: "symbol must be given once" } });
    expect((await get<TradesResponse>("/api/trades?limit=007")).status).toBe(200);
    expect((await get<TradesResponse>("/api/trades?limit=1000")).status).toBe(200);
  });

  it("lists a coin's latest decision traces, newest first", async () => {
    const { body } = await get<EventsResponse>("/api/coins/SOL-USDT/events?type=DECISION_TRACE&limit=2");
    expect(body.events.map((e) => [e.id, e.type, e.time])).toEqual([
      [`sim:SOL/USDT:${NOW}`, "DECISION_TRACE", new Date(NOW).toISOString()],
      [`sim:SOL/USDT:${NOW - TIMEFRAME_MS["15m"]}`, "DECISION_TRACE", new Date(NOW - TIMEFRAME_MS["15m"]).toISOString()],
    ]);
    expect(body.events[0]?.payload).toMatchObject({ action: "BUY", reasons: ["reason 0 for SOL/USDT"] });
  });

  it("gives a coin's decision traces by default, its exchange's only, newest first: another exchange's trace of the coin is not shown", async () => {
    const quarter = TIMEFRAME_MS["15m"];
    // Newer than every trace of sim's, on binance: another bot's, not the dashboard's.
    expect(await recordDecisionTraces(db, [{ exchange: "binance", symbol: "BTC/USDT", time: new Date(NOW + 60_000), payload: { action: "SELL", reasons: ["binance's bot"] } }])).toBe(0);
    // A trace as events were written before traces had their own table: system_events holds none of the dashboard's traces.
    expect(await recordEvent(db, { type: "DECISION_TRACE", symbol: "BTC/USDT", time: new Date(NOW - 60_000), payload: { action: "SELL", reasons: ["an event, not a trace"] } })).toBe(true);
    const { status, body } = await get<EventsResponse>("/api/coins/BTC-USDT/events");
    expect(status).toBe(200);
    expect(body).toMatchObject({ symbol: "BTC/USDT", type: "DECISION_TRACE" });
    expect(body.events).toEqual(
      [0, 1, 2].map((i) => ({
        id: `sim:BTC/USDT:${NOW - i * quarter}`,
        time: new Date(NOW - i * quarter).toISOString(),
        type: "DECISION_TRACE",
        symbol: "BTC/USDT",
        level: "info",
        payload: { action: i === 0 ? "BUY" : "NO_SIGNAL", price: 100 + i, reasons: [`reason ${i} for BTC/USDT`] },
      })),
    );
    // The system panel's last event is sim's newest trace, not binance's.
    expect((await get<SystemResponse>("/api/system")).body.lastEventAt).toBe(new Date(NOW).toISOString());
  });

  it("values open positions at the last stored price", async () => {
    const { body } = await get<PositionsResponse>("/api/positions");
    expect(body.positions).toHaveLength(1);
    const eth = body.positions[0];
    // ETH's newest 15m close in the fixture: base 150 + 5·sin(120/5).
    const last = 150 + Math.sin(120 / 5) * 5;
    expect(eth).toMatchObject({ symbol: "ETH/USDT", side: "LONG", quantity: 2, entryPrice: 140, lastPrice: expect.closeTo(last, 6) });
    expect(eth?.unrealizedPnl).toBeCloseTo((last - 140) * 2, 6);
    expect(body.totalUnrealizedPnl).toBeCloseTo((last - 140) * 2, 6);
  });

  it("lists recent trades and the equity curve oldest first", async () => {
    const trades = await get<TradesResponse>("/api/trades");
    expect(trades.body.trades).toEqual([expect.objectContaining({ symbol: "BTC/USDT", exitReason: "TAKE_PROFIT", realizedPnl: 2.899 })]);
    const equity = await get<EquityResponse>("/api/equity?limit=5");
    expect(equity.body.series).toHaveLength(1);
    expect(equity.body.series[0]?.points.map((p) => p.equity)).toEqual([10_015, 10_018, 10_021, 10_024, 10_027]);
  });

  it("lists the newest orders first with their fills and fees, marking those not settled, and one coin's on request", async () => {
    const { status, body } = await get<OrdersResponse>("/api/orders");
    expect(status).toBe(200);
    expect(body.orders.map((o) => `${o.symbol} ${o.purpose} ${o.status} ${o.settled}`)).toEqual([
      "SOL/USDT entry sent false",
      "ADA/USDT entry unknown false",
      "ETH/USDT entry filled true",
      "BTC/USDT exit filled true",
      "BTC/USDT entry filled true",
    ]);
    expect(body.orders[3]).toMatchObject({
      side: "sell",
      clientOrderId: "ckbtc1x1",
      exitReason: "TAKE_PROFIT",
      requestedAmount: 0.5,
      filledAmount: 0.5,
      averagePrice: 104,
      filledCost: 52,
      feeQuote: 0.052,
      fees: [{ currency: "USDT", cost: 0.052, quoteValue: 0.052 }],
      createdAt: new Date(NOW - 12 * TIMEFRAME_MS["15m"]).toISOString(),
    });
    expect(body.orders[1]).toMatchObject({ error: "exchange timeout", filledAmount: 0, averagePrice: null });
    const btc = await get<OrdersResponse>("/api/orders?symbol=btc-usdt&limit=1");
    expect(btc.body.orders.map((o) => o.clientOrderId)).toEqual(["ckbtc1x1"]);
    expect(await get("/api/orders?limit=1001")).toEqual({ status: 400, body: { error: 'limit must be a whole number from 1 to 1000, in decimal digits (got "1001")' } });
    expect(await get("/api/orders?symbol=XYZ-USDT")).toEqual({ status: 400, body: { error: expect.stringContaining('unknown symbol "XYZ-USDT"') } });
  });

  it("reports the bot's live status, migrations and ERROR events", async () => {
    const { body } = await get<SystemResponse>("/api/system");
    expect(body.mode).toBe("bot");
    expect(body.database).toEqual({ kind: "server", downSince: null });
    expect(body.bot).toMatchObject({ ticks: 7, pendingCandles: 3, lastTickAt: new Date(NOW - 1000).toISOString() });
    expect(body.migrations).toMatchObject({ upToDate: true, pending: [] });
    expect(body.orders).toEqual({ unknown: 1, unsettled: 1 });
    expect(body.migrations?.applied).toBeGreaterThan(0);
    expect(body.errors).toEqual([expect.objectContaining({ type: "ERROR", symbol: "SOL/USDT", payload: { message: "fetchOHLCV failed: exchange timeout" } })]);
  });

  it("shows each series' gaps as the history audit recorded them, with how far its history is complete; a poll never audits", async () => {
    const cell = (body: CoverageResponse, symbol: string, tf: string) => body.coins.find((c) => c.symbol === symbol)?.series[tf];
    const deleteCandles = (symbol: string, timeframe: Timeframe, agos: readonly number[]) =>
      db.sql.query("DELETE FROM candles WHERE exchange = 'sim' AND symbol = $1 AND timeframe = $2 AND open_time = ANY($3::timestamptz[])", [symbol, timeframe, agos.map((ago) => new Date(openAt(timeframe, ago)))]);
    const before = await get<CoverageResponse>("/api/coverage");
    expect(cell(before.body, "SOL/USDT", "15m")).toMatchObject({ historyGaps: { count: 0, missing: 0, newest: [] }, completeUpTo: null });
    expect(before.body.historyGaps).toEqual({ series: 0, ranges: 0, missing: 0 });
    expect((await db.sql.query("SELECT * FROM series_audit")).rows).toEqual([]);

    // Old holes (before the recent 96-candle window): a run of three and one candle; twelve single ones in the stale coin's 1h.
    await deleteCandles("SOL/USDT", "15m", [110, 109, 108, 100]);
    const singles = Array.from({ length: 12 }, (_, i) => 101 + 2 * i);
    await deleteCandles(STALE_COIN, "1h", singles);
    await auditHistory(db, { exchange: "sim" });
    // A range the exchange has no data for is not a gap to show.
    await markRangeUnavailable(db, { exchange: "sim", symbol: "ETH/USDT", timeframe: "1h", fromTime: openAt("1h", 130), toTime: openAt("1h", 120) });

    const { body } = await get<CoverageResponse>("/api/coverage");
    expect(cell(body, "SOL/USDT", "15m")).toMatchObject({
      recentGaps: 0,
      historyGaps: { count: 2, missing: 4, newest: [{ fromTime: openAt("15m", 110), toTime: openAt("15m", 108), missing: 3 }, { fromTime: openAt("15m", 100), toTime: openAt("15m", 100), missing: 1 }] },
      completeUpTo: openAt("15m", 1),
    });
    // The newest ranges only, oldest first; the count says how many there are.
    const stale = cell(body, STALE_COIN, "1h");
    expect(stale?.historyGaps.count).toBe(12);
    expect(stale?.historyGaps.newest).toEqual(singles.slice(0, MAX_GAP_RANGES).reverse().map((ago) => ({ fromTime: openAt("1h", ago), toTime: openAt("1h", ago), missing: 1 })));
    expect(stale?.completeUpTo).toBe(openAt("1h", 10));
    expect(cell(body, "ETH/USDT", "1h")).toMatchObject({ historyGaps: { count: 0, missing: 0, newest: [] }, completeUpTo: openAt("1h", 1) });
    expect(body.historyGaps).toEqual({ series: 2, ranges: 14, missing: 16 });

    // Candles deleted since the audit are not seen until the next one: the poll reads what was recorded.
    await deleteCandles("SOL/USDT", "15m", [105]);
    expect(cell((await get<CoverageResponse>("/api/coverage")).body, "SOL/USDT", "15m")?.historyGaps.count).toBe(2);
  });

  it("changes nothing: only GET is served", async () => {
    for (const method of ["POST", "PUT", "DELETE", "PATCH"] as const) {
      expect((await fetch(`${base}/api/positions`, { method })).status).toBe(404);
    }
  });
});

describe("the system panel's storage figures", () => {
  const SEEDED_AT = Date.UTC(2026, 11, 5, 12, 0);
  let db: Awaited<ReturnType<typeof openTestDatabase>>;
  let app: FastifyInstance;
  let base: string;
  let budgetBytes: number;
  const system = async () => (await (await fetch(`${base}/api/system`)).json()) as SystemResponse;

  beforeAll(async () => {
    db = await openTestDatabase("server");
    await db.sql.exec(growthSeedSql(SEEDED_AT));
    // A budget that lasts 20.5 days at the seeded growth.
    const growth = await databaseGrowth(db, { nowMs: SEEDED_AT });
    budgetBytes = Math.round(growth.databaseBytes + 20.5 * growth.bytesPerDay);
    app = Fastify();
    await app.register(dashboardApi(fixtureSource(db, SEEDED_AT, { storageBudgetBytes: budgetBytes })));
    base = await app.listen({ host: "127.0.0.1", port: 0 });
  });
  afterAll(async () => {
    await app.close();
    await db.close();
  });

  it("gives the database's size, each table's growth per day from its rows' timestamps, and the days left in DATABASE_STORAGE_BUDGET", async () => {
    const { storage } = await system();
    expect(storage).toMatchObject({ measuredAt: new Date(SEEDED_AT).toISOString(), databaseBytes: expect.any(Number) });
    for (const [name, seeded] of Object.entries(SEEDED_GROWTH)) {
      expect(storage?.tables.find((t) => t.table === name)).toEqual({ table: name, bytes: expect.any(Number), rows: seeded.rows, rowsCounted: true, rowsPerDay: expect.closeTo(seeded.rowsPerDay, 9), bytesPerDay: expect.any(Number), note: null });
    }
    expect(storage?.tables.find((t) => t.table === "positions")).toMatchObject({ rows: 0, rowsPerDay: null, bytesPerDay: null, note: "one row per open position" });
    expect(storage?.bytesPerDay).toBeCloseTo(storage?.tables.reduce((sum, t) => sum + (t.bytesPerDay ?? 0), 0) ?? 0, 6);
    expect(storage?.budget).toEqual({ bytes: budgetBytes, leftBytes: budgetBytes - (storage?.databaseBytes ?? 0), daysLeft: expect.closeTo(20.5, 3), state: "low", lowDays: 30 });
  });

  it(`reads them at most once every ${STORAGE_REFRESH_MS / 1000} s: rows added since are not counted until the next read`, async () => {
    const first = await system();
    // A bot's traces of another coin, one a second over the last two hours: the table that grows fastest.
    await db.sql.exec(
      `INSERT INTO decision_traces (exchange, symbol, time, level, payload) SELECT 'sim', 'ADDED/USDT', timestamptz '${new Date(SEEDED_AT).toISOString()}' - i * interval '1 second', 'info', '{}' FROM generate_series(1, 7000) AS i`,
    );
    try {
      expect((await system()).storage).toEqual(first.storage);
    } finally {
      await db.sql.exec("DELETE FROM decision_traces WHERE symbol = 'ADDED/USDT'");
    }
  });
});
