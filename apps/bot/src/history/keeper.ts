import { describeError } from "@candlekeep/core";
import { CandleManager } from "../candles/manager";
import { everyIntervalAfterFirstTick } from "../background";
import type { BotRuntime } from "../runtime";
import { repairFields, repairHistory, type RepairReport } from "./repair";

/**
 * Ranges the background repair fetches at once. Modest: its calls share the exchange's rate
 * limiter (ccxt's enableRateLimit queue) with the ticks', which must not wait behind a long queue.
 */
const BACKGROUND_CONCURRENCY = 2;
/** The repair's own pending batch: bounded, so an outage pauses its fetching instead of growing memory. */
const BACKGROUND_MAX_PENDING = 50_000;

/**
 * The running bot's history in the background, after the first ticks: the stored history is audited
 * (incrementally: only what is new since the last audit is read) and what is missing between stored
 * candles is fetched (the older part of a long downtime among it, once start-up has loaded the recent
 * candles), then again every `intervalMs`, so a hole is found and repaired without anyone running
 * anything. Each pass says in one line what it found and repaired. Ends when `signal` aborts,
 * writing what it has fetched and not yet written.
 */
export async function keepHistory(rt: BotRuntime, options: { intervalMs: number; signal: AbortSignal }): Promise<void> {
  const { signal } = options;
  const repairing = repairRuntime(rt);
  await everyIntervalAfterFirstTick(rt, { ...options, failure: "history repair failed; it runs again at the next audit" }, async (round) => {
    if (round === 0) rt.logger.info("resuming history in the background: auditing what is stored, then fetching what is missing", { series: rt.symbols.length * rt.timeframes.length });
    reportPass(rt, await repairHistory(repairing, { after: false, tty: false, signal, concurrency: BACKGROUND_CONCURRENCY, name: "history repair" }));
  });
  await writeLeftovers(repairing);
}

/**
 * The runtime as the background repair uses it: its candles go to a manager of their own (old
 * candles must not enter the strategy's series, nor a repair's large writes hold up a tick's), and
 * its progress is its own (/healthz judges the tick loop by the runtime's status, which a busy
 * repair must not keep looking alive).
 */
function repairRuntime(rt: BotRuntime): BotRuntime {
  const candles = new CandleManager({
    exchange: rt.market.id,
    // Its series are never read: one candle each keeps them small.
    historyCandles: 1,
    maxPending: BACKGROUND_MAX_PENDING,
    writeTimeoutMs: rt.config.database.candleWriteTimeoutMs,
    logger: rt.logger,
    now: () => rt.market.now(),
  });
  return { ...rt, candles, status: { ...rt.status } };
}

function reportPass(rt: BotRuntime, report: RepairReport): void {
  if (report.stopped) return;
  if (report.rangesFound.total === 0) {
    rt.logger.info("history audit: nothing missing", { series: report.series, scannedCandles: report.audit?.scannedCandles, auditMs: report.audit?.ms });
    return;
  }
  rt.logger.info("history audit found missing candles; repaired", repairFields(report));
}

/** What the repair fetched and had not written when it stopped: written now (else the next audit finds it missing again). */
async function writeLeftovers(repairing: BotRuntime): Promise<void> {
  const pending = repairing.candles.pendingCount;
  if (pending === 0) return;
  try {
    await repairing.candles.flushPending(await repairing.db());
  } catch (error) {
    repairing.logger.warn("history repair stopped with candles not written; the next audit finds them missing and fetches them again", { pending, error: describeError(error) });
  }
}
