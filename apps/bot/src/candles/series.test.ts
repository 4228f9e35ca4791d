import type { ExchangeCandle } from "../exchange/types";
import { CandleSeries } from "./series";

const STEP = 900_000;
const T0 = Date.UTC(2026, 0, 1);

function candle(i: number, overrides: Partial<ExchangeCandle> = {}): ExchangeCandle {
  const open = 100 + i;
  return { openTime: T0 + i * STEP, open, high: open + 2, low: open - 1, close: open + 1, volume: 10 + i, isClosed: true, ...overrides };
}

/** The series' closed candles as objects (these tests hold closed candles only, unless they say otherwise). */
function held(series: CandleSeries): ExchangeCandle[] {
  const c = series.closedColumns();
  return Array.from({ length: c.length }, (_, i) => ({
    openTime: c.openTime[i] as number,
    open: c.open[i] as number,
    high: c.high[i] as number,
    low: c.low[i] as number,
    close: c.close[i] as number,
    volume: c.volume[i] as number,
    isClosed: true,
  }));
}

describe("CandleSeries", () => {
  it("keeps candles in openTime order whatever order they arrive in, replacing same-time candles", () => {
    const series = new CandleSeries(100);
    for (const i of [5, 1, 3, 0, 4, 2]) series.put(candle(i));
    series.put(candle(3, { close: 999, high: 1000 }));
    expect(held(series).map((c) => c.openTime)).toEqual([0, 1, 2, 3, 4, 5].map((i) => T0 + i * STEP));
    expect(held(series)[3]).toEqual(candle(3, { close: 999, high: 1000 }));
    expect(held(series)).toHaveLength(6);
    expect(series.lastOpenTime()).toBe(T0 + 5 * STEP);
  });

  it("keeps at least the newest `keep` candles and drops older ones in steps", () => {
    const series = new CandleSeries(50);
    for (let i = 0; i < 1000; i += 1) {
      series.put(candle(i));
      expect(held(series).length).toBeGreaterThanOrEqual(Math.min(i + 1, 50));
      expect(held(series).length).toBeLessThanOrEqual(50 + 16);
    }
    const all = held(series);
    expect(all.at(-1)).toEqual(candle(999));
    expect(all.every((c, i) => i === 0 || c.openTime - (all[i - 1] as ExchangeCandle).openTime === STEP)).toBe(true);
    expect(all.every((c) => c.close === (c.openTime - T0) / STEP + 101)).toBe(true);
  });

  it("inserts an older candle into a full series without losing the newest ones", () => {
    const series = new CandleSeries(50);
    for (let i = 10; i < 76; i += 1) series.put(candle(i)); // 66 held: full
    series.put(candle(60, { isClosed: true, close: 161 })); // same values: replaced in place
    series.put(candle(9)); // older than everything: room is made first, then it is placed
    const all = held(series);
    expect(all.at(-1)).toEqual(candle(75));
    expect(all.length).toBeGreaterThanOrEqual(50);
    expect(all.every((c, i) => i === 0 || c.openTime > (all[i - 1] as ExchangeCandle).openTime)).toBe(true);
  });

  it("tells held candles from changed ones", () => {
    const series = new CandleSeries(50);
    series.put(candle(1, { isClosed: false }));
    expect(series.holds(candle(1, { isClosed: false }))).toBe(true);
    expect(series.holds(candle(1))).toBe(false); // it closed
    expect(series.holds(candle(1, { isClosed: false, volume: 11.5 }))).toBe(false);
    expect(series.holds(candle(2))).toBe(false);
  });

  it("never takes a forming candle put as unwritten for a held one, and shows it as forming", () => {
    const series = new CandleSeries(50);
    for (let i = 0; i < 3; i += 1) series.put(candle(i));
    series.put(candle(3, { isClosed: false }), true);
    // Fetched again with the same values, it is not held: it must still be written.
    expect(series.holds(candle(3, { isClosed: false }))).toBe(false);
    expect(series.closedColumns().length).toBe(3);
    expect(series.lastOpenTime()).toBe(T0 + 3 * STEP);
    expect(series.lastClose()).toBe(104);
    series.put(candle(3, { isClosed: false }));
    expect(series.holds(candle(3, { isClosed: false }))).toBe(true);
    // Its closed version, put the same way, is held as any closed candle.
    series.put(candle(3), true);
    expect(series.holds(candle(3))).toBe(true);
    expect(series.closedColumns().length).toBe(4);
  });

  it("shows closed candles as columns, without a forming last one", () => {
    const series = new CandleSeries(50);
    expect(series.closedColumns().length).toBe(0);
    for (let i = 0; i < 3; i += 1) series.put(candle(i));
    series.put(candle(3, { isClosed: false }));
    const closed = series.closedColumns();
    expect(closed.length).toBe(3);
    expect([...closed.close]).toEqual([101, 102, 103]);
    expect([...closed.openTime]).toEqual([T0, T0 + STEP, T0 + 2 * STEP]);
    expect([...closed.high]).toEqual([102, 103, 104]);
    expect(series.lastClose()).toBe(104);
    series.put(candle(3));
    expect(series.closedColumns().length).toBe(4);
  });

  it("gives the candles opening at or after a time, oldest first, a forming last one included", () => {
    const series = new CandleSeries(50);
    expect(series.since(T0)).toEqual([]);
    for (const i of [3, 0, 2, 1]) series.put(candle(i));
    series.put(candle(4, { isClosed: false }), true);
    expect(series.since(T0 + 2 * STEP)).toEqual([candle(2), candle(3), candle(4, { isClosed: false })]);
    // A time between two openTimes starts at the next candle.
    expect(series.since(T0 + 2 * STEP + 1).map((c) => c.openTime)).toEqual([T0 + 3 * STEP, T0 + 4 * STEP]);
    expect(series.since(T0 - STEP)).toHaveLength(5);
    expect(series.since(T0 + 5 * STEP)).toEqual([]);
  });

  it("gives copies that later puts do not change", () => {
    const series = new CandleSeries(50);
    series.put(candle(0, { isClosed: false }));
    const seen = series.since(T0);
    series.put(candle(0, { close: 99, low: 98 }));
    expect(seen).toEqual([candle(0, { isClosed: false })]);
    expect(series.since(T0)).toEqual([candle(0, { close: 99, low: 98 })]);
  });
});
