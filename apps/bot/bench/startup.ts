import { performance } from "node:perf_hooks";
import { TIMEFRAMES as TIMEFRAME_LIST } from "@candlekeep/core";
import { latestCandlesPerSeries, type Database } from "@candlekeep/db";
import { createServerTestDatabase, type TestDatabase } from "@candlekeep/db/testing";
import { median, parseBenchArgs, report, runMain, timingFigure, withGoal, type BenchOptions, type Figure } from "../../../packages/db/bench/harness";
import { copyInto } from "../../../packages/db/bench/writes";
import { loadRecentHistory } from "../src/history/resume";
import { startTestBot } from "../src/testing/bot";
import { postgresCpuMs, processCpuMs } from "./cpu";
import { startBenchBot, TIMEFRAMES, type BenchBot } from "./setup";

/**
 * Start-up, from the call that starts the bot to the end of its first tick
 * (connect, migrate, restore, backfill of what is missing, one tick), in three
 * situations (issue 26's goals):
 *  - a restart on a database holding every series' history (restore-bound);
 *  - a first start at 2,000 coins on a fresh database (backfill-bound);
 *  - the backfill's write rate against COPY's on the same rows, in the same run.
 */

const RESTART_GOAL_MS = 2000;
const FRESH_GOAL_MS = 15_000;
/** Backfill time over COPY's for the same rows: rows/s at least half of COPY's. */
const BACKFILL_GOAL_COPY_RATIO = 2;

interface Sizes {
  restartCoins: number;
  freshCoins: number;
  backfillCoins: number;
  history: number;
  restarts: number;
  backfills: number;
}

function sizes(options: BenchOptions): Sizes {
  if (options.smoke) return { restartCoins: 5, freshCoins: 10, backfillCoins: 5, history: 100, restarts: 1, backfills: 1 };
  return { restartCoins: 500, freshCoins: 2000, backfillCoins: 500, history: 300, restarts: Math.max(3, options.repeat), backfills: 3 };
}

const coinsText = (coins: number) => `${coins.toLocaleString("en-US")} coins × 4 timeframes`;
const ofGoal = (figure: Figure, goalMs: number): Figure => ({ ...figure, ratio: { value: figure.value / goalMs, to: "goal" } });

/** Ready, then the first tick: start-up as an operator sees it. */
async function startAndTick(coins: number, history: number, database?: TestDatabase): Promise<{ bot: BenchBot; totalMs: number; tickMs: number }> {
  const started = performance.now();
  const bot = await startBenchBot({ coins, history, ticks: 2, ...(database ? { database } : {}) });
  try {
    const tickStarted = performance.now();
    const [tick] = await bot.bot.ticks(1);
    if (tick?.flushError !== undefined || (tick?.failed.length ?? 0) > 0) throw new Error(`first tick failed: ${tick?.flushError ?? tick?.failed[0]?.error}`);
    const ended = performance.now();
    return { bot, totalMs: ended - started, tickMs: ended - tickStarted };
  } catch (error) {
    await bot.stop();
    throw error;
  }
}

/** Restarts on a database an earlier bot filled with `history` candles per series. */
async function restarts(size: Sizes): Promise<Figure[]> {
  const { restartCoins: coins, history } = size;
  const database = await createServerTestDatabase("candlekeep_bench");
  try {
    const fill = await startBenchBot({ coins, history, ticks: 2, database });
    await fill.bot.ticks(2);
    await fill.stop();
    const totals: number[] = [];
    const restores: number[] = [];
    const backfills: number[] = [];
    const ticks: number[] = [];
    for (let run = 0; run < size.restarts; run += 1) {
      const { bot, totalMs, tickMs } = await startAndTick(coins, history, database);
      await bot.stop();
      totals.push(totalMs);
      restores.push(bot.restoreMs);
      backfills.push(bot.backfillMs);
      ticks.push(tickMs);
    }
    const id = `startup.restart.${coins}`;
    const total = timingFigure(id, `start-up to the end of the first tick, ${coinsText(coins)}, ${history} candles per series stored`, totals);
    return [
      withGoal(ofGoal(total, RESTART_GOAL_MS), `≤ ${RESTART_GOAL_MS / 1000} s`, total.value <= RESTART_GOAL_MS),
      timingFigure(`${id}.restore`, "  connect, migrations checked, state restored", restores),
      timingFigure(`${id}.backfill`, "  backfill: what opened since the last run", backfills),
      timingFigure(`${id}.firstTick`, "  the first tick", ticks),
    ];
  } finally {
    await database.drop();
  }
}

/** A first start: every series' history fetched and written. */
async function freshStart(size: Sizes): Promise<Figure[]> {
  const { freshCoins: coins, history } = size;
  // Created first: making a database is not the bot's start-up.
  const database = await createServerTestDatabase("candlekeep_bench");
  let run: Awaited<ReturnType<typeof startAndTick>>;
  try {
    run = await startAndTick(coins, history, database);
    await run.bot.stop();
  } finally {
    await database.drop();
  }
  const { bot, totalMs, tickMs } = run;
  const id = `startup.fresh.${coins}`;
  const total: Figure = { id, label: `start-up to the end of the first tick, ${coinsText(coins)}, fresh database (${history} candles per series loaded)`, value: totalMs, unit: "ms" };
  return [
    withGoal(ofGoal(total, FRESH_GOAL_MS), `≤ ${FRESH_GOAL_MS / 1000} s`, totalMs <= FRESH_GOAL_MS),
    { id: `${id}.restore`, label: "  connect, migrations applied", value: bot.restoreMs, unit: "ms" },
    { id: `${id}.backfill`, label: "  backfill: fetched from the sim and written", value: bot.backfillMs, unit: "ms" },
    { id: `${id}.firstTick`, label: "  the first tick", value: tickMs, unit: "ms" },
    { id: `${id}.rows`, label: "  candles the backfill wrote", value: bot.backfillWritten, unit: "rows" },
  ];
}

