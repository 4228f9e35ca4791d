import { setTimeout as sleep } from "node:timers/promises";
import { SIM_DEFAULT_SYMBOLS, TIMEFRAME_MS, TIMEFRAMES, silentLogger } from "@candlekeep/core";
import { accountHistory, candleCoverage, latestDecisionTraces, latestEvents, listOpenPositions, listOrders, listTrades, openDatabase, recentCandles, recordOrderIntent, saveAccountState, savePosition, type Database } from "@candlekeep/db";
import { createEmbeddedTestDatabase, createServerTestDatabase, entryIntent, type TestDatabase } from "@candlekeep/db/testing";
import { balanceOf } from "./exchange/balance";
import { SimExchange } from "./exchange/sim";
import { entryOrderId } from "./orders/client-order-id";
import { startTestBot, type TestBot } from "./testing/bot";
import { useServerTestBot } from "./testing/server-bot";
import { TcpProxy } from "./testing/tcp-proxy";

/** The runner end to end on the simulated exchange and a real PostgreSQL database. */

async function candleCount(db: Database): Promise<number> {
  const result = await db.sql.query<{ n: string }>("SELECT count(*) AS n FROM candles");
  return Number(result.rows[0]?.n);
}

/** The stored forming candles, as "symbol timeframe openTime close", sorted. */
async function storedForming(db: Database): Promise<string[]> {
  const result = await db.sql.query<{ symbol: string; timeframe: string; open_ms: string; close: number }>(
    "SELECT symbol, timeframe, (extract(epoch from open_time) * 1000)::int8 AS open_ms, close FROM candles WHERE NOT is_closed",
  );
  return result.rows.map((r) => `${r.symbol} ${r.timeframe} ${r.open_ms} ${r.close}`).sort();
}

