import { toColumns } from "../candles/columns";
import type { ExchangeCandle } from "../exchange/types";
import { DEFAULT_STRATEGY_PARAMS, decide, lookbackCandles, minimumCandles, validateStrategyParams } from "./decide";
import type { Decision, Indicators, PositionView, StrategyParams } from "./types";

const params = DEFAULT_STRATEGY_PARAMS;
const FIFTEEN_MINUTES = 15 * 60_000;
const START = Date.UTC(2024, 0, 1);

/** Closed 15m candles from closes: each opens at the previous close, with a wick either side. */
function candlesFromCloses(closes: readonly number[], wick = 0.5): ExchangeCandle[] {
  return closes.map((close, i) => {
    const open = i === 0 ? close : (closes[i - 1] ?? close);
    return { openTime: START + i * FIFTEEN_MINUTES, open, high: Math.max(open, close) + wick, low: Math.min(open, close) - wick, close, volume: 1, isClosed: true };
  });
}

/** Closes from a start price and per-candle steps, the steps repeated as a cycle. */
function walk(start: number, count: number, steps: readonly number[]): number[] {
  const closes = [start];
  for (let i = 1; i < count; i++) closes.push((closes[i - 1] ?? start) + (steps[(i - 1) % steps.length] ?? 0));
  return closes;
}

const uptrend = walk(100, 40, [3, -2]); // rising with pullbacks: RSI near 60
const downtrend = walk(200, 40, [-3, 2]);
const flat = walk(100, 40, [0]);
const straightUp = walk(100, 40, [1]); // no losses at all: RSI 100
const rallyThenCollapse = [...uptrend, ...walk((uptrend.at(-1) ?? 0) - 6, 10, [-6])];
const long: PositionView = { side: "LONG", entryPrice: 100 };

// ---- Reference indicators, written out from their definitions ----------------------------

/** EMA seeded with the first value (as pandas ewm(adjust=False) and trading-signals); ready after `period` values. */
function refEma(values: readonly number[], period: number): (number | null)[] {
  const k = 2 / (period + 1);
  let ema = 0;
  return values.map((value, i) => {
    ema = i === 0 ? value : value * k + ema * (1 - k);
    return i + 1 >= period ? ema : null;
  });
}

/** Wilder's smoothing: the first value is the simple average of `period` inputs, then avg += (x − avg) / period. */
function refWilder(values: readonly number[], period: number): (number | null)[] {
  let avg = 0;
  return values.map((value, i) => {
    if (i < period) {
      avg += value / period;
      return i === period - 1 ? avg : null;
    }
    avg = (avg * (period - 1) + value) / period;
    return avg;
  });
}

/** Wilder's RSI; for candle i it uses the changes up to close i. */
function refRsi(closes: readonly number[], period: number): (number | null)[] {
  const changes = closes.slice(1).map((close, i) => close - (closes[i] ?? close));
  const gains = refWilder(changes.map((c) => Math.max(c, 0)), period);
  const losses = refWilder(changes.map((c) => Math.max(-c, 0)), period);
  return [null, ...gains.map((gain, i) => {
    const loss = losses[i];
    if (gain === null || loss === null || loss === undefined) return null;
    return loss === 0 ? 100 : 100 - 100 / (1 + gain / loss);
  })];
}

/** Wilder's ATR; the first candle's true range is its high − low. */
function refAtr(candles: readonly ExchangeCandle[], period: number): (number | null)[] {
  const ranges = candles.map((c, i) => {
    const previous = candles[i - 1];
    if (previous === undefined) return c.high - c.low;
    return Math.max(c.high - c.low, Math.abs(c.high - previous.close), Math.abs(c.low - previous.close));
  });
  return refWilder(ranges, period);
}

/** The reference indicators for the last candle, over the window decide reads. */
function reference(candles: readonly ExchangeCandle[], p: StrategyParams = params): Indicators {
  const window = candles.slice(-lookbackCandles(p));
  const closes = window.map((c) => c.close);
  return {
    emaFast: refEma(closes, p.emaFast).at(-1) ?? null,
    emaSlow: refEma(closes, p.emaSlow).at(-1) ?? null,
    rsi: refRsi(closes, p.rsiPeriod).at(-1) ?? null,
    atr: refAtr(window, p.atrPeriod).at(-1) ?? null,
  };
}

function expectNear(actual: number | null, expected: number | null): void {
  if (expected === null || actual === null) {
    expect(actual).toBe(expected);
    return;
  }
  expect(Math.abs(actual - expected)).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(expected)));
}

