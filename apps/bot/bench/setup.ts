import { createServerTestDatabase } from "@candlekeep/db/testing";
import { startTestBot, type TestBot } from "../src/testing/bot";

/** The bot as production runs it (settings through the zod config), on the simulated exchange and a fresh database. */
export interface BenchBot {
  bot: TestBot;
  /** The fresh PostgreSQL database it runs on. */
  databaseName: string;
  /** Milliseconds from start to ready: connect, migrate, restore, backfill of the history. */
  startMs: number;
  stop(): Promise<void>;
}

export const TIMEFRAMES = "15m,1h,4h,1d";

/**
 * Starts a bot tracking the `coins` most traded sim coins on all four
 * timeframes with `history` candles per series loaded first. The sim replays
 * from `ticks` steps (15 min each) in the past, so every tick brings one new
 * 15m candle per coin and moves the forming 1h/4h/1d ones: a busy tick.
 */
export async function startBenchBot(options: { coins: number; history: number; ticks: number }): Promise<BenchBot> {
  const testDb = await createServerTestDatabase("candlekeep_bench");
  const started = performance.now();
  try {
    const bot = await startTestBot({
      DATABASE_URL: testDb.url,
      CANDLEKEEP_DATA_DIR: testDb.dataDir,
      EXCHANGE: "sim",
      SYMBOLS: `top:${options.coins}`,
      TIMEFRAMES,
      HISTORY_CANDLES: String(options.history),
      SIM_REPLAY_CANDLES: String(options.ticks + 2),
      LOG_LEVEL: "warn",
    });
    return {
      bot,
      databaseName: new URL(serverUrl(testDb.url)).pathname.slice(1),
      startMs: performance.now() - started,
      async stop() {
        try {
          await bot.stop();
        } finally {
          await testDb.drop();
        }
      },
    };
  } catch (error) {
    await testDb.drop();
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
