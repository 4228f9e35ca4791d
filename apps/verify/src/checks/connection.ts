import path from "node:path";
import { UserFacingError, describeError, redactText, type Logger } from "@candlekeep/core";
import { DATABASE_READ_URL, embeddedDatabaseExists, openDatabase, replicaState, serverInfo, type Database, type ReplicaState, type ServerInfo } from "@candlekeep/db";
import type { CheckOutcome } from "../check";
import type { VerifyConfig } from "../config";

/** verify runs one statement at a time; two connections cover the pool and the round-trip session. */
const POOL_MAX = 2;

/** What the connection check hands to the others: where they write (`db`) and where the read-only ones read (`readDb`, `db` itself without a replica). */
export interface Connections {
  outcome: CheckOutcome;
  db: Database | undefined;
  readDb: Database | undefined;
}

type Opened = { db: Database; info: ServerInfo } | { failure: string };

/**
 * Opens one database exactly as the bot does (same URL validation and retry),
 * except that it neither applies nor requires migrations: the migrations check
 * reports them instead.
 */
async function open(config: VerifyConfig, logger: Logger, url: string | undefined, setting: string): Promise<Opened> {
  const { database } = config;
  let db: Database;
  try {
    db = await openDatabase({
      databaseUrl: url,
      databaseUrlSetting: setting,
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
    logger.debug("connection failure details", { setting, stack: redactText(error instanceof Error ? (error.stack ?? "") : "") });
    return { failure: redactText(error instanceof UserFacingError ? error.message : `Cannot open the database: ${describeError(error)}`) };
  }
  try {
    return { db, info: await serverInfo(db) };
  } catch (error) {
    await db.close().catch(() => undefined);
    return { failure: `Connected to ${db.target}, but a first query failed: ${describeError(error)}` };
  }
}

const describeServer = ({ db, info }: { db: Database; info: ServerInfo }) =>
  `${db.kind === "embedded" ? `${info.description}, ${db.target}` : `PostgreSQL ${info.version} at ${db.target}`}; round trip ${info.latencyMs.toFixed(1)} ms`;

const serverData = ({ db, info }: { db: Database; info: ServerInfo }) => ({ kind: db.kind, target: db.target, version: info.version, description: info.description, latencyMs: Number(info.latencyMs.toFixed(3)) });

function describeReplica(state: ReplicaState): string {
  if (!state.standby) return "not a standby (a logical replica, or another server: verify cannot tell how far behind it is)";
  return state.replayLagMs === 0 || state.replayLagMs === undefined ? "a standby, caught up" : `a standby, ${(state.replayLagMs / 1000).toFixed(1)} s behind`;
}

/**
 * Check 1: opens the database (DATABASE_URL) and, when DATABASE_READ_URL is
 * set, the read replica too, and says how far behind the primary the replica
 * is. On success the open databases are handed to the other checks.
 */
export async function connectionCheck(config: VerifyConfig, logger: Logger): Promise<Connections> {
  const { database } = config;
  if (database.url === undefined && !embeddedDatabaseExists(database.dataDir)) {
    // Opening would create an empty database there: not what someone checking a deployment wants.
    const dir = path.resolve(database.dataDir, "pgdata");
    return {
      db: undefined,
      readDb: undefined,
      outcome: {
        status: "fail",
        summary: `DATABASE_URL is unset and there is no embedded database in ${dir}. Set DATABASE_URL to the bot's PostgreSQL server, or CANDLEKEEP_DATA_DIR to the bot's data directory.`,
      },
    };
  }
  const primary = await open(config, logger, database.url, "DATABASE_URL");
  if ("failure" in primary) return { db: undefined, readDb: undefined, outcome: { status: "fail", summary: primary.failure } };
  if (database.readUrl === undefined) {
    return { db: primary.db, readDb: primary.db, outcome: { status: "pass", summary: describeServer(primary), data: serverData(primary) } };
  }

  const replicaFailed = async (problem: string): Promise<Connections> => {
    await primary.db.close().catch(() => undefined);
    return { db: undefined, readDb: undefined, outcome: { status: "fail", summary: `read replica (${DATABASE_READ_URL}): ${problem}`, data: serverData(primary) } };
  };
  const replica = await open(config, logger, database.readUrl, DATABASE_READ_URL);
  if ("failure" in replica) return replicaFailed(replica.failure);
  let state: ReplicaState;
  try {
    state = await replicaState(replica.db);
  } catch (error) {
    await replica.db.close().catch(() => undefined);
    return replicaFailed(`connected to ${replica.db.target}, but reading its replication state failed: ${describeError(error)}`);
  }
  return {
    db: primary.db,
    readDb: replica.db,
    outcome: {
      status: "pass",
      summary: `${describeServer(primary)}; read-only checks read the replica, PostgreSQL ${replica.info.version} at ${replica.db.target}, ${describeReplica(state)}; round trip ${replica.info.latencyMs.toFixed(1)} ms`,
      data: { ...serverData(primary), replica: { ...serverData(replica), standby: state.standby, replayLagMs: state.replayLagMs === undefined ? null : Math.round(state.replayLagMs) } },
    },
  };
}