describe("bot on the simulated exchange (PostgreSQL server)", () => {
  const testBot = useServerTestBot();
  let bot: TestBot;

  it("saves candles for every coin × timeframe and a decision trace, NO_SIGNAL included, for every coin, throttled", async () => {
    // Traces at most every 30 min of exchange time; the simulated clock moves 15 min per tick.
    bot = await testBot.start({ DECISION_TRACE_INTERVAL_MS: String(30 * 60_000) });
    const reports = await bot.ticks(8);
    expect(reports.flatMap((r) => [...r.failed.map((f) => `${f.symbol}: ${f.error}`), ...(r.flushError ? [r.flushError] : [])])).toEqual([]);
    const db = await bot.database.get();

    const coverage = await candleCoverage(db, { exchange: "sim", symbols: SIM_DEFAULT_SYMBOLS, timeframes: TIMEFRAMES, windowCandles: 96 });
    expect(coverage).toHaveLength(SIM_DEFAULT_SYMBOLS.length * TIMEFRAMES.length);
    for (const series of coverage) {
      // The 100 candles of history reach back from the newest (99 closed: the 100th fetched was
      // forming, which a replay does not write), none missing recently.
      expect(series.lastOpenTime).not.toBeNull();
      expect(((series.lastOpenTime ?? 0) - (series.firstOpenTime ?? 0)) / TIMEFRAME_MS[series.timeframe]).toBeGreaterThanOrEqual(98);
      expect(series.recentGaps).toBe(0);
    }
    expect(await storedForming(db)).toEqual([]);

    const traces = (await Promise.all(SIM_DEFAULT_SYMBOLS.map((symbol) => latestDecisionTraces(db, { exchange: "sim", symbol, limit: 10_000 })))).flat();
    const bySymbol = new Map<string, { time: number; action: string }[]>();
    for (const trace of [...traces].reverse()) {
      const list = bySymbol.get(trace.symbol) ?? [];
      list.push({ time: trace.time.getTime(), action: (trace.payload as { action: string }).action });
      bySymbol.set(trace.symbol, list);
    }
    expect([...bySymbol.keys()].sort()).toEqual([...SIM_DEFAULT_SYMBOLS].sort());
    expect(traces.some((e) => (e.payload as { action: string }).action === "NO_SIGNAL")).toBe(true);
    for (const list of bySymbol.values()) {
      for (let i = 1; i < list.length; i += 1) {
        const [prev, cur] = [list[i - 1]!, list[i]!];
        // Same decision ⇒ at least the interval apart; a change is recorded at once.
        if (prev.action === cur.action) expect(cur.time - prev.time).toBeGreaterThanOrEqual(30 * 60_000);
      }
      // 8 ticks of 15 min with a 30 min throttle: at most 4 unchanged traces (plus changes).
      expect(list.length).toBeLessThanOrEqual(8);
    }
  });

  it("opens positions, and closes them with a trade on take-profit, stop-loss or signal", async () => {
    bot = await testBot.start();
    const db = await bot.database.get();
    let trades = await listTrades(db);
    for (let i = 0; i < 20 && trades.length === 0; i += 1) {
      await bot.ticks(10);
      trades = await listTrades(db);
    }
    expect(trades.length).toBeGreaterThan(0);
    const trade = trades[0]!;
    expect(["TAKE_PROFIT", "STOP_LOSS", "SIGNAL"]).toContain(trade.exitReason);
    expect(trade.exitTime.getTime()).toBeGreaterThan(trade.entryTime.getTime());
    const opened = await latestEvents(db, { type: "POSITION_OPENED", symbol: trade.symbol, limit: 100 });
    expect(opened.some((e) => (e.payload as { orderId: string }).orderId === trade.entryOrderId)).toBe(true);
    // The closed position is gone; every one still open is what a filled entry order in the ledger bought.
    const open = await listOpenPositions(db, { exchange: "sim" });
    expect(open.filter((p) => p.entryOrderId === trade.entryOrderId)).toEqual([]);
    const orders = await listOrders(db, { exchange: "sim", limit: 10_000 });
    expect(orders.find((o) => o.clientOrderId === trade.exitOrderId)).toMatchObject({ purpose: "exit", status: "filled", filledAmount: trade.quantity });
    for (const position of open) {
      const entry = orders.find((o) => o.clientOrderId === position.entryOrderId);
      expect(entry).toMatchObject({ purpose: "entry", status: "filled" });
      expect(position.quantity).toBe((entry?.filledAmount ?? 0) - (entry?.feeBase ?? 0));
    }
  });

  it("records each account snapshot as one moment: equity is the cash it records plus the open positions at that tick's prices", async () => {
    // Replaying all along (15 min per tick), every tick is past the 60 s snapshot interval.
    bot = await testBot.start({ SIM_REPLAY_CANDLES: "400" });
    const db = await bot.database.get();
    const { runtime } = bot;
    let checkedAfterTrade = 0;
    for (let i = 0; i < 200 && checkedAfterTrade < 3; i += 1) {
      const [report] = await bot.ticks(1);
      const [snapshot] = await accountHistory(db, { exchange: "sim", currency: "USDT" });
      expect(snapshot?.time.getTime()).toBe(report!.exchangeTime);
      let held = 0;
      for (const position of runtime.positions.all()) held += position.quantity * runtime.candles.lastClose(position.symbol, "15m")!;
      const cash = (await runtime.broker.balances()).find((b) => b.currency === "USDT")!;
      expect(snapshot!.total).toBeCloseTo(cash.total, 6);
      expect(snapshot!.equity).toBeCloseTo(snapshot!.total + held, 6);
      if (report!.opened + report!.closed > 0) checkedAfterTrade += 1;
    }
    expect(checkedAfterTrade).toBe(3);
  });

  it("restarts with its open positions and without re-inserting or losing candles", async () => {
    // Replaying all along (the restart too), so the clock's place is known from the stored candles.
    const settings = { SIM_REPLAY_CANDLES: "400" };
    bot = await testBot.start(settings);
    const db1 = await bot.database.get();
    for (let i = 0; i < 30 && (await listOpenPositions(db1)).length === 0; i += 1) await bot.ticks(5);
    const positions = await listOpenPositions(db1);
    expect(positions.length).toBeGreaterThan(0);
    const before = await candleCount(db1);
    const exchangeTime = bot.runtime.market.now();

    bot = await testBot.start(settings, { backfill: false });
    expect(bot.runtime.positions.all().map((p) => p.symbol).sort()).toEqual(positions.map((p) => p.symbol).sort());
    // The simulated clock resumes where it stopped: the close of the newest stored (closed) 15m candle.
    expect(bot.runtime.market.now()).toBe(exchangeTime);
    const db2 = await bot.database.get();
    expect(await candleCount(db2)).toBe(before);
    const [report] = await bot.ticks(1);
    // The 15m candle that closes per coin, and a longer one at its boundary: each a new row, none written again.
    expect(report!.written).toBeGreaterThanOrEqual(SIM_DEFAULT_SYMBOLS.length);
    expect(report!.written).toBeLessThanOrEqual(SIM_DEFAULT_SYMBOLS.length * TIMEFRAMES.length);
    expect(await candleCount(db2)).toBe(before + report!.written);
  });

  it("writes a tick's large candle batch (one the write splits in two) completely and with the exchange's values", async () => {
    // No backfill: the first tick fetches HISTORY_CANDLES (100) per series, the last forming (not
    // written in a replay): 7,920 candles, past TWO_PART_MIN_ROWS.
    bot = await testBot.start({}, { backfill: false });
    const [report] = await bot.ticks(1);
    expect(report!.flushError).toBeUndefined();
    expect(report!.written).toBe(SIM_DEFAULT_SYMBOLS.length * TIMEFRAMES.length * 99);
    const db = await bot.database.get();
    expect(await candleCount(db)).toBe(report!.written);
    for (const symbol of SIM_DEFAULT_SYMBOLS) {
      for (const timeframe of TIMEFRAMES) {
        const stored = await recentCandles(db, { exchange: "sim", symbol, timeframe }, 100);
        const truth = (await bot.runtime.market.fetchCandles(symbol, timeframe, stored[0]?.openTime, 100)).filter((c) => c.isClosed);
        expect(stored.map((c) => [c.openTime, c.open, c.high, c.low, c.close, c.volume])).toEqual(truth.map((c) => [c.openTime, c.open, c.high, c.low, c.close, c.volume]));
      }
    }
  });

  it("writes closed candles only while the sim replays the past, and every series' forming candle once it has caught up", async () => {
    bot = await testBot.start({ SIM_REPLAY_CANDLES: "3", SYMBOLS: "BTC/USDT,ETH/USDT" });
    const db = await bot.database.get();
    const sim = bot.runtime.market;
    if (!(sim instanceof SimExchange)) throw new Error("the test bot runs on the sim");
    let replayTicks = 0;
    for (; sim.replaying() && replayTicks < 5; replayTicks += 1) {
      const [report] = await bot.ticks(1);
      // Each tick replays 15 minutes: a 15m candle closes per coin (and a 1h one every 4th tick).
      expect(report!.written).toBeGreaterThanOrEqual(2);
      if (sim.replaying()) expect(await storedForming(db)).toEqual([]);
    }
    // 45 minutes back at 15 minutes a tick: caught up on the third tick (the fourth if the clock passes a 15m boundary meanwhile).
    expect(replayTicks).toBeGreaterThanOrEqual(3);
    expect(replayTicks).toBeLessThanOrEqual(4);
    await bot.ticks(1);
    const forming: string[] = [];
    for (const symbol of bot.runtime.symbols) {
      for (const timeframe of TIMEFRAMES) {
        const newest = (await sim.fetchCandles(symbol, timeframe, undefined, 1))[0]!;
        expect(newest.isClosed).toBe(false);
        forming.push(`${symbol} ${timeframe} ${newest.openTime} ${newest.close}`);
      }
    }
    expect(await storedForming(db)).toEqual(forming.sort());
  });

  it("caught up, at one minute per tick, writes every forming candle every tick, and a 15m candle closes every 15th tick", async () => {
    // A long replay setting too: caught up means caught up, however far back a replay would start.
    bot = await testBot.start({ SYMBOLS: "BTC/USDT,ETH/USDT", SIM_REPLAY_CANDLES: "400" }, { simStepMs: 60_000, simCaughtUp: true });
    const reports = await bot.ticks(16);
    const times = reports.map((r) => r.exchangeTime);
    expect(times.slice(1).map((time, i) => time - (times[i] as number))).toEqual(new Array(15).fill(60_000));
    // 2 coins × 4 timeframes of forming candles each tick; once, the closing 15m candles besides
    // (and the closing 1h, 4h or 1d ones when the wall clock puts that boundary there too).
    const written = reports.map((r) => r.written);
    expect(written.filter((n) => n === 8)).toHaveLength(15);
    expect(written.find((n) => n !== 8)).toBeGreaterThanOrEqual(10);
  });

  it("at a restart cancels a paper entry a crash left in the ledger before its order was filled, and holds none of its coins", async () => {
    bot = await testBot.start();
    await bot.ticks(1);
    const db1 = await bot.database.get();
    const held = new Set((await listOpenPositions(db1)).map((p) => p.symbol));
    const symbol = SIM_DEFAULT_SYMBOLS.find((s) => !held.has(s)) ?? "";
    const now = bot.runtime.market.now();
    const cashBefore = (await balanceOf(bot.runtime.broker, "USDT")).total;
    // What enter() saves before it sends the order: a kill -9 right after leaves this row.
    const clientOrderId = entryOrderId("sim", symbol, now - 15 * 60_000);
    await recordOrderIntent(db1, entryIntent(symbol, clientOrderId, { requestedCost: 10, referencePrice: 10, takeProfit: 11, stopLoss: 9, createdAt: new Date(now) }));

    bot = await testBot.start({}, { backfill: false });
    const db2 = await bot.database.get();
    expect((await listOpenPositions(db2)).map((p) => p.symbol)).not.toContain(symbol);
    expect(bot.runtime.positions.get(symbol)).toBeUndefined();
    expect((await listOrders(db2, { symbol }))[0]).toMatchObject({ clientOrderId, status: "canceled" });
    const base = symbol.split("/")[0];
    expect((await bot.runtime.broker.balances()).map((b) => b.currency)).not.toContain(base);
    expect((await balanceOf(bot.runtime.broker, "USDT")).total).toBeCloseTo(cashBefore, 6);
    expect(bot.logger.lines.filter((l) => l.message.includes("settled with the exchange")).map((l) => l.meta?.symbol)).toEqual([symbol]);
  });

  it("carries a paper account from before the order ledger over as it stood: its last cash and its open positions' coins", async () => {
    // What an earlier version left: a cash snapshot and an open position, no orders, no account record.
    const legacy = await openDatabase({ databaseUrl: testBot.database.url, dataDir: testBot.database.dataDir, autoMigrate: true, logger: silentLogger });
    const openedAt = new Date(Date.now() - 60 * 60_000);
    await savePosition(legacy, { exchange: "sim", symbol: "ETH/USDT", side: "LONG", quantity: 1.5, entryPrice: 2000, takeProfit: 1e9, stopLoss: 1, entryOrderId: "paper-0badc0de-3", openedAt });
    await saveAccountState(legacy, [{ time: openedAt, exchange: "sim", currency: "USDT", free: 6543.21, used: 0, total: 6543.21, equity: 9543.21 }]);
    await legacy.close();

    bot = await testBot.start({}, { backfill: false });
    expect((await balanceOf(bot.runtime.broker, "USDT")).total).toBeCloseTo(6543.21, 8);
    expect((await balanceOf(bot.runtime.broker, "ETH")).total).toBe(1.5);
    expect(bot.runtime.positions.get("ETH/USDT")?.quantity).toBe(1.5);
    const db = await bot.database.get();
    expect((await listOrders(db, { symbol: "ETH/USDT" }))[0]).toMatchObject({ clientOrderId: "paper-0badc0de-3", status: "filled", filledAmount: 1.5 });
    // The next start finds the account opened and the position backed: nothing changes.
    bot = await testBot.start({}, { backfill: false });
    expect((await balanceOf(bot.runtime.broker, "USDT")).total).toBeCloseTo(6543.21, 8);
    expect(await listOrders(await bot.database.get(), { symbol: "ETH/USDT" })).toHaveLength(1);
  });

  it("changes no balance across restarts: cash and coins are what the ledger adds up to", async () => {
    bot = await testBot.start({ TICK_INTERVAL_MS: "0" });
    const accountOf = async (running: TestBot) => {
      const balances = await running.runtime.broker.balances();
      return new Map(balances.map((b) => [b.currency, b.total]));
    };
    let tradesSeen = 0;
    for (const ticks of [7, 13, 5, 11]) {
      await bot.ticks(ticks);
      const before = await accountOf(bot);
      const positionsOf = (running: TestBot) => new Map(running.runtime.positions.all().map((p) => [p.symbol, p.quantity]));
      const positions = positionsOf(bot);
      bot = await testBot.start({}, { backfill: false });
      const after = await accountOf(bot);
      for (const currency of new Set([...before.keys(), ...after.keys()])) expect(after.get(currency) ?? 0).toBeCloseTo(before.get(currency) ?? 0, 8);
      expect(positionsOf(bot)).toEqual(positions);
      tradesSeen = (await listTrades(await bot.database.get())).length;
    }
    // The restarts happened with trades booked, so the ledger's sums were put to the test.
    expect(tradesSeen).toBeGreaterThan(0);
  });
});

