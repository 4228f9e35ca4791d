import { TIMEFRAME_MS } from "@candlekeep/core";
import ccxt from "ccxt";
import { aggregateCandles, ccxtTimeframeMs, timeframeSource } from "./aggregate";
import type { ExchangeCandle } from "./types";

const HOUR = TIMEFRAME_MS["1h"];
const DAY = TIMEFRAME_MS["1d"];
const T0 = Date.UTC(2026, 2, 10);

/** Hourly candles from `from`, one per price given as [open, high, low, close], volume 10 + index. */
function hourly(from: number, prices: readonly (readonly [number, number, number, number])[]): ExchangeCandle[] {
  return prices.map(([open, high, low, close], i) => ({ openTime: from + i * HOUR, open, high, low, close, volume: 10 + i, isClosed: true }));
}

const FOUR_HOURS: readonly (readonly [number, number, number, number])[] = [
  [100, 104, 99, 103],
  [103, 108, 101, 102],
  [102, 103, 95, 97],
  [97, 101, 96, 100],
];

describe("aggregateCandles", () => {
  it("builds a candle from the source candles of its period: first open, highest high, lowest low, last close, summed volume", () => {
    expect(aggregateCandles(hourly(T0, FOUR_HOURS), HOUR, "4h", T0 + DAY)).toEqual([{ openTime: T0, open: 100, high: 108, low: 95, close: 100, volume: 46, isClosed: true }]);
  });

  it("cuts periods on UTC boundaries: hours from 02:00 to 10:00 make the 04:00 candle only (00:00 and 08:00 lack hours)", () => {
    const candles = aggregateCandles(hourly(T0 + 2 * HOUR, [...FOUR_HOURS, ...FOUR_HOURS]), HOUR, "4h", T0 + DAY);
    expect(candles.map((c) => [new Date(c.openTime).toISOString(), c.open, c.close, c.isClosed])).toEqual([["2026-03-10T04:00:00.000Z", 102, 102, true]]);
  });

  it("keeps the candle whose period contains now as forming, from the source candles so far", () => {
    const candles = aggregateCandles(hourly(T0, FOUR_HOURS.slice(0, 3)), HOUR, "4h", T0 + 2.5 * HOUR);
    expect(candles).toEqual([{ openTime: T0, open: 100, high: 108, low: 95, close: 97, volume: 33, isClosed: false }]);
  });

  it("leaves out a candle whose period has ended with a source candle missing, rather than close it without that candle's trades", () => {
    const gap = hourly(T0, FOUR_HOURS).filter((_, i) => i !== 2);
    expect(aggregateCandles(gap, HOUR, "4h", T0 + DAY)).toEqual([]);
    const next = hourly(T0 + 4 * HOUR, FOUR_HOURS);
    expect(aggregateCandles([...gap, ...next], HOUR, "4h", T0 + DAY).map((c) => c.openTime)).toEqual([T0 + 4 * HOUR]);
  });

  it("counts a source candle off its own timeframe's boundary as missing", () => {
    const shifted = hourly(T0, FOUR_HOURS).map((c, i) => (i === 1 ? { ...c, openTime: c.openTime + 60_000 } : c));
    expect(aggregateCandles(shifted, HOUR, "4h", T0 + DAY)).toEqual([]);
  });

  it("builds a UTC day from six 4h candles", () => {
    const fourHourly = Array.from({ length: 6 }, (_, i) => ({ openTime: T0 + i * TIMEFRAME_MS["4h"], open: 10 + i, high: 20 + i, low: 5 - i * 0.5, close: 11 + i, volume: 1, isClosed: true }));
    expect(aggregateCandles(fourHourly, TIMEFRAME_MS["4h"], "1d", T0 + DAY)).toEqual([{ openTime: T0, open: 10, high: 25, low: 2.5, close: 16, volume: 6, isClosed: true }]);
  });
});

describe("timeframeSource", () => {
  const offered = (id: "coinbase" | "gemini" | "bithumb" | "binance") => Object.keys(new ccxt[id]().timeframes);

  it("uses the exchange's own candles when it has the timeframe", () => {
    expect(timeframeSource("4h", offered("binance"))).toEqual({ kind: "native" });
  });

  it("builds a missing timeframe from the longest shorter one that divides it", () => {
    // coinbase: 2h; gemini: no 2h (and 6h does not divide 4h), so 1h; bithumb has no 1d: 4h.
    expect(timeframeSource("4h", offered("coinbase"))).toEqual({ kind: "built", from: "2h", fromMs: 2 * HOUR });
    expect(timeframeSource("4h", offered("gemini"))).toEqual({ kind: "built", from: "1h", fromMs: HOUR });
    expect(timeframeSource("1d", offered("bithumb"))).toEqual({ kind: "built", from: "4h", fromMs: 4 * HOUR });
    expect(timeframeSource("15m", ["1m", "3m", "10m", "1h"])).toEqual({ kind: "built", from: "3m", fromMs: 3 * 60_000 });
  });

  it("finds nothing when no shorter timeframe divides it", () => {
    expect(timeframeSource("15m", ["10m", "30m", "1h"])).toBeUndefined();
    expect(timeframeSource("1d", ["1w", "1M"])).toBeUndefined();
  });
});

describe("ccxtTimeframeMs", () => {
  it("reads ccxt's timeframe names, and has no length for months and years", () => {
    expect([ccxtTimeframeMs("1s"), ccxtTimeframeMs("5m"), ccxtTimeframeMs("12h"), ccxtTimeframeMs("3d"), ccxtTimeframeMs("1w")]).toEqual([1000, 300_000, 12 * HOUR, 3 * DAY, 7 * DAY]);
    expect([ccxtTimeframeMs("1M"), ccxtTimeframeMs("1y"), ccxtTimeframeMs("15")]).toEqual([undefined, undefined, undefined]);
  });
});
