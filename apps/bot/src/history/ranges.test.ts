import { TIMEFRAME_MS, alignToTimeframe } from "@candlekeep/core";
import { candlesIn, repairRanges, resumeRanges, subtractSpans, type CoveredSeries, type MissingSpan } from "./ranges";

const STEP = TIMEFRAME_MS["15m"];
/** A fixed "now" inside a 15m candle. */
const NOW = Date.UTC(2026, 11, 5, 10, 7, 30);
const CURRENT = alignToTimeframe(NOW, "15m");
/** Open time of the 15m candle `n` steps before the forming one. */
const back = (n: number) => CURRENT - n * STEP;

const gap = (from: number, to: number, unavailable = false, symbol = "BTC/USDT"): MissingSpan => ({ symbol, timeframe: "15m", from, to, unavailable });

describe("subtractSpans", () => {
  const span = { from: back(20), to: back(10) };

  it("keeps what no cut covers: before, between and after the cuts", () => {
    expect(subtractSpans(span, [{ from: back(18), to: back(17) }, { from: back(12), to: back(12) }], "15m")).toEqual([
      { from: back(20), to: back(19) },
      { from: back(16), to: back(13) },
      { from: back(11), to: back(10) },
    ]);
  });

  it("leaves nothing of a span a cut covers, and the whole span when cuts miss it", () => {
    expect(subtractSpans(span, [{ from: back(30), to: back(5) }], "15m")).toEqual([]);
    expect(subtractSpans(span, [{ from: back(40), to: back(21) }, { from: back(9), to: back(1) }], "15m")).toEqual([span]);
    expect(subtractSpans({ from: back(5), to: back(6) }, [], "15m")).toEqual([]);
  });

  it("counts the candles of a span", () => {
    expect(candlesIn(span, "15m")).toBe(11);
    expect(candlesIn({ from: back(5), to: back(6) }, "15m")).toBe(0);
  });
});

describe("repairRanges", () => {
  const scope = { symbols: ["BTC/USDT", "ETH/USDT"], timeframes: ["15m"] as const, now: NOW };
  const btc = { symbol: "BTC/USDT", timeframe: "15m" as const, firstOpenTime: back(100), auditedUntil: back(10) };

  it("fetches before the first stored candle back to the start, each gap the exchange has, and the closed candles after the newest stored", () => {
    const ranges = repairRanges({
      ...scope,
      symbols: ["BTC/USDT"],
      audited: [btc],
      gaps: [gap(back(80), back(78)), gap(back(60), back(50), true), gap(back(130), back(121), true)],
      startFor: () => back(140) - 1,
      after: true,
    });
    expect(ranges).toEqual([
      // The start rounds up to the grid; what the exchange is known not to have is left out.
      { symbol: "BTC/USDT", timeframe: "15m", kind: "before", from: back(140), to: back(131) },
      { symbol: "BTC/USDT", timeframe: "15m", kind: "before", from: back(120), to: back(101) },
      { symbol: "BTC/USDT", timeframe: "15m", kind: "gap", from: back(80), to: back(78) },
      // The forming candle is the ticks' to fetch.
      { symbol: "BTC/USDT", timeframe: "15m", kind: "after", from: back(9), to: back(1) },
    ]);
  });

  it("fetches nothing before the oldest candle the retention keeps: ranges reaching past it are cut there, those wholly before it left out", () => {
    const ranges = repairRanges({
      ...scope,
      symbols: ["BTC/USDT"],
      audited: [btc],
      gaps: [gap(back(95), back(93)), gap(back(80), back(70))],
      startFor: () => back(140),
      after: true,
      firstKept: () => back(75),
    });
    expect(ranges).toEqual([
      { symbol: "BTC/USDT", timeframe: "15m", kind: "gap", from: back(75), to: back(70) },
      { symbol: "BTC/USDT", timeframe: "15m", kind: "after", from: back(9), to: back(1) },
    ]);
    // A timeframe the retention keeps whole is planned as before.
    expect(repairRanges({ ...scope, symbols: ["BTC/USDT"], audited: [btc], gaps: [gap(back(95), back(93))], after: false, firstKept: () => undefined })).toEqual([
      { symbol: "BTC/USDT", timeframe: "15m", kind: "gap", from: back(95), to: back(93) },
    ]);
  });

  it("fetches an empty series whole with a start, and leaves it alone without one", () => {
    const withStart = repairRanges({ ...scope, audited: [btc], gaps: [], startFor: () => back(50), after: true });
    expect(withStart.filter((range) => range.symbol === "ETH/USDT")).toEqual([{ symbol: "ETH/USDT", timeframe: "15m", kind: "after", from: back(50), to: back(1) }]);
    expect(repairRanges({ ...scope, audited: [btc], gaps: [], after: true }).filter((range) => range.symbol === "ETH/USDT")).toEqual([]);
  });

  it("fetches only the gaps when neither a start nor the newest candles are asked for (the running bot's audit)", () => {
    const eth = { ...btc, symbol: "ETH/USDT" };
    const ranges = repairRanges({ ...scope, audited: [btc, eth], gaps: [gap(back(30), back(30)), gap(back(40), back(35), true), gap(back(20), back(19), false, "ETH/USDT")], after: false });
    expect(ranges).toEqual([
      { symbol: "BTC/USDT", timeframe: "15m", kind: "gap", from: back(30), to: back(30) },
      { symbol: "ETH/USDT", timeframe: "15m", kind: "gap", from: back(20), to: back(19) },
    ]);
  });

  it("asks for nothing when everything is stored up to the last closed candle", () => {
    expect(repairRanges({ ...scope, symbols: ["BTC/USDT"], audited: [{ ...btc, auditedUntil: back(1) }], gaps: [], startFor: () => back(100), after: true })).toEqual([]);
  });
});

