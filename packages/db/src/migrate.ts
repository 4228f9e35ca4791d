import { createHash, randomUUID } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { describeError, type Logger } from "@candlekeep/core";
import type { Database } from "./connect";
import { MigrationError, MigrationsPendingError } from "./errors";
import { inTransaction, type SqlRunner } from "./sql";

/**
 * Applies prisma/migrations/<name>/migration.sql the way `prisma migrate deploy`
 * does (which cannot run on our offline machines), with identical bookkeeping in
 * `_prisma_migrations`, so either tool sees the other's work as applied.
 */

export const DEFAULT_MIGRATIONS_DIR = path.resolve(__dirname, "../../../prisma/migrations");

// The advisory lock key Prisma Migrate itself takes: our applier and
// `prisma migrate deploy` exclude each other, not just two bots.
const PRISMA_MIGRATE_LOCK_KEY = 72707369;

// Exactly the table Prisma's migration engine creates.
const CREATE_MIGRATIONS_TABLE = `
CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)`;

export interface MigrationFile {
  name: string;
  sql: string;
  /** Lowercase sha256 hex of the file's bytes, as Prisma records it. */
  checksum: string;
}

export interface MigrationStatus {
  applied: string[];
  pending: string[];
  /** Applied, but the file on disk no longer matches the recorded checksum. */
  modified: string[];
  /** Started and never finished (a failed `prisma migrate deploy`). */
  failed: string[];
  /** Recorded as applied but absent from the migrations directory. */
  unknown: string[];
}

interface MigrationRow {
  migration_name: string;
  checksum: string;
  finished_at: Date | null;
}

export function readMigrationFiles(dir: string = DEFAULT_MIGRATIONS_DIR): MigrationFile[] {
  if (!fs.existsSync(dir)) {
    throw new MigrationError(`Migrations directory ${dir} does not exist; run from a full checkout of the repository.`);
  }
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && fs.existsSync(path.join(dir, entry.name, "migration.sql")))
    .map((entry) => entry.name)
    .sort()
    .map((name) => {
      const bytes = fs.readFileSync(path.join(dir, name, "migration.sql"));
      return { name, sql: bytes.toString("utf8"), checksum: createHash("sha256").update(bytes).digest("hex") };
    });
}

async function readMigrationRows(sql: SqlRunner): Promise<MigrationRow[] | undefined> {
  const exists = await sql.query<{ present: boolean }>(`SELECT to_regclass('"_prisma_migrations"') IS NOT NULL AS present`);
  if (!exists.rows[0]?.present) return undefined;
  const result = await sql.query<MigrationRow>(
    `SELECT migration_name, checksum, finished_at FROM "_prisma_migrations" WHERE rolled_back_at IS NULL ORDER BY started_at`,
  );
  return result.rows;
}

function compare(files: MigrationFile[], rows: MigrationRow[]): MigrationStatus {
  const finished = new Map(rows.filter((row) => row.finished_at !== null).map((row) => [row.migration_name, row]));
  const onDisk = new Set(files.map((file) => file.name));
  return {
    applied: files.filter((file) => finished.has(file.name)).map((file) => file.name),
    pending: files.filter((file) => !finished.has(file.name) && !rows.some((row) => row.migration_name === file.name)).map((file) => file.name),
    modified: files.filter((file) => {
      const row = finished.get(file.name);
      return row !== undefined && row.checksum !== file.checksum;
    }).map((file) => file.name),
    failed: rows.filter((row) => row.finished_at === null && !finished.has(row.migration_name)).map((row) => row.migration_name),
    unknown: [...finished.keys()].filter((name) => !onDisk.has(name)),
  };
}

/** Compares the migrations directory with `_prisma_migrations`; read-only. */
export async function migrationStatus(db: Pick<Database, "sql">, options: { migrationsDir?: string | undefined } = {}): Promise<MigrationStatus> {
  const files = readMigrationFiles(options.migrationsDir);
  return compare(files, (await readMigrationRows(db.sql)) ?? []);
}

function assertHealthy(status: MigrationStatus): void {
  if (status.failed.length > 0) {
    throw new MigrationError(
      `Migration ${status.failed.join(", ")} failed earlier and was never finished. Repair the database by hand, then mark it with \`prisma migrate resolve --rolled-back <name>\` (or --applied) before starting again.`,
    );
  }
  if (status.modified.length > 0) {
    throw new MigrationError(
      `Migration ${status.modified.join(", ")} was changed after it was applied (checksum differs). Restore the original migration.sql and put the change in a new migration.`,
    );
  }
}

/** Throws MigrationsPendingError when the database is behind the migrations directory. */
export async function assertNoPendingMigrations(db: Pick<Database, "sql">, options: { migrationsDir?: string | undefined } = {}): Promise<void> {
  const status = await migrationStatus(db, options);
  assertHealthy(status);
  if (status.pending.length > 0) {
    throw new MigrationsPendingError(
      status.pending,
      `The database has ${status.pending.length} pending migration(s): ${status.pending.join(", ")}. Run \`pnpm --filter @candlekeep/db db:migrate:deploy\` (prisma migrate deploy) or start with AUTO_MIGRATE=true.`,
    );
  }
}

async function applyOne(connection: SqlRunner, file: MigrationFile, logger: Logger): Promise<void> {
  const id = randomUUID();
  // Both times come from the database's clock, as Prisma's do, so they stay ordered
  // even when this machine's clock differs from the server's.
  const startedAt = (await connection.query<{ at: string }>("SELECT clock_timestamp()::text AS at")).rows[0]?.at;
  try {
    await inTransaction(connection, async () => {
      await connection.exec(file.sql);
      await connection.query(
        `INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, applied_steps_count)
         VALUES ($1, $2, clock_timestamp(), $3, NULL, NULL, $4::timestamptz, 1)`,
        [id, file.checksum, file.name, startedAt],
      );
    });
    logger.info("migration applied", { migration: file.name });
  } catch (error) {
    // The transaction undid every statement, so the attempt is recorded as rolled
    // back: Prisma then treats the migration as not applied and retries it.
    await connection
      .query(
        `INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, applied_steps_count)
         VALUES ($1, $2, NULL, $3, $4, clock_timestamp(), $5::timestamptz, 0)`,
        [id, file.checksum, file.name, describeError(error), startedAt],
      )
      .catch(() => undefined);
    throw new MigrationError(`Migration ${file.name} failed and was rolled back: ${describeError(error)}`);
  }
}

/**
 * Applies pending migrations in name order, one transaction each, under Prisma's
 * advisory lock. Refuses to run when an applied migration's file has changed.
 * Returns the names it applied.
 */
export async function applyMigrations(
  db: Pick<Database, "session">,
  options: { logger: Logger; migrationsDir?: string | undefined },
): Promise<string[]> {
  const files = readMigrationFiles(options.migrationsDir);
  return db.session(async (connection) => {
    await connection.query("SELECT pg_advisory_lock($1)", [PRISMA_MIGRATE_LOCK_KEY]);
    try {
      await connection.exec(CREATE_MIGRATIONS_TABLE);
      const status = compare(files, (await readMigrationRows(connection)) ?? []);
      assertHealthy(status);
      for (const name of status.unknown) {
        options.logger.warn("database has a migration that is not in the migrations directory", { migration: name });
      }
      const pending = files.filter((file) => status.pending.includes(file.name));
      for (const file of pending) await applyOne(connection, file, options.logger);
      return pending.map((file) => file.name);
    } finally {
      await connection.query("SELECT pg_advisory_unlock($1)", [PRISMA_MIGRATE_LOCK_KEY]);
    }
  });
}
