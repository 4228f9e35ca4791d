import type { CandleColumns } from "../candles/columns";
import { ema, wilderAtr, wilderRsi } from "./indicators";
import type { Action, DecideFn, Decision, Indicators, PositionView, StrategyParams } from "./types";

/**
 * The trading strategy: long-only spot, over closed candles (oldest first).
 *
 * - Trend: fast EMA above slow EMA is an uptrend, below is a downtrend.
 * - Momentum: an entry needs RSI (Wilder) inside [rsiEntryMin, rsiEntryMax];
 *   a held position is sold once RSI reaches rsiExit.
 * - Volatility: ATR (Wilder) sets take-profit and stop-loss distances for a BUY.
 *
 * Only the signal is decided here; the position manager checks take-profit and
 * stop-loss against prices.
 */

/** Defaults for 15-minute crypto candles. */
export const DEFAULT_STRATEGY_PARAMS: StrategyParams = Object.freeze({
  emaFast: 9,
  emaSlow: 21,
  rsiPeriod: 14,
  rsiEntryMin: 45,
  rsiEntryMax: 70,
  rsiExit: 75,
  atrPeriod: 14,
  takeProfitAtr: 2.5,
  stopLossAtr: 1.5,
});

/** How many times minimumCandles the indicators are computed over (seed influence of EMA/Wilder smoothing fades with it). */
const LOOKBACK_FACTOR = 3;

/**
 * Closed candles needed before every indicator has a value: an EMA needs its
 * period, RSI one more close than its period (it works on changes), ATR its period.
 */
export function minimumCandles(params: StrategyParams): number {
  return Math.max(params.emaFast, params.emaSlow, params.rsiPeriod + 1, params.atrPeriod);
}

/** The most recent closed candles decide reads; older ones are ignored. */
export function lookbackCandles(params: StrategyParams): number {
  return LOOKBACK_FACTOR * minimumCandles(params);
}

const SETTING: Record<keyof StrategyParams, string> = {
  emaFast: "STRATEGY_EMA_FAST",
  emaSlow: "STRATEGY_EMA_SLOW",
  rsiPeriod: "STRATEGY_RSI_PERIOD",
  rsiEntryMin: "STRATEGY_RSI_ENTRY_MIN",
  rsiEntryMax: "STRATEGY_RSI_ENTRY_MAX",
  rsiExit: "STRATEGY_RSI_EXIT",
  atrPeriod: "STRATEGY_ATR_PERIOD",
  takeProfitAtr: "STRATEGY_TAKE_PROFIT_ATR",
  stopLossAtr: "STRATEGY_STOP_LOSS_ATR",
};

/** Problems with the parameters, one line each naming the setting; empty when they are usable. */
export function validateStrategyParams(params: StrategyParams): string[] {
  const problems: string[] = [];
  const setting = (key: keyof StrategyParams): string => `${SETTING[key]} (${params[key]})`;
  const period = (key: "emaFast" | "emaSlow" | "rsiPeriod" | "atrPeriod", min: number): boolean => {
    if (Number.isInteger(params[key]) && params[key] >= min) return true;
    problems.push(`${setting(key)} must be a whole number of at least ${min}`);
    return false;
  };
  const rsiLevel = (key: "rsiEntryMin" | "rsiEntryMax" | "rsiExit"): boolean => {
    if (Number.isFinite(params[key]) && params[key] >= 0 && params[key] <= 100) return true;
    problems.push(`${setting(key)} must be between 0 and 100`);
    return false;
  };
  const atrMultiple = (key: "takeProfitAtr" | "stopLossAtr"): void => {
    if (!(Number.isFinite(params[key]) && params[key] > 0)) problems.push(`${setting(key)} must be a number greater than 0`);
  };
  const smaller = (a: keyof StrategyParams, b: keyof StrategyParams): void => {
    if (!(params[a] < params[b])) problems.push(`${setting(a)} must be smaller than ${setting(b)}`);
  };

  const fastOk = period("emaFast", 1);
  const slowOk = period("emaSlow", 2);
  if (fastOk && slowOk) smaller("emaFast", "emaSlow");
  // RSI works on changes between closes: a period of 1 never produces a value.
  period("rsiPeriod", 2);
  const minOk = rsiLevel("rsiEntryMin");
  const maxOk = rsiLevel("rsiEntryMax");
  const exitOk = rsiLevel("rsiExit");
  if (minOk && maxOk) smaller("rsiEntryMin", "rsiEntryMax");
  // Otherwise an entry could be sold on the next candle as momentum exhaustion.
  if (maxOk && exitOk) smaller("rsiEntryMax", "rsiExit");
  period("atrPeriod", 1);
  atrMultiple("takeProfitAtr");
  atrMultiple("stopLossAtr");
  return problems;
}