describe("bot under faults (PostgreSQL server)", () => {
  let testDb: TestDatabase;
  let bot: TestBot | undefined;
  let proxy: TcpProxy | undefined;
  beforeEach(async () => {
    testDb = await createServerTestDatabase();
  });
  afterEach(async () => {
    proxy?.restore();
    await bot?.stop();
    await proxy?.stop();
    bot = undefined;
    proxy = undefined;
    await testDb.drop();
  });

  it("keeps going when one coin's exchange calls throw, and that coin catches up without gaps once healed", async () => {
    bot = await startTestBot({ DATABASE_URL: testDb.url, CANDLEKEEP_DATA_DIR: testDb.dataDir, SYMBOLS: "BTC/USDT,ETH/USDT,SOL/USDT" });
    const sim = bot.runtime.market;
    if (!(sim instanceof SimExchange)) throw new Error("expected the simulated exchange");
    sim.failSymbols(["ETH/USDT"]);
    const reports = await bot.ticks(4);
    for (const report of reports) expect(report.failed.map((f) => `${f.symbol}: ${f.error}`)).toEqual([expect.stringMatching(/^ETH\/USDT: /)]);
    expect(bot.logger.lines.some((l) => l.message === "coin update failed" && l.meta?.symbol === "ETH/USDT")).toBe(true);

    const db = await bot.database.get();
    const last = async (symbol: string) =>
      (await candleCoverage(db, { exchange: "sim", symbols: [symbol], timeframes: ["15m"], windowCandles: 200 }))[0]!;
    expect((await last("BTC/USDT")).lastOpenTime).toBe((await last("ETH/USDT")).lastOpenTime! + 4 * 15 * 60_000);

    sim.failSymbols([]);
    await bot.ticks(1);
    const eth = await last("ETH/USDT");
    expect(eth.lastOpenTime).toBe((await last("BTC/USDT")).lastOpenTime);
    expect(eth.recentGaps).toBe(0);
  });

  it("reports where each tick's time went: a slow exchange shows in the fetch phase, and the phases add up to the tick", async () => {
    bot = await startTestBot({ DATABASE_URL: testDb.url, CANDLEKEEP_DATA_DIR: testDb.dataDir, SYMBOLS: "BTC/USDT,ETH/USDT,SOL/USDT" });
    const sim = bot.runtime.market;
    if (!(sim instanceof SimExchange)) throw new Error("expected the simulated exchange");
    const fetchCandles = sim.fetchCandles.bind(sim);
    // ETH/USDT's requests answer 100 ms late, as a slow exchange's would: far above what three coins' decisions take on a busy machine.
    sim.fetchCandles = async (symbol, timeframe, since, limit) => {
      if (symbol === "ETH/USDT") await sleep(100);
      return fetchCandles(symbol, timeframe, since, limit);
    };
    const [report] = await bot.ticks(1);
    const phases = report!.phasesMs;
    // A coin's four timeframes are fetched one after another (timers may fire up to 1 ms early).
    expect(phases.fetch).toBeGreaterThanOrEqual(4 * 99);
    expect(phases.decide).toBeLessThan(phases.fetch);
    for (const ms of [phases.account, phases.decide, phases.writeWait]) expect(ms).toBeGreaterThanOrEqual(0);
    expect(phases.account + phases.fetch + phases.decide + phases.writeWait).toBeCloseTo(report!.durationMs, 6);

    const histogram = await bot.runtime.metrics.tickPhaseDuration.get();
    const counts = histogram.values.filter((v) => v.metricName?.endsWith("_count")).map((v) => [v.labels.phase, v.value]);
    expect(counts.sort()).toEqual([["account", 1], ["decide", 1], ["fetch", 1], ["writeWait", 1]]);
    const fetchSeconds = histogram.values.find((v) => v.metricName?.endsWith("_sum") && v.labels.phase === "fetch")?.value;
    expect(fetchSeconds).toBeCloseTo(phases.fetch / 1000, 6);
  });

  it("keeps pending candles while the database is unreachable and writes each exactly once when it returns", async () => {
    const target = new URL(testDb.url!);
    proxy = new TcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
    const port = await proxy.start();
    const viaProxy = new URL(testDb.url!);
    viaProxy.port = String(port);
    // Caught up, so forming candles are written (and kept pending) too.
    bot = await startTestBot({ DATABASE_URL: viaProxy.toString(), CANDLEKEEP_DATA_DIR: testDb.dataDir, SYMBOLS: "BTC/USDT,ETH/USDT,SOL/USDT,DOGE/USDT" }, { simCaughtUp: true });
    await bot.ticks(2);

    proxy.cut();
    const during = await bot.ticks(5);
    expect(during.every((r) => r.flushError !== undefined)).toBe(true);
    expect(bot.runtime.candles.pendingCount).toBeGreaterThan(0);
    // The outage is logged once per interval, not once per tick or row.
    expect(bot.logger.lines.filter((l) => l.message.startsWith("writing candles failed")).length).toBe(1);

    proxy.restore();
    const [after] = await bot.ticks(1);
    expect(after!.flushError).toBeUndefined();
    expect(bot.runtime.candles.pendingCount).toBe(0);
    expect(bot.logger.lines.some((l) => l.message === "database is back; pending candles written")).toBe(true);

    // Every candle the exchange produced over the whole run is stored once, with the exchange's values.
    const db = await bot.database.get();
    const sim = bot.runtime.market;
    for (const symbol of bot.runtime.symbols) {
      for (const timeframe of TIMEFRAMES) {
        const stored = await db.sql.query<{ open_ms: string; close: number; n: string }>(
          `SELECT (extract(epoch from open_time) * 1000)::int8 AS open_ms, close, count(*) OVER () AS n FROM candles
           WHERE exchange = 'sim' AND symbol = $1 AND timeframe = $2 ORDER BY open_time`,
          [symbol, timeframe],
        );
        const first = Number(stored.rows[0]?.open_ms);
        const truth = await sim.fetchCandles(symbol, timeframe, first, 5000);
        expect(truth.at(-1)?.isClosed).toBe(false);
        expect(stored.rows.map((r) => [Number(r.open_ms), r.close])).toEqual(truth.map((c) => [c.openTime, c.close]));
      }
    }
  });
});

describe("bot on the embedded database", () => {
  it("runs ticks with no server and keeps its data across restarts", async () => {
    const testDb = createEmbeddedTestDatabase();
    let bot = await startTestBot({ CANDLEKEEP_DATA_DIR: testDb.dataDir, SYMBOLS: "BTC/USDT,ETH/USDT,SOL/USDT" });
    try {
      await bot.ticks(3);
      const count = await candleCount(await bot.database.get());
      // Per coin: the 99 closed candles of each series' last HISTORY_CANDLES (the forming one is not written while the sim replays), and the ticks' three 15m candles.
      expect(count).toBeGreaterThanOrEqual(3 * (4 * 99 + 3));
      await bot.stop();
      bot = await startTestBot({ CANDLEKEEP_DATA_DIR: testDb.dataDir, SYMBOLS: "BTC/USDT,ETH/USDT,SOL/USDT" }, { backfill: false });
      expect(await candleCount(await bot.database.get())).toBe(count);
    } finally {
      await bot.stop();
      await testDb.drop();
    }
  });
});
