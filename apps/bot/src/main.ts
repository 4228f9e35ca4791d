import { TIMEFRAME_MS, UserFacingError, createLogger, describeError, redactText } from "@candlekeep/core";
import { backfill, backfillRecentHistory } from "./backfill";
import { loadConfig, USAGE, type BotConfig } from "./config";
import { runLoop, shutdown } from "./loop";
import { startServer } from "./server";
import { UnknownExchangeError, UnsupportedExchangeError, UnsupportedTimeframeError } from "./exchange/ccxt";
import { MissingApiKeysError } from "./exchange/live";
import { startBot, UnknownSymbolsError } from "./startup";

/** Exit codes: 0 done, 1 runtime failure (e.g. database unreachable), 2 bad configuration. */

/** Start-up failures that only a configuration change fixes, found once the exchange is known (exit 2). */
const CONFIGURATION_ERRORS = [UnknownExchangeError, UnsupportedExchangeError, UnsupportedTimeframeError, MissingApiKeysError, UnknownSymbolsError];

async function main(argv: readonly string[]): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  let config: BotConfig;
  try {
    config = loadConfig(process.env, argv, Boolean(process.stderr.isTTY));
  } catch (error) {
    process.stderr.write(`${describeError(error)}\n\n${USAGE}\n`);
    return 2;
  }
  const logger = createLogger({ level: config.log.level, format: config.log.format, defaultMeta: { service: "bot" } });

  const controller = new AbortController();
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals > 1) {
      logger.warn("second signal: exiting at once", { signal });
      process.exit(130);
    }
    logger.info("stopping after the current tick", { signal });
    controller.abort();
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);

  if (config.database.url === undefined && process.env.DATABASE_URL === "") {
    logger.warn("DATABASE_URL is empty: using the embedded database", { dataDir: config.database.dataDir });
  }

  let started: Awaited<ReturnType<typeof startBot>>;
  try {
    started = await startBot(config, logger, { signal: controller.signal });
  } catch (error) {
    // One clear line for what the operator can fix; details only at debug level.
    logger.error(error instanceof UserFacingError ? error.message : `start-up failed: ${describeError(error)}`);
    logger.debug("start-up failure details", { stack: redactText(error instanceof Error ? (error.stack ?? "") : "") });
    return CONFIGURATION_ERRORS.some((kind) => error instanceof kind) ? 2 : 1;
  }
  const { runtime, database } = started;
  try {
    if (config.command.kind === "backfill") {
      const days = config.command.days;
      const now = runtime.market.now();
      const report = await backfill(runtime, { startFor: (tf) => now - days * 86_400_000 - TIMEFRAME_MS[tf], tty: Boolean(process.stderr.isTTY) });
      await shutdown(runtime, "backfill finished");
      return report.failed.length > 0 ? 1 : 0;
    }
    // Health first (the platform probes it during a long backfill), then missing
    // history, so the strategy has enough candles from the first tick.
    const server = await startServer(runtime, config.server);
    await backfillRecentHistory(runtime, Boolean(process.stderr.isTTY));
    const address = server.server.address();
    logger.info("bot running", { coins: runtime.symbols.length, tickIntervalMs: config.tick.intervalMs, port: typeof address === "object" && address ? address.port : config.server.port });
    await runLoop(runtime, { ticks: config.command.ticks, signal: controller.signal });
    await shutdown(runtime, controller.signal.aborted ? "signal" : "ticks done");
    await server.close();
    return 0;
  } catch (error) {
    logger.error(error instanceof UserFacingError ? error.message : `bot failed: ${describeError(error)}`);
    return 1;
  } finally {
    await database.close().catch(() => undefined);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`fatal: ${redactText(describeError(error))}\n`);
    process.exit(1);
  },
);
