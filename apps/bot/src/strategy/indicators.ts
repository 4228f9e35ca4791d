/**
 * EMA, Wilder RSI and Wilder ATR over one range of candle columns, values[from..to)
 * oldest first, seeded fresh at `from`; the result is the indicator after values[to − 1],
 * or null while it is not ready yet.
 *
 * They repeat trading-signals 8.3.0 operation for operation (same seeds, same order of
 * floating-point operations, same readiness), so results are bit-identical to the library
 * the strategy used before: its per-value class machinery was the largest cost of a tick
 * at hundreds of coins, while these are plain loops that allocate nothing.
 *
 * Expects 0 ≤ from ≤ to ≤ length of the columns and whole-number periods of at least 1
 * (2 for RSI), as validateStrategyParams ensures. Reads stay inside [from, to), so the
 * `as number` on typed-array reads only tells noUncheckedIndexedAccess what holds.
 */

/** Exponential moving average, k = 2 / (period + 1); ready after `period` values. */
export function ema(values: Float64Array, from: number, to: number, period: number): number | null {
  if (to - from < period) return null;
  const k = 2 / (period + 1);
  const first = values[from] as number;
  // The library seeds with first·k + first·(1 − k), not with first itself: the two can differ in the last bit.
  let result = first * k + first * (1 - k);
  for (let i = from + 1; i < to; i++) result = (values[i] as number) * k + result * (1 - k);
  return result;
}

/** One step of Wilder's smoothing, written as the library computes it (not avg·(n−1)/n + x/n). */
function wilderStep(average: number, value: number, factor: number): number {
  return (value - average) * factor + average;
}

/**
 * Wilder's RSI: average gain and loss over `period` changes, seeded with their simple
 * averages; ready after period + 1 values. 100 when there is no loss at all, flat
 * prices included (the strategy decides what that means).
 */
export function wilderRsi(values: Float64Array, from: number, to: number, period: number): number | null {
  if (to - from < period + 1) return null;
  const seedEnd = from + period;
  // Seeds are sums from 0 in order, divided by the period: the library's simple average.
  let gainSum = 0;
  let lossSum = 0;
  for (let i = from + 1; i <= seedEnd; i++) {
    const previous = values[i - 1] as number;
    const current = values[i] as number;
    const up = current > previous;
    gainSum += up ? current - previous : 0;
    lossSum += up ? 0 : previous - current;
  }
  let avgGain = gainSum / period;
  let avgLoss = lossSum / period;
  const factor = 1 / period;
  for (let i = seedEnd + 1; i < to; i++) {
    const previous = values[i - 1] as number;
    const current = values[i] as number;
    const up = current > previous;
    avgGain = wilderStep(avgGain, up ? current - previous : 0, factor);
    avgLoss = wilderStep(avgLoss, up ? 0 : previous - current, factor);
  }
  if (avgLoss === 0) return 100;
  return 100 - 100 / (avgGain / avgLoss + 1);
}

/** The largest of high − low and the distances of high and low from the previous close. */
function trueRange(high: number, low: number, previousClose: number): number {
  return Math.max(high - low, Math.abs(high - previousClose), Math.abs(low - previousClose));
}

/**
 * Wilder's ATR: true ranges smoothed like RSI's averages; ready after `period` candles.
 * The first candle of the range has no previous close, so its true range is high − low.
 */
export function wilderAtr(high: Float64Array, low: Float64Array, close: Float64Array, from: number, to: number, period: number): number | null {
  if (to - from < period) return null;
  const seedEnd = from + period;
  // Summed from 0 as the library's simple average is: 0 + (−0) is +0, a difference `toBe` sees.
  let sum = 0;
  sum += (high[from] as number) - (low[from] as number);
  for (let i = from + 1; i < seedEnd; i++) sum += trueRange(high[i] as number, low[i] as number, close[i - 1] as number);
  let average = sum / period;
  const factor = 1 / period;
  for (let i = seedEnd; i < to; i++) average = wilderStep(average, trueRange(high[i] as number, low[i] as number, close[i - 1] as number), factor);
  return average;
}
