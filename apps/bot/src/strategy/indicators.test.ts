import { seededRandom } from "@candlekeep/db/testing";
import { ATR, EMA, RSI } from "trading-signals";
import { ema, wilderAtr, wilderRsi } from "./indicators";

// trading-signals 8.3.0 is the oracle: the strategy used it before these loops replaced it,
// and decisions must not move by a single bit.

interface Series {
  name: string;
  high: Float64Array;
  low: Float64Array;
  close: Float64Array;
}


interface Shape {
  /** Chance per candle that it opens away from the previous close. */
  gap: number;
  /** Chance per candle that a stretch of unchanged prices (high = low = close) starts. */
  flat: number;
  /** Chance per candle of a move to 5× or 1/5 of the price. */
  jump: number;
}

/** A random walk of `count` candles around `scale`, with gaps, flat stretches and jumps as `shape` says. */
function randomSeries(name: string, seed: number, scale: number, count: number, shape: Shape): Series {
  const random = seededRandom(seed);
  const high: number[] = [];
  const low: number[] = [];
  const close: number[] = [];
  let price = scale;
  let flatLeft = 0;
  for (let i = 0; i < count; i++) {
    if (flatLeft === 0 && random() < shape.flat) flatLeft = 3 + Math.floor(random() * 25);
    if (flatLeft > 0) {
      flatLeft--;
      high.push(price);
      low.push(price);
      close.push(price);
      continue;
    }
    let open = price;
    if (random() < shape.gap) open *= 1 + (random() - 0.5) * 0.2;
    let next = open * (1 + (random() - 0.5) * 0.06);
    if (random() < shape.jump) next *= random() < 0.5 ? 5 : 0.2;
    high.push(Math.max(open, next) * (1 + random() * 0.01));
    low.push(Math.min(open, next) * (1 - random() * 0.01));
    close.push(next);
    price = next;
  }
  return { name, high: Float64Array.from(high), low: Float64Array.from(low), close: Float64Array.from(close) };
}

/** A series from closes alone, each candle spanning its open (the previous close) and close. */
function fromCloses(name: string, closes: readonly number[]): Series {
  const close = Float64Array.from(closes);
  const high = close.map((c, i) => Math.max(c, close[i - 1] ?? c));
  const low = close.map((c, i) => Math.min(c, close[i - 1] ?? c));
  return { name, high, low, close };
}

const CALM: Shape = { gap: 0, flat: 0, jump: 0 };
const ROUGH: Shape = { gap: 0.15, flat: 0.04, jump: 0.03 };
const STALLING: Shape = { gap: 0.05, flat: 0.15, jump: 0 };

const SERIES: Series[] = [
  ...[1e-8, 0.003, 1, 57.3, 1e6].flatMap((scale, s) => [
    randomSeries(`calm walk at ${scale}`, 11 + s, scale, 240, CALM),
    randomSeries(`rough walk at ${scale}`, 101 + s, scale, 240, ROUGH),
    randomSeries(`stalling walk at ${scale}`, 1001 + s, scale, 240, STALLING),
    randomSeries(`another rough walk at ${scale}`, 7919 + s, scale, 240, ROUGH),
  ]),
  fromCloses("flat throughout", Array.from({ length: 80 }, () => 42.5)),
  fromCloses("straight up (no losses)", Array.from({ length: 80 }, (_, i) => 1 + i * 0.1)),
  fromCloses("straight down (no gains)", Array.from({ length: 80 }, (_, i) => 1e6 - i * 137)),
  fromCloses("flat, then moving", [...Array.from({ length: 30 }, () => 0.1), ...Array.from({ length: 50 }, (_, i) => 0.1 + Math.sin(i) * 0.01)]),
  fromCloses("a NaN close in the middle", Array.from({ length: 80 }, (_, i) => (i === 40 ? Number.NaN : 100 + Math.cos(i) * 3))),
];

/**
 * Window starts: the series start and later ones, so seeding mid-series is checked too.
 * From each, the library is fed one value at a time and compared after every one.
 */
const STARTS = [0, 1, 17, 50];

interface Difference {
  from: number;
  to: number;
  ours: number | null;
  library: number | null;
}

/** Records a window where the two results differ; Object.is holds NaN equal to NaN and tells +0 from −0. */
function note(differences: Difference[], from: number, to: number, ours: number | null, library: number | null): void {
  if (!Object.is(ours, library)) differences.push({ from, to, ours, library });
}

describe.each(SERIES)("indicators on $name", ({ high, low, close }) => {
  const length = close.length;

  it.each([1, 2, 3, 9, 21, 50])("EMA(%i) equals trading-signals bit for bit at every window end", (period) => {
    const differences: Difference[] = [];
    for (const from of STARTS) {
      const library = new EMA(period);
      for (let to = from; to <= length; to++) {
        if (to > from) library.add(close[to - 1] as number);
        note(differences, from, to, ema(close, from, to, period), library.getResult());
      }
    }
    expect(differences).toEqual([]);
  });

  it.each([2, 3, 7, 14, 30])("RSI(%i) equals trading-signals bit for bit at every window end", (period) => {
    const differences: Difference[] = [];
    for (const from of STARTS) {
      const library = new RSI(period);
      for (let to = from; to <= length; to++) {
        if (to > from) library.add(close[to - 1] as number);
        note(differences, from, to, wilderRsi(close, from, to, period), library.getResult());
      }
    }
    expect(differences).toEqual([]);
  });

  it.each([1, 2, 5, 14, 30])("ATR(%i) equals trading-signals bit for bit at every window end", (period) => {
    const differences: Difference[] = [];
    for (const from of STARTS) {
      const library = new ATR(period);
      for (let to = from; to <= length; to++) {
        if (to > from) library.add({ high: high[to - 1] as number, low: low[to - 1] as number, close: close[to - 1] as number });
        note(differences, from, to, wilderAtr(high, low, close, from, to, period), library.getResult());
      }
    }
    expect(differences).toEqual([]);
  });
});

describe("indicators", () => {
  it("read only values[from..to), whatever lies around the range", () => {
    const inner = fromCloses("inner", Array.from({ length: 40 }, (_, i) => 10 + Math.sin(i)));
    const pad = (values: Float64Array): Float64Array => Float64Array.from([Number.NaN, Number.NaN, ...values, Number.NaN]);
    const padded = { high: pad(inner.high), low: pad(inner.low), close: pad(inner.close) };
    expect(ema(padded.close, 2, 42, 9)).toBe(ema(inner.close, 0, 40, 9));
    expect(wilderRsi(padded.close, 2, 42, 14)).toBe(wilderRsi(inner.close, 0, 40, 14));
    expect(wilderAtr(padded.high, padded.low, padded.close, 2, 42, 14)).toBe(wilderAtr(inner.high, inner.low, inner.close, 0, 40, 14));
    expect(ema(padded.close, 2, 42, 9)).not.toBeNull();
  });

  it("give RSI 100 when prices never fall, flat prices included, as the library does", () => {
    expect(wilderRsi(fromCloses("flat", [5, 5, 5, 5]).close, 0, 4, 3)).toBe(100);
    expect(wilderRsi(fromCloses("up", [5, 6, 7, 8]).close, 0, 4, 3)).toBe(100);
  });
});
