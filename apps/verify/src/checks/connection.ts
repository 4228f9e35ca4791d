import path from "node:path";
import { UserFacingError, describeError, redactText, type Logger } from "@candlekeep/core";
import { embeddedDatabaseExists, openDatabase, serverInfo, type Database } from "@candlekeep/db";
import type { CheckOutcome } from "../check";
import type { VerifyConfig } from "../config";

/** verify runs one statement at a time; two connections cover the pool and the round-trip session. */
const POOL_MAX = 2;

/**
 * Check 1: opens the database exactly as the bot does (same URL validation and
 * retry), except that it neither applies nor requires migrations: the
 * migrations check reports them instead. On success the open database is
 * handed to the other checks.
 */
export async function connectionCheck(config: VerifyConfig, logger: Logger): Promise<{ outcome: CheckOutcome; db: Database | undefined }> {
  const { database } = config;
  if (database.url === undefined && !embeddedDatabaseExists(database.dataDir)) {
    // Opening would create an empty database there: not what someone checking a deployment wants.
    const dir = path.resolve(database.dataDir, "pgdata");
    return {
      db: undefined,
      outcome: {
        status: "fail",
        summary: `DATABASE_URL is unset and there is no embedded database in ${dir}. Set DATABASE_URL to the bot's PostgreSQL server, or CANDLEKEEP_DATA_DIR to the bot's data directory.`,
      },
    };
  }
  let db: Database;
  try {
    db = await openDatabase({
      databaseUrl: database.url,
      caCert: database.caCert,
      poolMax: POOL_MAX,
      dataDir: database.dataDir,
      autoMigrate: false,
      checkMigrations: false,
      retry: database.retry,
      logger,
      migrationsDir: database.migrationsDir,
    });
  } catch (error) {
    // The db package's errors are written for the operator (and never hold the password); anything else gets one line too.
    logger.debug("connection failure details", { stack: redactText(error instanceof Error ? (error.stack ?? "") : "") });
    const summary = error instanceof UserFacingError ? error.message : `Cannot open the database: ${describeError(error)}`;
    return { db: undefined, outcome: { status: "fail", summary: redactText(summary) } };
  }
  try {
    const info = await serverInfo(db);
    const engine = db.kind === "embedded" ? info.description : `PostgreSQL ${info.version}`;
    return {
      db,
      outcome: {
        status: "pass",
        summary: `${engine}${db.kind === "embedded" ? `, ${db.target}` : ` at ${db.target}`}; round trip ${info.latencyMs.toFixed(1)} ms`,
        data: { kind: db.kind, target: db.target, version: info.version, description: info.description, latencyMs: Number(info.latencyMs.toFixed(3)) },
      },
    };
  } catch (error) {
    await db.close().catch(() => undefined);
    return { db: undefined, outcome: { status: "fail", summary: `Connected to ${db.target}, but a first query failed: ${describeError(error)}` } };
  }
}
