import { TIMEFRAME_MS } from "@candlekeep/core";
import { recentCandles, type Database } from "@candlekeep/db";
import { captureLogger, createServerTestDatabase, openOnTestDatabase, openTestDatabase, type TestDatabase } from "@candlekeep/db/testing";
import type { ExchangeCandle } from "../exchange/types";
import { CandleManager } from "./manager";

const STEP = TIMEFRAME_MS["15m"];
const T0 = Date.UTC(2026, 5, 1);
const NOW = T0 + 1000 * STEP;

function make(count: number, overrides: Partial<ExchangeCandle> = {}, from = 0): ExchangeCandle[] {
  return Array.from({ length: count }, (_, i) => {
    const open = 100 + from + i;
    return { openTime: T0 + (from + i) * STEP, open, high: open + 2, low: open - 2, close: open + 1, volume: 10, isClosed: true, ...overrides };
  });
}

function manager(options: Partial<{ maxPending: number; historyCandles: number; replaying: () => boolean }> = {}) {
  const logger = captureLogger();
  const { maxPending = 10_000, historyCandles = 100, replaying } = options;
  return { logger, candles: new CandleManager({ exchange: "sim", historyCandles, maxPending, logger, now: () => NOW, ...(replaying ? { replaying } : {}) }) };
}

describe("CandleManager (in memory)", () => {
  it("queues valid candles, rejects invalid ones with a reason, and does not re-queue unchanged candles", () => {
    const { candles } = manager();
    const batch = [...make(3), { ...make(1, {}, 3)[0]!, high: 1 }];
    const first = candles.add("BTC/USDT", "15m", batch);
    expect(first.accepted).toBe(3);
    expect(first.rejected.map((r) => r.reason)).toEqual(["high 1 is below max(open, close) 104"]);
    expect(candles.pendingCount).toBe(3);
    expect(candles.lastOpenTime("BTC/USDT", "15m")).toBe(T0 + 2 * STEP);

    expect(candles.add("BTC/USDT", "15m", batch.slice(0, 3)).accepted).toBe(0);
  });

  it("keeps only the latest values of a forming candle pending", () => {
    const { candles } = manager();
    candles.add("BTC/USDT", "15m", make(1, { isClosed: false, close: 100.5 }));
    candles.add("BTC/USDT", "15m", make(1, { isClosed: false, close: 101.5 }));
    expect(candles.pendingCount).toBe(1);
    expect(candles.lastOpenTime("BTC/USDT", "15m")).toBe(T0);
    expect(candles.closedColumns("BTC/USDT", "15m").length).toBe(0);
    expect(candles.lastClose("BTC/USDT", "15m")).toBe(101.5);
  });

  it("during a replay queues closed candles only, holds the forming one for the strategy, and queues it once the replay is over", () => {
    let replaying = true;
    const { candles, logger } = manager({ replaying: () => replaying });
    const fetched = [...make(3), ...make(1, { isClosed: false, close: 103.5 }, 3)];
    expect(candles.add("BTC/USDT", "15m", fetched)).toMatchObject({ accepted: 3, deferred: 0 });
    expect(candles.pendingCount).toBe(3);
    expect(candles.lastOpenTime("BTC/USDT", "15m")).toBe(T0 + 3 * STEP);
    expect(candles.lastClose("BTC/USDT", "15m")).toBe(103.5);
    expect(candles.closedColumns("BTC/USDT", "15m").length).toBe(3);
    // Still replaying, the forming candle moves: held, not queued; an invalid one is still rejected.
    const moved = make(1, { isClosed: false, close: 103.8 }, 3);
    expect(candles.add("BTC/USDT", "15m", moved).accepted).toBe(0);
    expect(candles.add("BTC/USDT", "15m", make(1, { isClosed: false, high: 1 }, 3)).rejected).toHaveLength(1);
    expect(candles.lastClose("BTC/USDT", "15m")).toBe(103.8);
    expect(candles.pendingCount).toBe(3);
    // Caught up: the same forming candle, unchanged, is queued now (it was never written).
    replaying = false;
    expect(candles.add("BTC/USDT", "15m", moved).accepted).toBe(1);
    expect(candles.pendingCount).toBe(4);
    expect(candles.add("BTC/USDT", "15m", moved).accepted).toBe(0);
    // Each change of mode is logged once.
    expect(logger.lines.map((l) => l.message)).toEqual([
      "the exchange replays the past: closed candles only are written until it catches up",
      "caught up with the clock: forming candles are written again",
    ]);
  });

  it("bounds pending rows: defers what does not fit, logs the bound once, and does not advance past it", () => {
    const { candles, logger } = manager({ maxPending: 5 });
    const result = candles.add("BTC/USDT", "15m", make(8));
    expect(result).toMatchObject({ accepted: 5, deferred: 3 });
    expect(candles.pendingCount).toBe(5);
    expect(candles.lastOpenTime("BTC/USDT", "15m")).toBe(T0 + 4 * STEP);
    candles.add("ETH/USDT", "15m", make(2));
    expect(logger.lines.filter((l) => l.message.startsWith("pending candle limit reached"))).toHaveLength(1);
    expect(logger.lines[0]?.meta).toEqual({ maxPendingCandles: 5 });
  });

  it("gives a series' candles since a time, the forming one included, and none for a series it does not hold", () => {
    const { candles } = manager();
    const fetched = [...make(3), ...make(1, { isClosed: false, close: 103.5 }, 3)];
    candles.add("BTC/USDT", "15m", fetched);
    candles.add("ETH/USDT", "15m", make(4, { open: 50, high: 52, low: 48, close: 51 }));
    expect(candles.candlesSince("BTC/USDT", "15m", T0 + 2 * STEP)).toEqual(fetched.slice(2));
    expect(candles.candlesSince("BTC/USDT", "1h", T0)).toEqual([]);
    expect(candles.candlesSince("SOL/USDT", "15m", T0)).toEqual([]);
  });

  it("keeps a bounded history per series", () => {
    const { candles } = manager({ historyCandles: 50 });
    for (let i = 0; i < 20; i += 1) candles.add("BTC/USDT", "15m", make(10, {}, i * 10));
    const held = [...candles.closedColumns("BTC/USDT", "15m").openTime];
    expect(held.length).toBeGreaterThanOrEqual(50);
    expect(held.length).toBeLessThanOrEqual(50 + 16);
    expect(held.at(-1)).toBe(T0 + 199 * STEP);
    expect(held.every((openTime, i) => i === 0 || openTime - (held[i - 1] as number) === STEP)).toBe(true);
  });
});

