import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { TIMEFRAMES, silentLogger } from "@candlekeep/core";
import { saveCandles } from "@candlekeep/db";
import {
  median,
  parseBenchArgs,
  percentile,
  report,
  runMain,
  timeOnce,
  timingFigure,
  withGoal,
  withRatio,
  type Figure,
} from "../../../packages/db/bench/harness";
import type { CheckName } from "../src/config";
import { runVerify } from "../src/run";
import { configFor, createMigratedDatabase, fillLikeTheBot, freshCandles, withDatabase } from "../src/test-helpers";

/**
 * verify against a database a bot has filled: 500 coins × 4 timeframes with
 * 300 candles of history each, decision traces, a position and a balance
 * snapshot. runVerify in this process (the checks' own cost) twice: right after
 * the bulk load, before PostgreSQL has statistics for the new rows (what the
 * first verify after a deploy and backfill meets, autovacuum held off so the
 * state cannot change mid-run), and after ANALYZE (a settled database). Then
 * the built CLI as an operator runs it (process start included). Last, with
 * four times the history (older candles added, ANALYZE again): a bot's history
 * only grows, and verify's time should not grow with it.
 */

const GOAL_MS = 1000;
/** The long-history run holds this many times the candles per series. */
const HISTORY_FACTOR = 4;
/** Coins per saveCandles call while adding the older history (bounds the bench's memory). */
const FILL_COINS = 50;
const CLI = path.resolve(__dirname, "../dist/main.js");

function runCli(env: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    execFile(process.execPath, [CLI], { env: { PATH: process.env.PATH ?? "", ...env } }, (error, stdout, stderr) => {
      // Exit 1 means a check failed: the data set is wrong, so the time means nothing.
      if (error) reject(new Error(`verify CLI failed: ${error.message}\n${stdout}${stderr}`));
      else resolve(performance.now() - started);
    });
  });
}

