import { TIMEFRAME_MS, type Candle } from "@candlekeep/core";
import { seriesCandleAt } from "@candlekeep/db";
import { PendingCandles } from "./pending";

const STEP = TIMEFRAME_MS["15m"];
const T0 = Date.UTC(2026, 5, 1);

function candle(index: number, overrides: Partial<Candle> = {}): Candle {
  const open = 100 + index;
  return { openTime: T0 + index * STEP, open, high: open + 2, low: open - 2, close: open + 1, volume: 10, isClosed: true, ...overrides };
}

/** A series' columns as candles, in their order. */
function held(pending: PendingCandles, symbol: string): Candle[] {
  const series = pending.series().find((s) => s.symbol === symbol);
  if (!series) return [];
  return Array.from({ length: series.length }, (_, i) => seriesCandleAt(series, i));
}

describe("PendingCandles", () => {
  it("holds each series' candles as columns in open-time order, one per open time, the last values set winning", () => {
    const pending = new PendingCandles("sim");
    for (const i of [0, 1, 2, 5]) pending.set("BTC/USDT", "15m", candle(i));
    // Out of order: between and before what is held; then the same open time again, changed.
    pending.set("BTC/USDT", "15m", candle(3));
    pending.set("BTC/USDT", "15m", candle(-1));
    pending.set("BTC/USDT", "15m", candle(2, { close: 99.5, low: 99, isClosed: false }));
    pending.set("ETH/USDT", "15m", candle(0));

    expect(pending.size).toBe(7);
    expect(held(pending, "BTC/USDT")).toEqual([candle(-1), candle(0), candle(1), candle(2, { close: 99.5, low: 99, isClosed: false }), candle(3), candle(5)]);
    expect(pending.series().map((s) => [s.exchange, s.symbol, s.timeframe, s.length])).toEqual([
      ["sim", "BTC/USDT", "15m", 6],
      ["sim", "ETH/USDT", "15m", 1],
    ]);
    expect(pending.has("BTC/USDT", "15m", T0 + 3 * STEP)).toBe(true);
    expect(pending.has("BTC/USDT", "15m", T0 + 4 * STEP)).toBe(false);
    expect(pending.has("BTC/USDT", "1h", T0)).toBe(false);
  });

  it("takes a newer batch's values over its own where both hold an open time (a failed write's batch put back)", () => {
    const failed = new PendingCandles("sim");
    for (const i of [0, 1, 2]) failed.set("BTC/USDT", "15m", candle(i, { isClosed: i < 2 }));
    const newer = new PendingCandles("sim");
    newer.set("BTC/USDT", "15m", candle(2, { close: 104 }));
    newer.set("BTC/USDT", "15m", candle(3));
    newer.set("SOL/USDT", "1h", candle(0));

    failed.setAll(newer);
    expect(failed.size).toBe(5);
    expect(held(failed, "BTC/USDT")).toEqual([candle(0), candle(1), candle(2, { close: 104 }), candle(3)]);
    expect(held(failed, "SOL/USDT")).toEqual([candle(0)]);
  });

  it("holds nothing once cleared, and the next candles set are held alone, in open-time order", () => {
    const pending = new PendingCandles("sim");
    for (const i of [0, 1, 2, 5, 6]) pending.set("BTC/USDT", "15m", candle(i));
    pending.set("ETH/USDT", "1h", candle(0));
    pending.clear();
    expect(pending.size).toBe(0);
    expect(pending.series()).toEqual([]);
    expect(pending.has("BTC/USDT", "15m", T0)).toBe(false);

    // Before, between and after what the columns held before the clear.
    pending.set("BTC/USDT", "15m", candle(5, { close: 106.5 }));
    pending.set("BTC/USDT", "15m", candle(3));
    pending.set("BTC/USDT", "15m", candle(0, { isClosed: false }));
    pending.set("BTC/USDT", "15m", candle(6));
    expect(pending.size).toBe(4);
    expect(held(pending, "BTC/USDT")).toEqual([candle(0, { isClosed: false }), candle(3), candle(5, { close: 106.5 }), candle(6)]);
    expect(pending.has("BTC/USDT", "15m", T0 + STEP)).toBe(false);
    expect(pending.series().map((s) => s.symbol)).toEqual(["BTC/USDT"]);
  });
});