function expectIndicators(actual: Indicators, expected: Indicators): void {
  expectNear(actual.emaFast, expected.emaFast);
  expectNear(actual.emaSlow, expected.emaSlow);
  expectNear(actual.rsi, expected.rsi);
  expectNear(actual.atr, expected.atr);
}

/** Decisions for each prefix of the series, as the bot sees them candle after candle. */
function decisionsOver(candles: readonly ExchangeCandle[], position: PositionView | null): Decision[] {
  return candles.map((_, i) => decide(toColumns(candles.slice(0, i + 1)), position, params));
}

// ---- Tests ---------------------------------------------------------------------------------

describe("minimumCandles", () => {
  it("is the longest indicator warm-up: the slow EMA for the defaults, RSI's period + 1 when that is longer", () => {
    expect(minimumCandles(params)).toBe(21);
    expect(minimumCandles({ ...params, rsiPeriod: 30 })).toBe(31);
    expect(minimumCandles({ ...params, atrPeriod: 40 })).toBe(40);
    expect(lookbackCandles(params)).toBe(63);
  });
});

describe("decide", () => {
  it("waits with NO_SIGNAL while warming up, filling the indicators that are ready", () => {
    const candles = candlesFromCloses(uptrend.slice(0, 10));
    const decision = decide(toColumns(candles), null, params);
    expect(decision).toMatchObject({ action: "NO_SIGNAL", reasons: ["warming up: 10 of 21 candles"], price: uptrend[9], candleTime: START + 9 * FIFTEEN_MINUTES, takeProfit: null, stopLoss: null });
    expect(decision.indicators.emaSlow).toBeNull();
    expect(decision.indicators.rsi).toBeNull();
    expect(decision.indicators.atr).toBeNull();
    expectIndicators(decision.indicators, reference(candles));
  });

  it("waits with NO_SIGNAL and price 0 when there are no candles at all", () => {
    expect(decide(toColumns([]), null, params)).toEqual({
      action: "NO_SIGNAL",
      reasons: ["warming up: 0 of 21 candles"],
      price: 0,
      candleTime: 0,
      indicators: { emaFast: null, emaSlow: null, rsi: null, atr: null },
      takeProfit: null,
      stopLoss: null,
    });
  });

  it("buys a clean uptrend with take-profit and stop-loss at the ATR distances", () => {
    const candles = candlesFromCloses(uptrend);
    const expected = reference(candles);
    const decision = decide(toColumns(candles), null, params);
    const price = uptrend.at(-1) ?? 0;

    expect(decision.action).toBe("BUY");
    expect(decision.price).toBe(price);
    expect(decision.candleTime).toBe(START + 39 * FIFTEEN_MINUTES);
    expectIndicators(decision.indicators, expected);
    const atr = expected.atr ?? 0;
    expect(atr).toBeGreaterThan(0);
    expectNear(decision.takeProfit, price + 2.5 * atr);
    expectNear(decision.stopLoss, price - 1.5 * atr);
    expect(decision.reasons).toHaveLength(4);
    expect(decision.reasons[0]).toMatch(/^emaFast [\d.]+ > emaSlow [\d.]+ \(\+[\d.]+%, uptrend\)$/);
    expect(decision.reasons[1]).toMatch(/^rsi \d+\.\d within entry band 45\.\.70$/);
    expect(decision.reasons[2]).toMatch(/^atr [\d.]+ \([\d.]+% of price\)$/);
    expect(decision.reasons[3]).toMatch(/^take-profit [\d.]+, stop-loss [\d.]+$/);
  });

  it("reads only the most recent lookbackCandles candles", () => {
    const valid = candlesFromCloses(walk(100, lookbackCandles(params), [3, -2]));
    const garbage = candlesFromCloses(Array.from({ length: 100 }, () => Number.NaN)).map((c) => ({ ...c, openTime: c.openTime - 200 * FIFTEEN_MINUTES }));
    const decision = decide(toColumns([...garbage, ...valid]), null, params);
    expect(decision.action).toBe("BUY");
    expectIndicators(decision.indicators, reference(valid));
  });

  it("reads the first `length` candles of the columns, ignoring anything stored after them", () => {
    const valid = candlesFromCloses(uptrend);
    const stored = toColumns([...valid, ...candlesFromCloses([Number.NaN, Number.NaN])]);
    expect(decide({ ...stored, length: valid.length }, null, params)).toEqual(decide(toColumns(valid), null, params));
  });

  it("gives NO_SIGNAL in a downtrend without a position", () => {
    const decision = decide(toColumns(candlesFromCloses(downtrend)), null, params);
    expect(decision.action).toBe("NO_SIGNAL");
    expect(decision.takeProfit).toBeNull();
    expect(decision.stopLoss).toBeNull();
    expect(decision.reasons[0]).toMatch(/^emaFast [\d.]+ < emaSlow [\d.]+ \(-[\d.]+%, downtrend\)$/);
    expect(decision.reasons[1]).toMatch(/^rsi [\d.]+ below entry band 45\.\.70$/);
    expect(decision.reasons[2]).toMatch(/^atr /);
  });

  it("gives NO_SIGNAL on a flat series, with RSI neutral rather than 100, and keeps a held position", () => {
    const candles = candlesFromCloses(flat);
    const decision = decide(toColumns(candles), null, params);
    expect(decision.action).toBe("NO_SIGNAL");
    expect(decision.indicators).toEqual({ emaFast: 100, emaSlow: 100, rsi: 50, atr: 1 });
    expect(decision.reasons).toEqual(["emaFast 100 = emaSlow 100 (no trend)", "rsi 50.0 (no price change over 40 candles, neutral) within entry band 45..70", "atr 1 (1.00% of price)"]);
    expect(decide(toColumns(candles), long, params).action).toBe("NO_SIGNAL");
  });

  it("names the entry band of the settings it is given, decision after decision", () => {
    const candles = toColumns(candlesFromCloses(flat));
    const band = (p: StrategyParams) => decide(candles, null, p).reasons[1]?.replace(/^.* entry band /, "");
    expect([band(params), band({ ...params, rsiEntryMin: 30, rsiEntryMax: 60.5 }), band(params)]).toEqual(["45..70", "30..60.5", "45..70"]);
  });

  it("does not buy when RSI is above the entry band", () => {
    const decision = decide(toColumns(candlesFromCloses(straightUp)), null, params);
    expect(decision.action).toBe("NO_SIGNAL");
    expect(decision.reasons[1]).toBe("rsi 100.0 above entry band 45..70");
  });

  it("holds a LONG position in an uptrend with RSI below the exit", () => {
    const decision = decide(toColumns(candlesFromCloses(uptrend)), long, params);
    expect(decision.action).toBe("NO_SIGNAL");
    expect(decision.reasons[0]).toBe(`holding LONG from 100, price ${uptrend.at(-1)} (+${((uptrend.at(-1) ?? 0) - 100).toFixed(2)}%)`);
    expect(decision.reasons[2]).toMatch(/^rsi [\d.]+ < exit 75$/);
    expect(decision.takeProfit).toBeNull();
  });

  it("sells a LONG position on the candle the trend turns down after a rally", () => {
    const candles = candlesFromCloses(rallyThenCollapse);
    const closes = rallyThenCollapse;
    const fast = refEma(closes, params.emaFast);
    const slow = refEma(closes, params.emaSlow);
    const rsi = refRsi(closes, params.rsiPeriod);
    const turn = closes.findIndex((_, i) => i >= 21 && (fast[i] ?? 0) < (slow[i] ?? 0));
    expect(turn).toBeGreaterThan(uptrend.length - 1);
    // The sell comes from the trend, not from RSI.
    expect(rsi.slice(21).every((r) => r !== null && r < params.rsiExit)).toBe(true);

    const decisions = decisionsOver(candles, long);
    expect(decisions.slice(0, turn).every((d) => d.action === "NO_SIGNAL")).toBe(true);
    const sell = decisions[turn];
    expect(sell?.action).toBe("SELL");
    expect(sell?.reasons[1]).toMatch(/^emaFast [\d.]+ < emaSlow [\d.]+ \(-[\d.]+%, downtrend, fresh cross down\)$/);
    expect(decisions.slice(turn).every((d) => d.action === "SELL")).toBe(true);
  });

  it("sells a LONG position on RSI exhaustion while the trend is still up", () => {
    const decision = decide(toColumns(candlesFromCloses(straightUp)), long, params);
    expect(decision.action).toBe("SELL");
    expect(decision.indicators.rsi).toBe(100);
    expect(decision.reasons[1]).toMatch(/uptrend/);
    expect(decision.reasons[2]).toBe("rsi 100.0 ≥ exit 75 (momentum exhausted)");
  });

  it("marks a fresh cross up on the candle the fast EMA crosses above the slow one", () => {
    const closes = [...downtrend, ...walk((downtrend.at(-1) ?? 0) + 4, 20, [4, -1])];
    const fast = refEma(closes, params.emaFast);
    const slow = refEma(closes, params.emaSlow);
    const cross = closes.findIndex((_, i) => i > downtrend.length && (fast[i] ?? 0) > (slow[i] ?? 0));
    expect(cross).toBeGreaterThan(0);
    const decision = decide(toColumns(candlesFromCloses(closes.slice(0, cross + 1))), null, params);
    expect(decision.reasons[0]).toMatch(/uptrend, fresh cross up\)$/);
  });

  it("leaves a SHORT position alone", () => {
    const decision = decide(toColumns(candlesFromCloses(downtrend)), { side: "SHORT", entryPrice: 200 }, params);
    expect(decision.action).toBe("NO_SIGNAL");
    expect(decision.reasons[1]).toBe("long-only strategy: a SHORT position is not managed here");
  });

  it("computes the same indicators as the reference definitions on a random-ish series, candle after candle", () => {
    let seed = 42;
    const random = (): number => {
      seed = (seed * 1664525 + 1013904223) % 2 ** 32;
      return seed / 2 ** 32;
    };
    let close = 50;
    const candles: ExchangeCandle[] = Array.from({ length: 300 }, (_, i) => {
      const open = close;
      close = open * (1 + (random() - 0.49) * 0.04);
      const high = Math.max(open, close) * (1 + random() * 0.01);
      const low = Math.min(open, close) * (1 - random() * 0.01);
      return { openTime: START + i * FIFTEEN_MINUTES, open, high, low, close, volume: random() * 1000, isClosed: true };
    });
    const custom: StrategyParams = { ...params, emaFast: 5, emaSlow: 13, rsiPeriod: 7, atrPeriod: 10 };

    for (const p of [params, custom]) {
      const actions = new Set<string>();
      for (let n = 1; n <= candles.length; n++) {
        const prefix = candles.slice(0, n);
        const decision = decide(toColumns(prefix), null, p);
        actions.add(decision.action);
        expectIndicators(decision.indicators, reference(prefix, p));
      }
      expect(actions).toEqual(new Set(["NO_SIGNAL", "BUY"]));
    }
  });
});

