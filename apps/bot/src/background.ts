import { describeError } from "@candlekeep/core";
import { pause } from "./loop";
import type { BotRuntime } from "./runtime";

/** How often a background job looks whether the first tick has run. */
const FIRST_TICK_POLL_MS = 250;

/**
 * A running bot's background job (the history repair, the retention): `pass` after the first tick
 * (start-up and the first decisions come first), then every `intervalMs`, until `signal` aborts. A
 * pass that fails is logged as `failure` and runs again at the next interval.
 */
export async function everyIntervalAfterFirstTick(
  rt: BotRuntime,
  options: { intervalMs: number; signal: AbortSignal; failure: string },
  pass: (round: number) => Promise<void>,
): Promise<void> {
  const { signal } = options;
  while (rt.status.ticks === 0 && !signal.aborted) await pause(FIRST_TICK_POLL_MS, signal);
  for (let round = 0; !signal.aborted; round += 1) {
    try {
      await pass(round);
    } catch (error) {
      if (!signal.aborted) rt.logger.error(options.failure, { error: describeError(error) });
    }
    await pause(options.intervalMs, signal);
  }
}
