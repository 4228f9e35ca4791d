import { createServerTestDatabase, type TestDatabase } from "@candlekeep/db/testing";
import { loadRecentHistory } from "../src/history/resume";
import { startTestBot, type TestBot } from "../src/testing/bot";

/** The bot as production runs it (settings through the zod config), on the simulated exchange and a fresh database. */
export interface BenchBot {
  bot: TestBot;
  /** The PostgreSQL database it runs on. */
  databaseName: string;
  /** Milliseconds from start to ready: connect, migrate, restore, backfill of the history. */
  startMs: number;
  /** Of startMs: connecting, migrating and restoring what the database holds (startBot). */
  restoreMs: number;
  /** Of startMs: loading what is missing of every series' history (loadRecentHistory). */
  backfillMs: number;
  /** Candles the backfill wrote. */
  backfillWritten: number;
  /** Stops the bot, and drops the database unless it was given (`database`). */
  stop(): Promise<void>;
}

export const TIMEFRAMES = "15m,1h,4h,1d";

export interface BenchBotOptions {
  coins: number;
  history: number;
  ticks: number;
  stepMinutes?: number;
  caughtUp?: boolean;
  /** Start on this database (a restart: what an earlier bot stored is restored); the caller drops it. Default: a fresh one. */
  database?: TestDatabase;
}

/**
 * Starts a bot tracking the `coins` most traded sim coins on all four
 * timeframes with `history` candles per series loaded first.
 *
 * By default the sim replays from `ticks` steps of 15 minutes in the past: a
 * catch-up tick. Every tick brings one new 15m candle per coin (a 1h, 4h or
 * 1d one every 4th, 16th or 96th) and every coin's decision trace is due; a
 * replay writes closed candles only (CandleManager).
 *
 * `caughtUp`: the sim follows a clock that moves a step per tick, as a real
 * exchange follows the wall clock: every tick also writes every series'
 * forming candle. At one minute, a real exchange's cadence, a new 15m candle
 * comes every 15th tick and a coin's trace every 5th.
 */
export async function startBenchBot(options: BenchBotOptions): Promise<BenchBot> {
  const stepMinutes = options.stepMinutes ?? 15;
  const testDb = options.database ?? (await createServerTestDatabase("candlekeep_bench"));
  const dropOwn = () => (options.database ? Promise.resolve() : testDb.drop());
  const started = performance.now();
  try {
    const settings = {
      DATABASE_URL: testDb.url,
      CANDLEKEEP_DATA_DIR: testDb.dataDir,
      EXCHANGE: "sim",
      SYMBOLS: `top:${options.coins}`,
      TIMEFRAMES,
      HISTORY_CANDLES: String(options.history),
      // Counted in 15m candles: enough to replay every tick without reaching the wall clock.
      SIM_REPLAY_CANDLES: String(Math.ceil((options.ticks * stepMinutes) / 15) + 2),
      LOG_LEVEL: "warn",
    };
    const bot = await startTestBot(settings, { simStepMs: stepMinutes * 60_000, simCaughtUp: options.caughtUp ?? false, backfill: false });
    const restored = performance.now();
    try {
      const backfill = await loadRecentHistory(bot.runtime, false);
      const ready = performance.now();
      return {
        bot,
        databaseName: new URL(serverUrl(testDb.url)).pathname.slice(1),
        startMs: ready - started,
        restoreMs: restored - started,
        backfillMs: ready - restored,
        backfillWritten: backfill.written,
        async stop() {
          try {
            await bot.stop();
          } finally {
            await dropOwn();
          }
        },
      };
    } catch (error) {
      await bot.stop();
      throw error;
    }
  } catch (error) {
    await dropOwn();
    throw error;
  }
}

function serverUrl(url: string | undefined): string {
  if (url === undefined) throw new Error("the benchmark's database has no server URL");
  return url;
}

/** Drops what the test bot's capturing logger has kept: over many ticks it would be the harness growing, not the bot. */
export function forgetLogLines(bot: TestBot): number {
  const count = bot.logger.lines.length;
  bot.logger.lines.length = 0;
  return count;
}
