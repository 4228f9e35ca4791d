import { createServerTestDatabase, type TestDatabase } from "@candlekeep/db/testing";
import { startTestBot, type TestBot } from "./bot";

// A module of its own: it declares jest hooks, and the benchmarks (run by plain
// node, type-checked without jest's globals) import startTestBot only.

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
