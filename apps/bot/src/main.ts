import type { FastifyInstance } from "fastify";
import { UserFacingError, createLogger, describeError, redactText, type Logger } from "@candlekeep/core";
import { loadConfig, USAGE, type BotConfig } from "./config";
import { keepHistory } from "./history/keeper";
import { daysBack, repairFields, repairHistory } from "./history/repair";
import { loadRecentHistory } from "./history/resume";
import { EXIT_CODES, Lifecycle, signalExitCode } from "./lifecycle";
import { runLoop, shutdown } from "./loop";
import { firstKeptCandle } from "./retention/cutoffs";
import { keepRetention } from "./retention/keeper";
import type { BotRuntime } from "./runtime";
import { startServer } from "./server";
import { UnknownExchangeError, UnsupportedExchangeError, UnsupportedTimeframeError } from "./exchange/ccxt";
import { MissingApiKeysError } from "./exchange/live";
import { startBot, UnknownSymbolsError, type StartedBot } from "./startup";
import { TradingModeConflictError } from "./trading-mode";

/** Exit codes: see EXIT_CODES (lifecycle.ts) and README's Exit codes. */

/** Start-up failures that only a configuration change fixes, found once the exchange is known (exit 2). */
const CONFIGURATION_ERRORS = [UnknownExchangeError, UnsupportedExchangeError, UnsupportedTimeframeError, MissingApiKeysError, UnknownSymbolsError, TradingModeConflictError];

/** How a run ended: its exit code and the reason recorded in the SHUTDOWN event and the last log line. */
interface Ending {
  code: number;
  reason: string;
}

function main(argv: readonly string[]): void {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(EXIT_CODES.done);
  }
  let config: BotConfig;
  try {
    config = loadConfig(process.env, argv, Boolean(process.stderr.isTTY));
  } catch (error) {
    process.stderr.write(`${describeError(error)}\n\n${USAGE}\n`);
    process.exit(EXIT_CODES.configuration);
  }
  const logger = createLogger({ level: config.log.level, format: config.log.format, defaultMeta: { service: "bot" } });
  const life = new Lifecycle({ logger, timeoutMs: config.shutdownTimeoutMs });
  life.listen();
  run(config, logger, life).then(
    ({ code, reason }) => life.finish(code, reason),
    (error: unknown) => {
      logger.error(`bot failed: ${redactText(describeError(error))}`);
      life.finish(EXIT_CODES.failed, "error");
    },
  );
}

/** Starts the bot, runs its command, and shuts down the same way however that ends. */
async function run(config: BotConfig, logger: Logger, life: Lifecycle): Promise<Ending> {
  if (config.database.url === undefined && process.env.DATABASE_URL === "") {
    logger.warn("DATABASE_URL is empty: using the embedded database", { dataDir: config.database.dataDir });
  }
  let started: StartedBot;
  try {
    // A signal during start-up ends the connection retries and a wait for the bot lock; startBot closes what it opened when it fails (under the watchdog).
    started = await startBot(config, logger, { signal: life.stopping, onFailure: () => life.begin() });
  } catch (error) {
    if (life.signal !== undefined) {
      // Stopped on request before the bot ran: nothing was accepted, so nothing is lost.
      logger.info("stopped during start-up", { signal: life.signal, while: redactText(describeError(error)) });
      return { code: EXIT_CODES.done, reason: "signal during start-up" };
    }
    // One clear line for what the operator can fix; details only at debug level.
    logger.error(error instanceof UserFacingError ? error.message : `start-up failed: ${describeError(error)}`);
    logger.debug("start-up failure details", { stack: redactText(error instanceof Error ? (error.stack ?? "") : "") });
    return CONFIGURATION_ERRORS.some((kind) => error instanceof kind) ? { code: EXIT_CODES.configuration, reason: "configuration" } : { code: EXIT_CODES.failed, reason: "start-up failed" };
  }
  const { runtime, database } = started;
  const server: { app?: FastifyInstance } = {};
  let ending: Ending;
  try {
    const { command } = config;
    ending = command.kind === "backfill" ? await runBackfill(runtime, command, life) : await runBot(runtime, config, command.ticks, life, server);
  } catch (error) {
    logger.error(error instanceof UserFacingError ? error.message : `bot failed: ${describeError(error)}`);
    ending = { code: EXIT_CODES.failed, reason: "error" };
  }
  if (life.hasFailed) ending = { code: EXIT_CODES.failed, reason: "error" };
  life.begin();
  await shutdown(runtime, ending.reason, { writesWithinMs: life.writesBudgetMs(), stage: (stage) => life.at(stage) });
  life.at("closing the HTTP server");
  await server.app?.close().catch(() => undefined);
  life.at("closing the database");
  await database.close().catch(() => undefined);
  return ending;
}