interface Computed extends Indicators {
  /** emaFast − emaSlow one candle earlier; null when not ready then. */
  previousSpread: number | null;
  /** Every close in the window is the same. */
  flat: boolean;
}

/** Runs the indicators over the candles from `from` to the last one, seeded fresh at `from`. */
function computeIndicators(candles: CandleColumns, from: number, params: StrategyParams): Computed {
  const { high, low, close, length } = candles;
  const last = length - 1;
  // The EMAs one candle earlier, for a fresh cross: run again without the last candle, a few
  // dozen multiplications that keep ema() a plain function of its range.
  const fastBefore = ema(close, from, last, params.emaFast);
  const slowBefore = ema(close, from, last, params.emaSlow);
  const flat = isFlat(close, from, length);
  const rsiValue = wilderRsi(close, from, length, params.rsiPeriod);
  return {
    emaFast: ema(close, from, length, params.emaFast),
    emaSlow: ema(close, from, length, params.emaSlow),
    // With no change at all average gain and loss are both 0 and Wilder's RSI is 100 (as if
    // overbought), which would sell a held position on a market that does not move.
    rsi: rsiValue !== null && flat ? 50 : rsiValue,
    atr: wilderAtr(high, low, close, from, length, params.atrPeriod),
    previousSpread: fastBefore !== null && slowBefore !== null ? fastBefore - slowBefore : null,
    flat,
  };
}

/** Every value in values[from..to) is the same one (a NaN never is). */
function isFlat(values: Float64Array, from: number, to: number): boolean {
  const first = values[from];
  for (let i = from; i < to; i++) if (values[i] !== first) return false;
  return true;
}

/** A price-like value with 6 significant digits, trailing zeros dropped. */
function num(value: number): string {
  return String(Number(value.toPrecision(6)));
}

/** The last entry band's text: the same two settings for every coin, every tick (saves 2 of ~5 num() calls a decision). */
let lastBand = { min: Number.NaN, max: Number.NaN, text: "" };

function entryBand(min: number, max: number): string {
  if (min !== lastBand.min || max !== lastBand.max) lastBand = { min, max, text: `${num(min)}..${num(max)}` };
  return lastBand.text;
}

function percent(value: number): string {
  return `${value >= 0 ? "+" : ""}${value.toFixed(2)}%`;
}

function trendReason(fast: number, slow: number, previousSpread: number | null): string {
  const spread = percent(((fast - slow) / slow) * 100);
  if (fast > slow) {
    const fresh = previousSpread !== null && previousSpread <= 0 ? ", fresh cross up" : "";
    return `emaFast ${num(fast)} > emaSlow ${num(slow)} (${spread}, uptrend${fresh})`;
  }
  if (fast < slow) {
    const fresh = previousSpread !== null && previousSpread >= 0 ? ", fresh cross down" : "";
    return `emaFast ${num(fast)} < emaSlow ${num(slow)} (${spread}, downtrend${fresh})`;
  }
  return `emaFast ${num(fast)} = emaSlow ${num(slow)} (no trend)`;
}

function rsiText(rsi: number, flat: boolean, candles: number): string {
  return flat ? `rsi ${rsi.toFixed(1)} (no price change over ${candles} candles, neutral)` : `rsi ${rsi.toFixed(1)}`;
}

