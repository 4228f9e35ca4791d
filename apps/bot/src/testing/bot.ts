import type { Logger } from "@candlekeep/core";
import { captureLogger } from "@candlekeep/db/testing";
import { backfillRecentHistory } from "../backfill";
import { loadConfig } from "../config";
import { shutdown } from "../loop";
import { startBot, type StartedBot, type StartOptions } from "../startup";
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

export async function startTestBot(settings: Record<string, string | undefined>, options: { backfill?: boolean } & Pick<StartOptions, "market" | "simStepMs"> = {}): Promise<TestBot> {
  const config = loadConfig({ TICK_INTERVAL_MS: "0", PORT: "0", HISTORY_CANDLES: "100", ...settings }, [], false);
  const logger = captureLogger();
  const { backfill, ...startOptions } = options;
  const started = await startBot(config, logger, startOptions);
  if (backfill ?? true) await backfillRecentHistory(started.runtime, false);
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