describe("validateStrategyParams", () => {
  it("accepts the defaults", () => {
    expect(validateStrategyParams(params)).toEqual([]);
  });

  it("names the setting and its value for each problem", () => {
    expect(validateStrategyParams({ ...params, emaFast: 9, emaSlow: 5 })).toEqual(["STRATEGY_EMA_FAST (9) must be smaller than STRATEGY_EMA_SLOW (5)"]);
    expect(validateStrategyParams({ ...params, emaFast: 21 })).toEqual(["STRATEGY_EMA_FAST (21) must be smaller than STRATEGY_EMA_SLOW (21)"]);
    expect(validateStrategyParams({ ...params, rsiPeriod: 1 })).toEqual(["STRATEGY_RSI_PERIOD (1) must be a whole number of at least 2"]);
    expect(validateStrategyParams({ ...params, atrPeriod: 2.5 })).toEqual(["STRATEGY_ATR_PERIOD (2.5) must be a whole number of at least 1"]);
    expect(validateStrategyParams({ ...params, rsiEntryMin: 70, rsiEntryMax: 45 })).toEqual(["STRATEGY_RSI_ENTRY_MIN (70) must be smaller than STRATEGY_RSI_ENTRY_MAX (45)"]);
    expect(validateStrategyParams({ ...params, rsiEntryMax: 80 })).toEqual(["STRATEGY_RSI_ENTRY_MAX (80) must be smaller than STRATEGY_RSI_EXIT (75)"]);
    expect(validateStrategyParams({ ...params, rsiExit: 120 })).toEqual(["STRATEGY_RSI_EXIT (120) must be between 0 and 100"]);
    expect(validateStrategyParams({ ...params, takeProfitAtr: 0 })).toEqual(["STRATEGY_TAKE_PROFIT_ATR (0) must be a number greater than 0"]);
    expect(validateStrategyParams({ ...params, stopLossAtr: Number.NaN })).toEqual(["STRATEGY_STOP_LOSS_ATR (NaN) must be a number greater than 0"]);
  });

  it("lists every problem at once", () => {
    expect(validateStrategyParams({ ...params, emaFast: 0, rsiEntryMin: -5, rsiEntryMax: 90, stopLossAtr: -1 })).toEqual([
      "STRATEGY_EMA_FAST (0) must be a whole number of at least 1",
      "STRATEGY_RSI_ENTRY_MIN (-5) must be between 0 and 100",
      "STRATEGY_RSI_ENTRY_MAX (90) must be smaller than STRATEGY_RSI_EXIT (75)",
      "STRATEGY_STOP_LOSS_ATR (-1) must be a number greater than 0",
    ]);
  });
});
