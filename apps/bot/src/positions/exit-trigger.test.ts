import type { Candle } from "@candlekeep/core";
import { exitTrigger } from "./exit-trigger";

const STEP = 60_000;
const T0 = Date.UTC(2026, 0, 1);
/** A long position entered near 100, with its stop at 95 and its target at 110. */
const LEVELS = { stopLoss: 95, takeProfit: 110 };

/** The i-th one-minute candle, between the levels unless overridden. */
function candle(i: number, overrides: Partial<Candle> = {}): Candle {
  return { openTime: T0 + i * STEP, open: 100, high: 102, low: 98, close: 101, volume: 10, isClosed: true, ...overrides };
}

describe("exitTrigger", () => {
  it("exits at the stop when a candle's low touches it between checks, though the last price is back above", () => {
    const candles = [candle(0), candle(1, { low: 94 }), candle(2)];
    expect(exitTrigger(LEVELS, candles, "NO_SIGNAL", 101)).toEqual({ reason: "STOP_LOSS", price: 95, candleTime: T0 + STEP });
  });

  it("exits at the open when a candle gaps down through the stop", () => {
    const candles = [candle(0), candle(1, { open: 90, high: 91, low: 88, close: 89 })];
    expect(exitTrigger(LEVELS, candles, "NO_SIGNAL", 89)).toEqual({ reason: "STOP_LOSS", price: 90, candleTime: T0 + STEP });
  });

  it("exits at the target when a candle's high touches it between checks", () => {
    const candles = [candle(0), candle(1, { high: 111 }), candle(2)];
    expect(exitTrigger(LEVELS, candles, "NO_SIGNAL", 101)).toEqual({ reason: "TAKE_PROFIT", price: 110, candleTime: T0 + STEP });
  });

  it("exits at the open when a candle gaps up through the target", () => {
    const candles = [candle(0), candle(1, { open: 115, high: 116, low: 114, close: 115 })];
    expect(exitTrigger(LEVELS, candles, "NO_SIGNAL", 115)).toEqual({ reason: "TAKE_PROFIT", price: 115, candleTime: T0 + STEP });
  });

  it("takes the stop-loss when one candle spans both levels", () => {
    const candles = [candle(0, { high: 111, low: 94 })];
    expect(exitTrigger(LEVELS, candles, "NO_SIGNAL", 101)).toEqual({ reason: "STOP_LOSS", price: 95, candleTime: T0 });
  });

  it("takes the target at the open when a candle opens above it, even if it then falls through the stop", () => {
    const candles = [candle(0, { open: 112, high: 112, low: 94, close: 94 })];
    expect(exitTrigger(LEVELS, candles, "NO_SIGNAL", 94)).toEqual({ reason: "TAKE_PROFIT", price: 112, candleTime: T0 });
  });

  it("takes the earliest candle that reaches a level", () => {
    const candles = [candle(0), candle(1, { high: 111 }), candle(2, { low: 94 })];
    expect(exitTrigger(LEVELS, candles, "NO_SIGNAL", 94)).toEqual({ reason: "TAKE_PROFIT", price: 110, candleTime: T0 + STEP });
  });

  it("sees a forming last candle", () => {
    const candles = [candle(0), candle(1, { low: 94, isClosed: false })];
    expect(exitTrigger(LEVELS, candles, "NO_SIGNAL", 96)).toEqual({ reason: "STOP_LOSS", price: 95, candleTime: T0 + STEP });
  });

  it("checks the last price against the levels when no candle reached them", () => {
    expect(exitTrigger(LEVELS, [], "NO_SIGNAL", 94)).toEqual({ reason: "STOP_LOSS", price: 94 });
    expect(exitTrigger(LEVELS, [candle(0)], "SELL", 111)).toEqual({ reason: "TAKE_PROFIT", price: 111 });
  });

  it("exits on a SELL signal at the last price when no level was reached", () => {
    expect(exitTrigger(LEVELS, [candle(0), candle(1)], "SELL", 101)).toEqual({ reason: "SIGNAL", price: 101 });
  });

  it("does not exit when nothing reached a level and the signal is not SELL", () => {
    expect(exitTrigger(LEVELS, [candle(0), candle(1)], "NO_SIGNAL", 101)).toBeUndefined();
    expect(exitTrigger(LEVELS, [candle(0)], "BUY", 101)).toBeUndefined();
  });

  it("ignores a level that is not set", () => {
    const wild = [candle(0, { open: 50, high: 500, low: 1, close: 50 })];
    expect(exitTrigger({ stopLoss: null, takeProfit: null }, wild, "NO_SIGNAL", 50)).toBeUndefined();
    expect(exitTrigger({ stopLoss: null, takeProfit: 110 }, [candle(0, { low: 1 })], "NO_SIGNAL", 1)).toBeUndefined();
    expect(exitTrigger({ stopLoss: 95, takeProfit: null }, [candle(0, { high: 500 })], "NO_SIGNAL", 500)).toBeUndefined();
  });
});