/**
 * `backfill --days N`: fetches only what is missing of the last N days (the audit finds the gaps);
 * exit 0 when every range is loaded, 1 when some are not, 128 + signal when stopped. `--json`: what it
 * found and did as one JSON object on stdout at the end (the log stays on stderr).
 */
async function runBackfill(runtime: BotRuntime, command: { days: number; json: boolean }, life: Lifecycle): Promise<Ending> {
  const now = runtime.market.now();
  warnBeyondRetention(runtime, command.days, now);
  const report = await repairHistory(runtime, {
    startFor: daysBack(now, command.days),
    after: true,
    tty: Boolean(process.stderr.isTTY) && !command.json,
    signal: life.stopping,
  });
  if (!report.stopped) runtime.logger.info("backfill: what the audit found missing and the repair fetched", repairFields(report));
  if (command.json) process.stdout.write(`${JSON.stringify({ exchange: runtime.market.id, days: command.days, until: new Date(now).toISOString(), ...report })}\n`);
  if (report.stopped) return { code: life.signal ? signalExitCode(life.signal) : EXIT_CODES.failed, reason: life.signal ? "signal during backfill" : "error" };
  return report.failed.length > 0 ? { code: EXIT_CODES.failed, reason: "backfill failed" } : { code: EXIT_CODES.done, reason: "backfill finished" };
}

/** `backfill --days N` reaching past CANDLE_RETENTION_DAYS: the repair stops at the retention (the next pass would delete the rest), said once per timeframe. */
function warnBeyondRetention(runtime: BotRuntime, days: number, now: number): void {
  const startFor = daysBack(now, days);
  for (const timeframe of runtime.timeframes) {
    const firstKept = firstKeptCandle(runtime.config.retention, timeframe, now);
    if (firstKept === undefined || startFor(timeframe) >= firstKept) continue;
    runtime.logger.warn("backfill --days reaches past CANDLE_RETENTION_DAYS: this timeframe is loaded back to its retention only", {
      timeframe,
      days,
      retentionDays: runtime.config.retention.candleDays[timeframe],
      from: new Date(firstKept).toISOString(),
    });
  }
}

/**
 * The bot: health endpoint, the recent history, then ticks until --ticks are done or a stop is
 * requested, with the rest of the history audited and repaired, and what the retention no longer
 * keeps removed, in the background meanwhile.
 */
async function runBot(runtime: BotRuntime, config: BotConfig, ticks: number | undefined, life: Lifecycle, server: { app?: FastifyInstance }): Promise<Ending> {
  const stopped = (): Ending => ({ code: EXIT_CODES.done, reason: "signal" });
  // Health first (the platform probes it during a long backfill), then missing
  // history, so the strategy has enough candles from the first tick.
  server.app = await startServer(runtime, config.server);
  const tty = Boolean(process.stderr.isTTY);
  await loadRecentHistory(runtime, tty, life.stopping);
  if (life.stopping.aborted) return stopped();
  const address = server.app.server.address();
  runtime.logger.info("bot running", { coins: runtime.symbols.length, tickIntervalMs: config.tick.intervalMs, port: typeof address === "object" && address ? address.port : config.server.port });
  // The background repair ends with the loop (--ticks done) or a stop, whichever comes first.
  const loopEnded = new AbortController();
  const background = AbortSignal.any([life.stopping, loopEnded.signal]);
  const history = keepHistory(runtime, { intervalMs: config.history.auditIntervalMs, signal: background });
  const retention = keepRetention(runtime, { signal: background });
  // A stop lets the current tick finish, within the shutdown's bound for the final writes.
  const loop = await life.settle(runLoop(runtime, { ticks, signal: life.stopping }));
  if (loop === undefined) runtime.logger.error("the current tick did not finish in time; shutting down without it");
  loopEnded.abort();
  if ((await life.settle(history)) === undefined) runtime.logger.error("the background history repair did not stop in time; shutting down without it");
  if ((await life.settle(retention)) === undefined) runtime.logger.error("the background retention pass did not stop in time; shutting down without it");
  return life.stopping.aborted ? stopped() : { code: EXIT_CODES.done, reason: "ticks done" };
}

main(process.argv.slice(2));