function atrReason(atr: number, price: number): string {
  return `atr ${num(atr)} (${(price > 0 ? (atr / price) * 100 : 0).toFixed(2)}% of price)`;
}

export const decide: DecideFn = (closedCandles, position, params) => {
  const needed = minimumCandles(params);
  const count = closedCandles.length;
  const from = Math.max(0, count - lookbackCandles(params));
  const computed = computeIndicators(closedCandles, from, params);
  const indicators: Indicators = { emaFast: computed.emaFast, emaSlow: computed.emaSlow, rsi: computed.rsi, atr: computed.atr };
  // No candles at all: price and time 0 mark "nothing seen yet".
  const price = count > 0 ? (closedCandles.close[count - 1] as number) : 0;
  const candleTime = count > 0 ? (closedCandles.openTime[count - 1] as number) : 0;
  const signal = (action: Action, reasons: string[], levels?: { takeProfit: number; stopLoss: number }): Decision => ({
    action,
    reasons,
    price,
    candleTime,
    indicators,
    takeProfit: levels?.takeProfit ?? null,
    stopLoss: levels?.stopLoss ?? null,
  });

  if (count < needed) return signal("NO_SIGNAL", [`warming up: ${count} of ${needed} candles`]);
  const { emaFast: fast, emaSlow: slow, rsi, atr } = computed;
  if (fast === null || slow === null || rsi === null || atr === null) return signal("NO_SIGNAL", [`indicators not ready after ${count} candles`]);
  if (![fast, slow, rsi, atr, price].every(Number.isFinite)) return signal("NO_SIGNAL", ["indicators are not finite numbers: the candles hold invalid prices"]);

  const trend = trendReason(fast, slow, computed.previousSpread);
  const rsiNow = rsiText(rsi, computed.flat, count - from);
  const volatility = atrReason(atr, price);

  if (position !== null) {
    const holding = holdingReason(position, price);
    if (position.side !== "LONG") return signal("NO_SIGNAL", [holding, "long-only strategy: a SHORT position is not managed here", trend, rsiNow, volatility]);
    const exhausted = rsi >= params.rsiExit;
    const momentum = exhausted ? `${rsiNow} ≥ exit ${num(params.rsiExit)} (momentum exhausted)` : `${rsiNow} < exit ${num(params.rsiExit)}`;
    return signal(fast < slow || exhausted ? "SELL" : "NO_SIGNAL", [holding, trend, momentum, volatility]);
  }

  const band = entryBand(params.rsiEntryMin, params.rsiEntryMax);
  const momentumOk = rsi >= params.rsiEntryMin && rsi <= params.rsiEntryMax;
  const momentum = momentumOk ? `${rsiNow} within entry band ${band}` : `${rsiNow} ${rsi < params.rsiEntryMin ? "below" : "above"} entry band ${band}`;
  if (!(fast > slow) || !momentumOk) return signal("NO_SIGNAL", [trend, momentum, volatility]);

  const takeProfit = price + params.takeProfitAtr * atr;
  const stopLoss = price - params.stopLossAtr * atr;
  if (!(atr > 0)) return signal("NO_SIGNAL", [trend, momentum, `${volatility}: no volatility to set take-profit and stop-loss from`]);
  if (!(stopLoss > 0)) return signal("NO_SIGNAL", [trend, momentum, `${volatility}: stop-loss ${num(stopLoss)} would be at or below 0`]);
  // The ATR multiples are settings, the same on every decision (the STARTUP event records them).
  const levels = `take-profit ${num(takeProfit)}, stop-loss ${num(stopLoss)}`;
  return signal("BUY", [trend, momentum, volatility, levels], { takeProfit, stopLoss });
};

function holdingReason(position: PositionView, price: number): string {
  const change = position.entryPrice > 0 ? ` (${percent(((price - position.entryPrice) / position.entryPrice) * 100)})` : "";
  return `holding ${position.side} from ${num(position.entryPrice)}, price ${num(price)}${change}`;
}
