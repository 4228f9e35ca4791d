/**
 * Ranges of missing candles as arithmetic on open times (epoch ms) of one
 * series: what lies between two stored candles, what of a range is left once
 * stored candles or known ranges are taken out. No database here.
 */

export interface MissingRange {
  /** Open time of the first missing candle. */
  fromTime: number;
  /** Open time of the last missing candle (inclusive). */
  toTime: number;
  missing: number;
}

/** The candles missing between two stored ones (open times `before` < `after`), or undefined when they are neighbours. */
export function rangeBetween(before: number, after: number, stepMs: number): MissingRange | undefined {
  if (after - before <= stepMs) return undefined;
  return { fromTime: before + stepMs, toTime: after - stepMs, missing: (after - before) / stepMs - 1 };
}

/** A range from `fromTime` to `toTime` (both candle open times, inclusive). */
export function rangeOf(fromTime: number, toTime: number, stepMs: number): MissingRange {
  return { fromTime, toTime, missing: (toTime - fromTime) / stepMs + 1 };
}

/** What of `range` is missing once the candles at `stored` (ascending open times) are there: its runs without them. */
export function withoutStored(range: MissingRange, stored: readonly number[], stepMs: number): MissingRange[] {
  const runs: MissingRange[] = [];
  let next = range.fromTime;
  for (const time of stored) {
    if (time < next || time > range.toTime) continue;
    if (time > next) runs.push(rangeOf(next, time - stepMs, stepMs));
    next = time + stepMs;
  }
  if (next <= range.toTime) runs.push(rangeOf(next, range.toTime, stepMs));
  return runs;
}

/** What of `range` no range of `known` covers (`known` in any order). */
export function withoutKnown(range: MissingRange, known: readonly MissingRange[], stepMs: number): MissingRange[] {
  const overlapping = known.filter((k) => k.toTime >= range.fromTime && k.fromTime <= range.toTime).sort((a, b) => a.fromTime - b.fromTime);
  const runs: MissingRange[] = [];
  let next = range.fromTime;
  for (const k of overlapping) {
    if (k.fromTime > next) runs.push(rangeOf(next, Math.min(k.fromTime - stepMs, range.toTime), stepMs));
    next = Math.max(next, k.toTime + stepMs);
  }
  if (next <= range.toTime) runs.push(rangeOf(next, range.toTime, stepMs));
  return runs;
}