interface BackfillRun {
  backfillMs: number;
  copyMs: number;
  rows: number;
  botCpuMs: number;
  postgresCpuMs: number | undefined;
}

/** A fresh database's backfill, timed, then COPY of the rows it stored into an identical empty table. */
async function backfillThenCopy(coins: number, history: number): Promise<BackfillRun> {
  const database = await createServerTestDatabase("candlekeep_bench");
  const name = new URL(database.url ?? "").pathname.slice(1);
  try {
    const bot = await startTestBot(
      { DATABASE_URL: database.url, CANDLEKEEP_DATA_DIR: database.dataDir, EXCHANGE: "sim", SYMBOLS: `top:${coins}`, TIMEFRAMES, HISTORY_CANDLES: String(history), LOG_LEVEL: "warn" },
      { backfill: false },
    );
    try {
      const db = await bot.database.get();
      // Neither side pays for flushing the other's pages.
      await db.sql.exec("CHECKPOINT");
      const botCpu = processCpuMs();
      const postgresCpu = postgresCpuMs(name);
      const started = performance.now();
      const backfill = await loadRecentHistory(bot.runtime, false);
      const backfillMs = performance.now() - started;
      const postgresCpuAfter = postgresCpuMs(name);
      const run = {
        backfillMs,
        botCpuMs: processCpuMs() - botCpu,
        postgresCpuMs: postgresCpu === undefined || postgresCpuAfter === undefined ? undefined : postgresCpuAfter - postgresCpu,
      };
      if (backfill.failed.length > 0 || backfill.written === 0) throw new Error(`the backfill wrote ${backfill.written} candles, ${backfill.failed.length} series failed`);
      return { ...run, ...(await copyStored(db, bot.runtime.symbols, history + 1)) };
    } finally {
      await bot.stop();
    }
  } finally {
    await database.drop();
  }
}

/** COPY's time for the candles `db` holds, into a table like candles. */
async function copyStored(db: Database, symbols: readonly string[], perSeries: number): Promise<{ copyMs: number; rows: number }> {
  if (!db.pool) throw new Error("expected the server engine");
  const rows = await latestCandlesPerSeries(db, { exchange: "sim", symbols, timeframes: TIMEFRAME_LIST, perSeries });
  await db.sql.exec("CREATE TABLE bench_copy (LIKE candles INCLUDING ALL)");
  await db.sql.exec("CHECKPOINT");
  const started = performance.now();
  const copied = await copyInto(db.pool, "bench_copy", rows);
  const copyMs = performance.now() - started;
  if (copied !== rows.length) throw new Error(`COPY stored ${copied} of ${rows.length} rows`);
  return { copyMs, rows: rows.length };
}

async function backfillRate(size: Sizes): Promise<{ figures: Figure[]; settings: Record<string, number> }> {
  const runs: BackfillRun[] = [];
  for (let run = 0; run < size.backfills; run += 1) runs.push(await backfillThenCopy(size.backfillCoins, size.history));
  const id = `backfill.${size.backfillCoins}`;
  const rows = median(runs.map((run) => run.rows));
  const backfill = timingFigure(id, `backfill of ${rows.toLocaleString("en-US")} candles (${coinsText(size.backfillCoins)}), fresh database: fetch from the sim and write`, runs.map((run) => run.backfillMs));
  const copy = timingFigure(`${id}.copy`, "  COPY … FROM STDIN of the same rows into an identical table", runs.map((run) => run.copyMs));
  // Each run's own ratio: both sides of it ran minutes apart at most, on the same machine's mood.
  const ratio = median(runs.map((run) => run.backfillMs / run.copyMs));
  const figures: Figure[] = [
    withGoal({ ...backfill, ratio: { value: ratio, to: "COPY" } }, `≤ ${BACKFILL_GOAL_COPY_RATIO}× COPY (rows/s ≥ ${1 / BACKFILL_GOAL_COPY_RATIO}× COPY's)`, ratio <= BACKFILL_GOAL_COPY_RATIO),
    copy,
    { id: `${id}.cpu.bot`, label: "  bot process CPU during the backfill (the sim's generation included)", value: median(runs.map((run) => run.botCpuMs)), unit: "ms" },
  ];
  const postgres = runs.map((run) => run.postgresCpuMs).filter((ms): ms is number => ms !== undefined);
  if (postgres.length === runs.length) figures.push({ id: `${id}.cpu.postgres`, label: "  PostgreSQL CPU during the backfill (its backends for this database)", value: median(postgres), unit: "ms" });
  return {
    figures,
    settings: {
      backfillRowsPerSecond: Math.round(rows / (backfill.value / 1000)),
      copyRowsPerSecond: Math.round(rows / (copy.value / 1000)),
    },
  };
}

runMain(async () => {
  const options = parseBenchArgs(process.argv.slice(2));
  const size = sizes(options);
  const figures = [...(await restarts(size)), ...(await freshStart(size))];
  const rate = await backfillRate(size);
  report(options, {
    name: "startup",
    title: "Bot start-up and backfill (apps/bot)",
    measuredAt: new Date().toISOString(),
    smoke: options.smoke,
    repetitions: size.restarts,
    settings: { timeframes: 4, historyCandles: size.history, restarts: size.restarts, backfills: size.backfills, database: "server", ...rate.settings },
    figures: [...figures, ...rate.figures],
  });
});
