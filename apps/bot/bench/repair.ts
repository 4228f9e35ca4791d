import { performance } from "node:perf_hooks";
import { TIMEFRAME_MS, alignToTimeframe } from "@candlekeep/core";
import { createServerTestDatabase } from "@candlekeep/db/testing";
import { parseBenchArgs, report, runMain, withGoal, withRatio, type Figure } from "../../../packages/db/bench/harness";
import { repairHistory } from "../src/history/repair";
import { backfillDays } from "../src/testing/backfill";
import { startTestBot } from "../src/testing/bot";
import { recordCandleRequests } from "../src/testing/candle-requests";
import { TIMEFRAMES } from "./setup";

/**
 * Repair cost: a history with k candles deleted at scattered places (runs of 1-3 candles) is
 * repaired by `backfill --days N` (the audit, then only the missing ranges fetched). The figure is
 * what the exchange answered with, against the goal "≤ 2k + one page per range" (a page: 1,000
 * candles) and as a ratio to 2k + ranges. The history is stored by the start-up load, as a bot
 * older than the audit left it, so the audit has not seen it yet.
 */

const PAGE = 1000;
const DAY = 86_400_000;
/** Open the deleted runs this many candles or more before the newest: outside the backfill bot's in-memory window (100). */
const OLDEST_KEPT = 150;

runMain(async () => {
  const options = parseBenchArgs(process.argv.slice(2));
  const coins = options.smoke ? 3 : 50;
  const history = options.smoke ? 400 : 3000;
  const runs = options.smoke ? 6 : 200;
  // Within every series' stored history: 15m reaches history × 15 minutes back.
  const days = Math.floor((history * TIMEFRAME_MS["15m"]) / DAY) - 1;
  const testDb = await createServerTestDatabase("candlekeep_bench");
  try {
    const settings = { DATABASE_URL: testDb.url, CANDLEKEEP_DATA_DIR: testDb.dataDir, EXCHANGE: "sim", SYMBOLS: `top:${coins}`, TIMEFRAMES, LOG_LEVEL: "warn" };
    const loader = await startTestBot({ ...settings, HISTORY_CANDLES: String(history) });
    await loader.stop();

    // `backfill --days N`: a bot of its own, holding the last 100 candles of each series.
    const bot = await startTestBot(settings, { backfill: false });
    try {
      const rt = bot.runtime;
      const db = await bot.database.get();
      let deleted = 0;
      for (let run = 0; run < runs; run += 1) {
        const symbol = rt.symbols[run % rt.symbols.length] ?? "";
        const timeframe = rt.timeframes[Math.floor(run / rt.symbols.length) % rt.timeframes.length] ?? "15m";
        const step = TIMEFRAME_MS[timeframe];
        const from = alignToTimeframe(rt.market.now(), timeframe) - (OLDEST_KEPT + ((run * 7919) % (history - OLDEST_KEPT - 10))) * step;
        const result = await db.sql.query(
          "DELETE FROM candles WHERE exchange = 'sim' AND symbol = $1 AND timeframe = $2 AND open_time BETWEEN to_timestamp($3::float8 / 1000) AND to_timestamp($4::float8 / 1000)",
          [symbol, timeframe, from, from + (run % 3) * step],
        );
        deleted += result.rowCount ?? 0;
      }

      const recorded = recordCandleRequests(rt.market);
      rt.market = recorded.market;
      const started = performance.now();
      const repaired = await repairHistory(rt, backfillDays(rt, days));
      const ms = performance.now() - started;
      if (repaired.failed.length > 0 || repaired.stopped || repaired.gapsLeft > 0) throw new Error(`the repair left gaps: ${JSON.stringify(repaired)}`);
      const ranges = repaired.rangesFound.total;
      const fetched = recorded.requests.reduce((sum, request) => sum + request.answered, 0);
      const bound = 2 * deleted + ranges * PAGE;
      const figures: Figure[] = [
        withGoal(
          withRatio({ id: "repair.fetched", label: `candles fetched to repair k = ${deleted} candles deleted in ${ranges} ranges`, value: fetched, unit: "rows" }, { id: "bound", label: "", value: 2 * deleted + ranges, unit: "rows" }, "2k + ranges"),
          "≤ 2k + one page per range",
          fetched <= bound,
        ),
        { id: "repair.ms", label: `  the repair's time: audit, fetch, write, audit again (${coins} coins × 4 timeframes, ${history} candles per series)`, value: ms, unit: "ms" },
      ];
      report(options, {
        name: "repair",
        title: "History repair on the simulated exchange (apps/bot)",
        measuredAt: new Date().toISOString(),
        smoke: options.smoke,
        repetitions: 1,
        settings: { coins, timeframes: 4, historyCandles: history, days, deleted, ranges, requests: recorded.requests.length, stored: repaired.candlesStored, auditScannedCandles: repaired.audit?.scannedCandles ?? 0, firstAuditMs: repaired.audit?.ms ?? 0 },
        figures,
      });
    } finally {
      await bot.stop();
    }
  } finally {
    await testDb.drop();
  }
});
