import { describeError } from "@candlekeep/core";
import { BotAlreadyRunningError, recordEvent } from "@candlekeep/db";
import type { BotRuntime } from "./runtime";
import { TICK_PHASES, runTick, snapshotAccount } from "./tick";

/** Waits `ms`, or less when `signal` aborts. */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done);
  });
}

/**
 * Ticks until `ticks` have run or `signal` aborts; a tick in progress always
 * finishes. The interval is measured from tick start, so a slow tick is not
 * followed by a full extra wait.
 */
export async function runLoop(rt: BotRuntime, options: { ticks: number | undefined; signal: AbortSignal }): Promise<void> {
  for (let done = 0; options.ticks === undefined || done < options.ticks; done += 1) {
    if (options.signal.aborted) return;
    const started = Date.now();
    try {
      const report = await runTick(rt);
      rt.logger.info("tick", {
        tick: rt.status.ticks,
        exchangeTime: new Date(report.exchangeTime).toISOString(),
        coins: report.coins,
        failed: report.failed.length,
        ...(report.delisted.length > 0 ? { delisted: report.delisted.length } : {}),
        candles: report.candlesAccepted,
        written: report.written,
        pending: rt.candles.pendingCount,
        ...(report.candlesDeferred > 0 ? { deferred: report.candlesDeferred } : {}),
        ...(report.flushInFlight ? { writeInFlight: true } : {}),
        ...(report.eventsDropped > 0 ? { eventsDropped: report.eventsDropped } : {}),
        opened: report.opened,
        closed: report.closed,
        openPositions: rt.positions.all().length,
        ms: Math.round(report.durationMs),
        ...Object.fromEntries(TICK_PHASES.map((phase) => [`${phase}Ms`, Math.round(report.phasesMs[phase])])),
      });
    } catch (error) {
      if (error instanceof BotAlreadyRunningError) throw error; // never trade beside another bot
      // runTick contains per-coin and database failures itself; anything here is unexpected.
      rt.logger.error("tick failed", { error: describeError(error) });
    }
    if (options.ticks !== undefined && done + 1 >= options.ticks) return;
    await pause(Math.max(0, rt.config.tick.intervalMs - (Date.now() - started)), options.signal);
  }
}

export interface ShutdownOptions {
  /** How long the final writes may take; what is not written by then is left (candles are fetched again at the next start). */
  writesWithinMs?: number;
  /** Told what the shutdown is doing, so a watchdog can name the stage that hung. */
  stage?: (stage: string) => void;
}

/**
 * The end of every run: the final writes (pending candles, the account snapshot, the SHUTDOWN
 * event) within their bound, reporting what could not be written, then the bot lock released
 * (always: the lock holds a pooled connection, and closing the database waits for it) and the
 * exchange closed.
 */
export async function shutdown(rt: BotRuntime, reason: string, options: ShutdownOptions = {}): Promise<void> {
  options.stage?.("writing pending candles, the account and the SHUTDOWN event");
  const withinMs = options.writesWithinMs ?? Number.POSITIVE_INFINITY;
  let timer: NodeJS.Timeout | undefined;
  const outOfTime = new Promise<"out of time">((resolve) => {
    if (withinMs !== Number.POSITIVE_INFINITY) timer = setTimeout(() => resolve("out of time"), withinMs);
  });
  const outcome = await Promise.race([
    finalWrites(rt, reason).then(
      () => "written" as const,
      (error: unknown) => ({ error }),
    ),
    outOfTime,
  ]);
  clearTimeout(timer);
  if (outcome !== "written") {
    rt.logger.error("shutdown flush failed; candles not written will be fetched again at the next start", {
      pendingCandles: rt.candles.pendingCount,
      error: outcome === "out of time" ? `not finished within ${withinMs} ms` : describeError(outcome.error),
    });
  }
  options.stage?.("releasing the bot lock");
  await rt.lock.release().catch(() => undefined);
  options.stage?.("closing the exchange");
  await rt.market.close().catch(() => undefined);
}

/** Final flush, the last balances and the SHUTDOWN event. */
async function finalWrites(rt: BotRuntime, reason: string): Promise<void> {
  const db = await rt.db();
  await rt.candles.flushPending(db);
  // The last balances the bot saw, so the stored account ends where this run left it.
  if (rt.status.exchangeTime !== undefined) await snapshotAccount(rt, rt.status.exchangeTime, true);
  await recordEvent(db, { type: "SHUTDOWN", payload: { reason, ticks: rt.status.ticks, openPositions: rt.positions.all().length } });
}
