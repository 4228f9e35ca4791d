import type { Logger } from "@candlekeep/core";
import { captureLogger } from "@candlekeep/db/testing";
import { loadRecentHistory } from "../history/resume";
import { loadConfig } from "../config";
import { SIM_DEFAULT_STEP_MS, simReplayStart } from "../exchange/sim";
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

export interface TestBotOptions extends Pick<StartOptions, "market" | "simStepMs" | "simListedFrom" | "simDelistedFrom"> {
  backfill?: boolean;
  /**
   * EXCHANGE=sim: the sim caught up with a clock of the test's own, which each
   * tick moves one sim step on: a real exchange's situation (every series'
   * forming candle written every tick) at test speed. Default: the sim replays
   * the past (SIM_REPLAY_CANDLES), writing closed candles only.
   */
  simCaughtUp?: boolean;
}

export async function startTestBot(settings: Record<string, string | undefined>, options: TestBotOptions = {}): Promise<TestBot> {
  const config = loadConfig({ TICK_INTERVAL_MS: "0", PORT: "0", HISTORY_CANDLES: "100", ...settings }, [], false);
  const logger = captureLogger();
  const { backfill, simCaughtUp, ...startOptions } = options;
  // Where a replay would start (or before it, if a 15m boundary passes before start-up computes it),
  // so the sim starts on this clock, caught up, whatever SIM_REPLAY_CANDLES says; on a 15m boundary,
  // so a step that divides 15 minutes closes the 15m candles on the same ticks every run.
  let wallClock = simReplayStart(config.sim.replayCandles, Date.now());
  const started = await startBot(config, logger, { ...startOptions, ...(simCaughtUp ? { simWallClock: () => wallClock } : {}) });
  if (backfill ?? true) await loadRecentHistory(started.runtime, false);
  return {
    ...started,
    logger,
    async ticks(count) {
      const reports: TickReport[] = [];
      // Each tick waits for its candle write, so a test sees its outcome in the report.
      for (let i = 0; i < count; i += 1) {
        if (simCaughtUp) wallClock += options.simStepMs ?? SIM_DEFAULT_STEP_MS;
        reports.push(await runTick(started.runtime, { flushDeadline: Number.POSITIVE_INFINITY }));
      }
      return reports;
    },
    async stop() {
      await shutdown(started.runtime, "test");
      await started.database.close();
    },
  };
}