describe("resumeRanges", () => {
  const HISTORY = 100;
  const covered = (fields: Partial<CoveredSeries>): CoveredSeries => ({ symbol: "BTC/USDT", timeframe: "15m", firstOpenTime: back(500), lastOpenTime: back(3), recentGaps: 0, ...fields });
  const plan = (series: CoveredSeries, unavailable: MissingSpan[] = []) => resumeRanges({ coverage: [series], unavailable, historyCandles: HISTORY, now: NOW });
  const range = (kind: string, from: number, to: number) => ({ symbol: "BTC/USDT", timeframe: "15m", kind, from, to });

  it("gives an empty series its last HISTORY_CANDLES, the forming one included", () => {
    const { ranges, behind } = plan(covered({ firstOpenTime: null, lastOpenTime: null }));
    expect(ranges).toEqual([range("after", back(HISTORY - 1), CURRENT)]);
    expect(candlesIn(ranges[0] ?? { from: 0, to: -1 }, "15m")).toBe(HISTORY);
    expect(behind).toBe(0);
  });

  it("continues a series from its newest stored candle (it may have been forming)", () => {
    expect(plan(covered({})).ranges).toEqual([range("after", back(3), CURRENT)]);
    // Missing exactly the window before it: still one range from the newest stored candle.
    expect(plan(covered({ lastOpenTime: back(HISTORY) })).ranges).toEqual([range("after", back(HISTORY), CURRENT)]);
  });

  it("loads only the window of a series missing more, and counts it as behind (the older part is the background's)", () => {
    const { ranges, behind } = plan(covered({ lastOpenTime: back(7 * 96) }));
    expect(ranges).toEqual([range("after", back(HISTORY - 1), CURRENT)]);
    expect(behind).toBe(1);
  });

  it("completes the window before a short history's first candle, less what the exchange does not have", () => {
    expect(plan(covered({ firstOpenTime: back(40) })).ranges).toEqual([range("after", back(3), CURRENT), range("before", back(HISTORY - 1), back(41))]);
    expect(plan(covered({ firstOpenTime: back(40) }), [gap(back(HISTORY + 20), back(41), true)]).ranges).toEqual([range("after", back(3), CURRENT)]);
  });

  it("fetches the stored part of the window again when candles are missing in it, unless the exchange is known not to have them", () => {
    expect(plan(covered({ recentGaps: 2 })).ranges).toEqual([range("after", back(3), CURRENT), range("gap", back(HISTORY - 1), back(4))]);
    expect(plan(covered({ recentGaps: 2 }), [gap(back(50), back(49), true)]).ranges).toEqual([range("after", back(3), CURRENT)]);
  });
});