runMain(async () => {
  const options = parseBenchArgs(process.argv.slice(2));
  const coins = options.smoke ? 5 : 500;
  const history = options.smoke ? 20 : 300;
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: build verify first (pnpm bench builds it)`);
  const symbols = Array.from({ length: coins }, (_, i) => `C${String(i).padStart(4, "0")}/USDT`);
  const timeframes = [...TIMEFRAMES];
  const nowMs = Date.now();
  const filled = performance.now();
  const testDb = await createMigratedDatabase("server", async (db) => {
    // Held off until the run chooses when statistics appear (ANALYZE below); the database is dropped afterwards.
    await db.sql.exec("ALTER TABLE candles SET (autovacuum_enabled = false)");
    const saved = await saveCandles(db, freshCandles({ symbols, timeframes, nowMs, count: history }), nowMs);
    if (saved.rejected.length > 0) throw new Error(`bench candles rejected: ${saved.rejected[0]?.reason}`);
    await fillLikeTheBot(db, { symbols, timeframes, nowMs });
  });
  const fillMs = performance.now() - filled;
  try {
    // top:N, as a bot tracking the most traded coins is configured: verify finds them from the stored candles.
    const env = { EXCHANGE: "sim", SYMBOLS: `top:${coins}`, TIMEFRAMES: timeframes.join(",") };
    const config = configFor(testDb, env);
    const measure = async () => {
      const checkMs = new Map<CheckName, number[]>();
      const total: number[] = [];
      for (let run = 0; run < options.warmup + options.repeat; run += 1) {
        let result: Awaited<ReturnType<typeof runVerify>> | undefined;
        const ms = await timeOnce(async () => {
          result = await runVerify(config, { logger: silentLogger });
        });
        // The storage check warns about the autovacuum held off above (and on a server running without it): the other checks must pass.
        const failing = result?.checks.filter((c) => c.status !== "pass" && c.name !== "storage");
        if (!result || failing?.length !== 0) throw new Error(`verify did not pass: ${JSON.stringify(failing)}`);
        if (run < options.warmup) continue;
        total.push(ms);
        for (const check of result.checks) checkMs.set(check.name, [...(checkMs.get(check.name) ?? []), check.durationMs]);
      }
      return { total, checkMs };
    };
    const fresh = await measure();
    await withDatabase(testDb, (db) => db.sql.exec("ANALYZE"));
    const settled = await measure();
    const cliEnv = { ...env, DATABASE_URL: testDb.url ?? "", CANDLEKEEP_DATA_DIR: testDb.dataDir, LOG_LEVEL: "warn", LOG_FORMAT: "json" };
    const cli: number[] = [];
    for (let run = 0; run < options.warmup + options.repeat; run += 1) {
      const ms = await runCli(cliEnv);
      if (run >= options.warmup) cli.push(ms);
    }

    const longHistory = history * HISTORY_FACTOR;
    const extended = performance.now();
    await withDatabase(testDb, async (db) => {
      for (let from = 0; from < symbols.length; from += FILL_COINS) {
        // Older than every candle stored so far: the same series reaching further back.
        const older = freshCandles({ symbols: symbols.slice(from, from + FILL_COINS), timeframes, nowMs, candlesAgo: history, count: longHistory - history });
        const saved = await saveCandles(db, older, nowMs);
        if (saved.rejected.length > 0) throw new Error(`bench candles rejected: ${saved.rejected[0]?.reason}`);
      }
      await db.sql.exec("ANALYZE");
    });
    const extendMs = performance.now() - extended;
    const long = await measure();

    const text = `${coins} coins × 4 timeframes, ${history} candles per series`;
    const checkFigures = (prefix: string, checkMs: Map<CheckName, number[]>) =>
      [...checkMs].map(([name, samples]): Figure => ({ id: `verify.${prefix}.check.${name}`, label: `  ${name} check`, value: median(samples), unit: "ms", p95: percentile(samples, 95), samples }));
    const freshTotal = timingFigure("verify.fresh", `verify in-process, right after the bulk load: no statistics yet (${text})`, fresh.total);
    const settledTotal = timingFigure("verify.settled", `verify in-process, after ANALYZE (${text})`, settled.total);
    const longTotal = timingFigure("verify.long", `verify in-process, ${HISTORY_FACTOR}× the history (${longHistory.toLocaleString("en-US")} candles per series), after ANALYZE`, long.total);
    const figures: Figure[] = [
      withGoal(freshTotal, `≤ ${GOAL_MS} ms`, freshTotal.value <= GOAL_MS),
      ...checkFigures("fresh", fresh.checkMs),
      withGoal(settledTotal, `≤ ${GOAL_MS} ms`, settledTotal.value <= GOAL_MS),
      ...checkFigures("settled", settled.checkMs),
      timingFigure("verify.cli", "verify CLI end to end after ANALYZE (node dist/main.js: start, connect, checks, exit)", cli),
      withRatio(withGoal(longTotal, `≤ ${GOAL_MS} ms`, longTotal.value <= GOAL_MS), settledTotal, `${history} candles`),
      ...checkFigures("long", long.checkMs).filter((figure) => figure.id === "verify.long.check.coverage"),
      { id: "verify.fill", label: `  (setup, untimed above: filling the database with ${(coins * 4 * history).toLocaleString("en-US")} candles)`, value: fillMs, unit: "ms" },
      { id: "verify.fill.long", label: `  (setup, untimed: adding ${(coins * 4 * (longHistory - history)).toLocaleString("en-US")} older candles, then ANALYZE)`, value: extendMs, unit: "ms" },
    ];
    report(options, {
      name: "verify",
      title: "verify after a deploy (apps/verify)",
      measuredAt: new Date().toISOString(),
      smoke: options.smoke,
      repetitions: options.repeat,
      settings: { coins, timeframes: 4, historyCandles: history, database: "server", symbols: `top:${coins}` },
      figures,
    });
  } finally {
    await testDb.drop();
  }
});
