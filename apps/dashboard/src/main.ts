import { InvalidSettingsError, createLogger, describeError, redactText, UserFacingError } from "@candlekeep/core";
import { DATABASE_READ_URL, createDb, trackedCoins, type LazyDatabase, type TrackedCoins } from "@candlekeep/db";
import type { DashboardSource } from "./api";
import { assertProtected } from "./auth";
import { loadDashboardConfig, type DashboardConfig } from "./config";
import { registerDashboard } from "./dashboard";
import { createHttpServer } from "./http-server";

/**
 * The dashboard on its own, against any database the settings name (the bot's
 * DATABASE_URL / CANDLEKEEP_DATA_DIR). It answers while the database server is
 * down (the page says since when). Exit codes: 1 start-up failed (the embedded
 * database held by another process, the port taken), 2 bad settings (a malformed
 * DATABASE_URL, an exposed DASHBOARD_HOST without DASHBOARD_TOKEN).
 */
async function main(): Promise<number> {
  let config: DashboardConfig;
  try {
    config = loadDashboardConfig(process.env, Boolean(process.stderr.isTTY));
  } catch (error) {
    process.stderr.write(`${error instanceof InvalidSettingsError ? error.message : describeError(error)}\n`);
    return 2;
  }
  try {
    // Before opening anything: an exposed address without a token is a settings mistake.
    assertProtected(config.server.host, config.server.token);
  } catch (error) {
    process.stderr.write(`${describeError(error)}\n`);
    return 2;
  }
  const logger = createLogger({ level: config.log.level, format: config.log.format, defaultMeta: { service: "dashboard" } });
  // A few connections are plenty for the dashboard's reads.
  const poolMax = Math.min(config.database.poolMax, 5);
  const app = createHttpServer({ poolMax, logger });
  // Read-only: never migrate; an out-of-date database is shown as such on the system panel.
  // Opened on first use and again after a failed open: a database server that is down (or
  // not up yet) is reported on the page and retried on each request, not a reason to exit.
  // With DATABASE_READ_URL it reads the replica only: the dashboard writes nothing.
  const readsReplica = config.database.readUrl !== undefined;
  let database: LazyDatabase;
  try {
    database = createDb({
      databaseUrl: config.database.readUrl ?? config.database.url,
      databaseUrlSetting: readsReplica ? DATABASE_READ_URL : "DATABASE_URL",
      caCert: config.database.caCert,
      poolMax,
      dataDir: config.database.dataDir,
      autoMigrate: false,
      checkMigrations: false,
      retry: { retries: 0, initialDelayMs: 0 },
      logger,
    });
  } catch (error) {
    // A malformed DATABASE_URL (the message never holds the password).
    logger.error(describeError(error));
    return 2;
  }
  const databaseKind = config.database.url === undefined ? "embedded" : "server";
  try {
    await database.get().catch((error: unknown) => {
      // The embedded database fails to open only when another process holds it: a mistake to report, not an outage to wait out.
      if (databaseKind === "embedded") throw error;
      logger.warn(`${error instanceof UserFacingError ? error.message : redactText(describeError(error))} The dashboard starts anyway and tries again on each request.`);
    });
    // The coin list changes only with top:N; re-reading it every few seconds would cost a query per poll.
    let coins: { at: number; value: TrackedCoins } | undefined;
    const source: DashboardSource = {
      db: () => database.get(),
      databaseKind,
      exchange: config.exchange,
      timeframes: config.timeframes,
      coins: async () => {
        if (coins === undefined || Date.now() - coins.at > 60_000) {
          coins = { at: Date.now(), value: await trackedCoins(await database.get(), { exchange: config.exchange, selection: config.symbols, timeframes: config.timeframes }) };
        }
        return coins.value;
      },
      staleAfterPeriods: config.staleAfterPeriods,
      gapWindowCandles: config.gapWindowCandles,
      storageBudgetBytes: config.storageBudgetBytes,
      logger,
    };
    await registerDashboard(app, { source, host: config.server.host, token: config.server.token });
    await app.listen({ host: config.server.host, port: config.server.port });
  } catch (error) {
    logger.error(error instanceof UserFacingError ? error.message : `dashboard failed to start: ${redactText(describeError(error))}`);
    await app.close().catch(() => undefined);
    await database.close().catch(() => undefined);
    return 1;
  }
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : config.server.port;
  logger.info(`dashboard on http://${config.server.host.includes(":") ? `[${config.server.host}]` : config.server.host}:${port}/`, {
    database: databaseKind,
    ...(readsReplica ? { reads: `the read replica (${DATABASE_READ_URL})` } : {}),
    exchange: config.exchange,
    auth: config.server.token ? "token" : "none (loopback only)",
  });

  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  await app.close();
  await database.close();
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`dashboard: ${redactText(describeError(error))}\n`);
    process.exit(1);
  },
);
