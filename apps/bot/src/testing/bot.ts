import type { Logger } from "@candlekeep/core";
import { captureLogger, createServerTestDatabase, type TestDatabase } from "@candlekeep/db/testing";
import { backfillRecentHistory } from "../backfill";
import { loadConfig } from "../config";
import type { MarketData } from "../exchange/types";
import { shutdown } from "../loop";
import { startBot, type StartedBot } from "../startup";
import { runTick, type TickReport } from "../tick";

/**
 * Test support: a bot configured like production (zod config from env-style
 * settings), on the simulated exchange, started and driven tick by tick.
 */
export interface TestBot extends StartedBot {
  logger: Logger & { lines: { level: string; message: string; meta: Record<string, unknown> | undefined }[] };
  ticks(count: number): Promise<TickReport[]>;
  stop(): Promise<void>;
}

export async function startTestBot(settings: Record<string, string | undefined>, options: { backfill?: boolean; market?: MarketData } = {}): Promise<TestBot> {
  const config = loadConfig({ TICK_INTERVAL_MS: "0", PORT: "0", HISTORY_CANDLES: "100", ...settings }, [], false);
  const logger = captureLogger();
  const started = await startBot(config, logger, options.market ? { market: options.market } : {});
  if (options.backfill ?? true) await backfillRecentHistory(started.runtime, false);
  return {
    ...started,
    logger,
    async ticks(count) {
      const reports: TickReport[] = [];
      // Each tick waits for its candle write, so a test sees its outcome in the report.
      for (let i = 0; i < count; i += 1) reports.push(await runTick(started.runtime, { flushDeadline: Number.POSITIVE_INFINITY }));
      return reports;
    },
    async stop() {
      await shutdown(started.runtime, "test");
      await started.database.close();
    },
  };
}

export interface ServerTestBot {
  /** This test's database. */
  readonly database: TestDatabase;
  /** Starts the bot on this test's database (stopping one started before: a restart). */
  start(settings?: Record<string, string | undefined>, options?: Parameters<typeof startTestBot>[1]): Promise<TestBot>;
}

/**
 * For a describe block: a fresh PostgreSQL database per test, the bot started
 * on it by `start`, both stopped and dropped after the test (jest hooks).
 */
export function useServerTestBot(): ServerTestBot {
  let testDb: TestDatabase | undefined;
  let bot: TestBot | undefined;
  const stopBot = async () => {
    const running = bot;
    bot = undefined;
    await running?.stop();
  };
  beforeEach(async () => {
    testDb = await createServerTestDatabase();
  });
  afterEach(async () => {
    try {
      await stopBot();
    } finally {
      await testDb?.drop();
      testDb = undefined;
    }
  });
  const database = (): TestDatabase => {
    if (!testDb) throw new Error("useServerTestBot: the database exists only while a test runs");
    return testDb;
  };
  return {
    get database() {
      return database();
    },
    async start(settings = {}, options = {}) {
      await stopBot();
      bot = await startTestBot({ DATABASE_URL: database().url, CANDLEKEEP_DATA_DIR: database().dataDir, ...settings }, options);
      return bot;
    },
  };
}
