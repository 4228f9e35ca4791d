import { seriesFreshness, seriesState } from "./freshness";

const NOW = Date.UTC(2026, 10, 25, 12, 7);
const QUARTER = 15 * 60_000;
const forming = Date.UTC(2026, 10, 25, 12, 0);
const series = (lastOpenTime: number | null) => ({ timeframe: "15m" as const, lastOpenTime });

describe("seriesFreshness", () => {
  it("calls a series fresh up to one candle behind, late until staleAfter, stale beyond, missing without candles", () => {
    expect(seriesFreshness(series(forming), 2, NOW)).toBe("fresh");
    expect(seriesFreshness(series(forming - QUARTER), 2, NOW)).toBe("fresh");
    expect(seriesFreshness(series(forming - 2 * QUARTER), 2, NOW)).toBe("late");
    expect(seriesFreshness(series(forming - 3 * QUARTER), 2, NOW)).toBe("stale");
    expect(seriesFreshness(series(null), 2, NOW)).toBe("missing");
  });

  it("agrees with verify's rule: fresh or late exactly when verify passes the series", () => {
    for (const staleAfter of [0, 1, 2, 5]) {
      for (let behind = -1; behind <= 8; behind += 1) {
        const s = series(forming - behind * QUARTER);
        const passes = seriesState(s, staleAfter, NOW) === "fresh";
        expect(["fresh", "late"].includes(seriesFreshness(s, staleAfter, NOW))).toBe(passes);
      }
    }
  });
});
