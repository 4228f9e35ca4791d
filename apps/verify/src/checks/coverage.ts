import { candlesBehind, seriesState, type Timeframe } from "@candlekeep/core";
import { candleCoverage, type SeriesCoverage } from "@candlekeep/db";
import { listSome, plural, type Check } from "../check";

// The rule lives in packages/core so the dashboard colours series by the same thresholds.
export { candlesBehind, seriesState, type SeriesState } from "@candlekeep/core";

/** "A/USDT (all timeframes); B/USDT 1h, 4h": one entry per coin, in the order given. */
function byCoin(series: readonly SeriesCoverage[], timeframes: readonly Timeframe[]): string[] {
  const coins = new Map<string, Timeframe[]>();
  for (const s of series) coins.set(s.symbol, [...(coins.get(s.symbol) ?? []), s.timeframe]);
  return [...coins].map(([symbol, tfs]) => (tfs.length === timeframes.length && timeframes.length > 1 ? `${symbol} (all timeframes)` : `${symbol} ${tfs.join(", ")}`));
}

const iso = (ms: number) => new Date(ms).toISOString().replace(/:\d\d\.\d{3}Z$/, "Z");

/**
 * Check 5: every tracked coin × timeframe has candles, the newest is fresh, and
 * the recent window has no holes. One grouped query for all series.
 */
export const coverageCheck: Check = async ({ readDb, config, nowMs, trackedCoins }) => {
  const tracked = await trackedCoins();
  const { timeframes, staleAfterPeriods: staleAfter, gapWindowCandles } = config;
  if (tracked.symbols.length === 0) {
    return { status: "fail", summary: `no coins to check: ${tracked.source}. Pass --symbols or set SYMBOLS to the bot's coins.` };
  }
  const coverage = await candleCoverage(readDb, { exchange: config.exchange, symbols: tracked.symbols, timeframes, windowCandles: gapWindowCandles, nowMs });
  const states = coverage.map((s) => ({ ...s, state: seriesState(s, staleAfter, nowMs) }));
  const empty = states.filter((s) => s.state === "empty");
  const stale = states.filter((s) => s.state === "stale");
  const gappy = states.filter((s) => s.state !== "empty" && s.recentGaps > 0);

  const scope = `${plural(tracked.symbols.length, "coin")} × ${plural(timeframes.length, "timeframe")} on ${config.exchange}`;
  const details = [`coins: ${tracked.source}`];
  if (empty.length > 0) details.push(`no candles (${plural(empty.length, "series", "series")}): ${listSome(byCoin(empty, timeframes), 15, "; ")}`);
  if (stale.length > 0) {
    const entries = stale.map((s) => `${s.symbol} ${s.timeframe} (last ${iso(s.lastOpenTime ?? 0)}, ${candlesBehind(s.lastOpenTime ?? 0, s.timeframe, nowMs)} behind)`);
    details.push(`stale, more than ${plural(staleAfter, "candle")} behind (${plural(stale.length, "series", "series")}): ${listSome(entries, 10, "; ")}`);
  }
  if (gappy.length > 0) {
    details.push(`gaps in the last ${gapWindowCandles} candles (${plural(gappy.length, "series", "series")}): ${listSome(gappy.map((s) => `${s.symbol} ${s.timeframe} (${s.recentGaps} missing)`), 10, "; ")}`);
  }
  const data = {
    exchange: config.exchange,
    coins: tracked.symbols.length,
    source: tracked.source,
    timeframes,
    staleAfterPeriods: staleAfter,
    gapWindowCandles,
    series: states.map((s) => ({ symbol: s.symbol, timeframe: s.timeframe, state: s.state, firstOpenTime: s.firstOpenTime, lastOpenTime: s.lastOpenTime, recentGaps: s.recentGaps })),
  };

  const bad = [empty.length > 0 ? `${empty.length} with no candles` : "", stale.length > 0 ? `${stale.length} stale` : ""].filter(Boolean);
  if (bad.length > 0) {
    const first = empty.length > 0 ? `no candles: ${listSome(byCoin(empty, timeframes), 3, "; ")}` : `stale: ${listSome(byCoin(stale, timeframes), 3, "; ")}`;
    return { status: "fail", summary: `${scope}: ${bad.join(", ")} of ${states.length} series — ${first}`, details, data };
  }
  if (gappy.length > 0) return { status: "warn", summary: `${scope}: all fresh; ${gappy.length} of ${states.length} series have gaps in the last ${gapWindowCandles} candles`, details, data };
  return { status: "pass", summary: `${scope}: all ${states.length} series fresh (≤ ${plural(staleAfter, "candle")} behind), no gaps in the last ${gapWindowCandles} candles`, details, data };
};