describe("CandleManager.flushPending against PostgreSQL", () => {
  let testDb: TestDatabase;
  beforeAll(async () => {
    testDb = await createServerTestDatabase();
  });
  afterAll(async () => {
    await testDb.drop();
  });

  const open = () => openOnTestDatabase(testDb, { logger: captureLogger() });

  it("keeps the batch when the database is down and writes it exactly once when it is back", async () => {
    const { candles } = manager();
    const broken: Database = await open();
    await broken.close(); // every query on it now fails, as during an outage

    candles.add("BTC/USDT", "15m", make(10));
    await expect(candles.flushPending(broken)).rejects.toThrow();
    expect(candles.pendingCount).toBe(10);

    // More candles arrive while the database is away; a forming one changes twice.
    candles.add("BTC/USDT", "15m", make(1, { isClosed: false, close: 111 }, 10));
    await expect(candles.flushPending(broken)).rejects.toThrow();
    candles.add("BTC/USDT", "15m", make(1, { isClosed: false, close: 112 }, 10));
    expect(candles.pendingCount).toBe(11);

    const db = await open();
    try {
      const result = await candles.flushPending(db);
      expect(result).toMatchObject({ written: 11, flushed: 11 });
      expect(candles.pendingCount).toBe(0);
      const stored = await recentCandles(db, { exchange: "sim", symbol: "BTC/USDT", timeframe: "15m" }, 100);
      expect(stored).toHaveLength(11);
      expect(stored.at(-1)).toMatchObject({ close: 112, isClosed: false });
      expect((await candles.flushPending(db)).written).toBe(0);
    } finally {
      await db.close();
    }
  });
});

describe("CandleManager on the embedded engine", () => {
  it("flushes many series in one call", async () => {
    const db = await openTestDatabase("embedded");
    try {
      const { candles } = manager();
      for (const symbol of ["A/USDT", "B/USDT", "C/USDT"]) candles.add(symbol, "15m", make(20));
      expect((await candles.flushPending(db)).written).toBe(60);
    } finally {
      await db.close();
    }
  });
});
