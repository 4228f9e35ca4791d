import { createHash, randomUUID } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { silentLogger } from "@candlekeep/core";
import { openDatabase, type Database, type DatabaseKind } from "./connect";
import { MigrationError, MigrationsPendingError } from "./errors";
import { applyMigrations, assertNoPendingMigrations, DEFAULT_MIGRATIONS_DIR, migrationStatus } from "./migrate";
import type { SqlRunner } from "./sql";
import { createTestDatabase, DATABASE_KINDS, NO_RETRY, rejection, type TestDatabase } from "./testing";

/** The migrations in the repository, read independently of the code under test. */
const REPO_MIGRATIONS = fs
  .readdirSync(DEFAULT_MIGRATIONS_DIR, { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .map((entry) => entry.name)
  .sort();
const FIRST_MIGRATION = REPO_MIGRATIONS[0] ?? "";
const sha256 = (file: string) => createHash("sha256").update(fs.readFileSync(file)).digest("hex");

/** The DDL `prisma migrate deploy` runs for its bookkeeping table. */
const PRISMA_MIGRATIONS_DDL = `CREATE TABLE _prisma_migrations (
    id                      VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum                VARCHAR(64) NOT NULL,
    finished_at             TIMESTAMPTZ,
    migration_name          VARCHAR(255) NOT NULL,
    logs                    TEXT,
    rolled_back_at          TIMESTAMPTZ,
    started_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_steps_count     INTEGER NOT NULL DEFAULT 0
)`;

interface PrismaMigrationRow {
  id: string;
  checksum: string;
  finished_at: Date | null;
  migration_name: string;
  logs: string | null;
  rolled_back_at: Date | null;
  started_at: Date;
  applied_steps_count: number;
}

/** What `prisma migrate deploy` concludes from the table (its own query and rules). */
async function prismaDeployView(sql: SqlRunner, migrationsDir: string) {
  const rows = (
    await sql.query<PrismaMigrationRow>(
      `SELECT id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, applied_steps_count FROM _prisma_migrations ORDER BY started_at ASC`,
    )
  ).rows;
  const onDisk = fs.readdirSync(migrationsDir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort();
  const applied = (name: string) => rows.some((r) => r.migration_name === name && r.finished_at !== null && r.rolled_back_at === null);
  return {
    pending: onDisk.filter((name) => !applied(name)),
    failed: rows.filter((r) => r.finished_at === null && r.rolled_back_at === null).map((r) => r.migration_name),
    edited: onDisk.filter((name) => rows.some((r) => r.migration_name === name && r.finished_at !== null && r.rolled_back_at === null && r.checksum !== sha256(path.join(migrationsDir, name, "migration.sql")))),
  };
}

function copyMigrations(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "candlekeep-migrations-"));
  fs.cpSync(DEFAULT_MIGRATIONS_DIR, dir, { recursive: true });
  return dir;
}

function addMigration(dir: string, name: string, sql: string): void {
  fs.mkdirSync(path.join(dir, name), { recursive: true });
  fs.writeFileSync(path.join(dir, name, "migration.sql"), sql);
}

async function tableExists(sql: SqlRunner, table: string): Promise<boolean> {
  const result = await sql.query<{ present: boolean }>("SELECT to_regclass($1) IS NOT NULL AS present", [table]);
  return result.rows[0]?.present === true;
}

async function rowsOf(sql: SqlRunner): Promise<PrismaMigrationRow[]> {
  return (await sql.query<PrismaMigrationRow>(`SELECT * FROM _prisma_migrations ORDER BY started_at, migration_name`)).rows;
}

/**
 * Fresh, unmigrated databases of one kind with cleanup. Each test opens its own,
 * so one test's migrations never leak into another's.
 */
function scratch(kind: DatabaseKind) {
  const open: Database[] = [];
  const created: TestDatabase[] = [];
  const dirs: string[] = [];
  return {
    async database(): Promise<TestDatabase> {
      const testDb = await createTestDatabase(kind);
      created.push(testDb);
      return testDb;
    },
    /** Opens without applying or checking migrations. */
    async open(testDb: TestDatabase, options: { autoMigrate?: boolean; migrationsDir?: string } = {}): Promise<Database> {
      const db = await openDatabase({
        databaseUrl: testDb.url,
        dataDir: testDb.dataDir,
        autoMigrate: options.autoMigrate ?? false,
        checkMigrations: options.autoMigrate === undefined ? false : true,
        migrationsDir: options.migrationsDir,
        logger: silentLogger,
        retry: NO_RETRY,
      });
      open.push(db);
      return db;
    },
    migrationsCopy(): string {
      const dir = copyMigrations();
      dirs.push(dir);
      return dir;
    },
    async cleanup(): Promise<void> {
      for (const db of open.splice(0)) await db.close();
      for (const testDb of created.splice(0)) await testDb.drop();
      for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe.each(DATABASE_KINDS)("migrations on the %s engine", (kind) => {
  const env = scratch(kind);
  afterEach(async () => {
    await env.cleanup();
  });

  it("applies every migration once, and a second run applies nothing", async () => {
    const db = await env.open(await env.database());
    expect(await applyMigrations(db, { logger: silentLogger })).toEqual(REPO_MIGRATIONS);
    expect(await applyMigrations(db, { logger: silentLogger })).toEqual([]);
    expect((await rowsOf(db.sql)).map((r) => r.migration_name)).toEqual(REPO_MIGRATIONS);
    expect(await migrationStatus(db)).toEqual({ applied: REPO_MIGRATIONS, pending: [], modified: [], failed: [], unknown: [] });
  });

  it("reports every migration pending on a database that was never migrated, without creating anything", async () => {
    const db = await env.open(await env.database());
    expect((await migrationStatus(db)).pending).toEqual(REPO_MIGRATIONS);
    expect(await tableExists(db.sql, "_prisma_migrations")).toBe(false);
  });

  it("creates _prisma_migrations with exactly Prisma's columns and types", async () => {
    const db = await env.open(await env.database());
    await applyMigrations(db, { logger: silentLogger });
    const columns = await db.sql.query<{ column_name: string; data_type: string; max_length: number | null; is_nullable: string; column_default: string | null }>(
      `SELECT column_name, data_type, character_maximum_length AS max_length, is_nullable, column_default
       FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = '_prisma_migrations' ORDER BY ordinal_position`,
    );
    expect(columns.rows.map((c) => ({ ...c, max_length: c.max_length === null ? null : Number(c.max_length) }))).toEqual([
      { column_name: "id", data_type: "character varying", max_length: 36, is_nullable: "NO", column_default: null },
      { column_name: "checksum", data_type: "character varying", max_length: 64, is_nullable: "NO", column_default: null },
      { column_name: "finished_at", data_type: "timestamp with time zone", max_length: null, is_nullable: "YES", column_default: null },
      { column_name: "migration_name", data_type: "character varying", max_length: 255, is_nullable: "NO", column_default: null },
      { column_name: "logs", data_type: "text", max_length: null, is_nullable: "YES", column_default: null },
      { column_name: "rolled_back_at", data_type: "timestamp with time zone", max_length: null, is_nullable: "YES", column_default: null },
      { column_name: "started_at", data_type: "timestamp with time zone", max_length: null, is_nullable: "NO", column_default: "now()" },
      { column_name: "applied_steps_count", data_type: "integer", max_length: null, is_nullable: "NO", column_default: "0" },
    ]);
    const primaryKey = await db.sql.query<{ column_name: string }>(
      `SELECT a.attname AS column_name FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
       WHERE i.indrelid = '_prisma_migrations'::regclass AND i.indisprimary`,
    );
    expect(primaryKey.rows).toEqual([{ column_name: "id" }]);
  });

  it("records each migration as Prisma does: sha256 of the file bytes, finished, no logs, not rolled back, one step", async () => {
    const db = await env.open(await env.database());
    const before = new Date(Date.now() - 1000);
    await applyMigrations(db, { logger: silentLogger });
    const rows = await rowsOf(db.sql);
    expect(rows).toHaveLength(REPO_MIGRATIONS.length);
    for (const [i, name] of REPO_MIGRATIONS.entries()) {
      const row = rows[i];
      expect(row).toMatchObject({
        migration_name: name,
        checksum: sha256(path.join(DEFAULT_MIGRATIONS_DIR, name, "migration.sql")),
        logs: null,
        rolled_back_at: null,
        applied_steps_count: 1,
      });
      expect(row?.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      expect(row?.checksum).toMatch(/^[0-9a-f]{64}$/);
      expect(row?.finished_at).toBeInstanceOf(Date);
      expect(row?.started_at.getTime()).toBeGreaterThanOrEqual(before.getTime());
      expect(row?.finished_at?.getTime()).toBeGreaterThanOrEqual(row?.started_at.getTime() ?? Number.POSITIVE_INFINITY);
    }
  });

  it("refuses to run when an applied migration was edited, naming it", async () => {
    const dir = env.migrationsCopy();
    const testDb = await env.database();
    const db = await env.open(testDb);
    await applyMigrations(db, { logger: silentLogger, migrationsDir: dir });
    fs.appendFileSync(path.join(dir, FIRST_MIGRATION, "migration.sql"), "\n-- an edit after it was applied\n");

    const error = await rejection(applyMigrations(db, { logger: silentLogger, migrationsDir: dir }));
    expect(error).toBeInstanceOf(MigrationError);
    expect(error.message).toContain(FIRST_MIGRATION);
    expect(error.message).toMatch(/changed after it was applied/);
    expect(error.message).toMatch(/new migration/);
    expect((await migrationStatus(db, { migrationsDir: dir })).modified).toEqual([FIRST_MIGRATION]);
    await expect(assertNoPendingMigrations(db, { migrationsDir: dir })).rejects.toBeInstanceOf(MigrationError);
    expect(await rowsOf(db.sql)).toHaveLength(REPO_MIGRATIONS.length);
    await db.close();
    await expect(env.open(testDb, { autoMigrate: true, migrationsDir: dir })).rejects.toThrow(FIRST_MIGRATION);
  });

  it("reports a new migration as pending, refuses to open with autoMigrate false, and applies it with autoMigrate true", async () => {
    const dir = env.migrationsCopy();
    const testDb = await env.database();
    const db = await env.open(testDb);
    await applyMigrations(db, { logger: silentLogger, migrationsDir: dir });
    const added = "29990101000000_add_notes";
    addMigration(dir, added, `CREATE TABLE "notes" ("id" SERIAL PRIMARY KEY, "body" TEXT NOT NULL);\n`);

    expect(await migrationStatus(db, { migrationsDir: dir })).toEqual({ applied: REPO_MIGRATIONS, pending: [added], modified: [], failed: [], unknown: [] });
    const error = await rejection(assertNoPendingMigrations(db, { migrationsDir: dir }));
    expect(error).toBeInstanceOf(MigrationsPendingError);
    expect(error instanceof MigrationsPendingError && error.pending).toEqual([added]);
    expect(error.message).toContain(added);
    expect(error.message).toMatch(/AUTO_MIGRATE=true|migrate deploy/);
    await db.close();

    await expect(env.open(testDb, { autoMigrate: false, migrationsDir: dir })).rejects.toBeInstanceOf(MigrationsPendingError);
    const migrated = await env.open(testDb, { autoMigrate: true, migrationsDir: dir });
    expect(await tableExists(migrated.sql, "notes")).toBe(true);
    expect((await migrationStatus(migrated, { migrationsDir: dir })).pending).toEqual([]);
  });

  it("rolls a broken migration back entirely, records it as rolled back, and applies it once fixed", async () => {
    const dir = env.migrationsCopy();
    const db = await env.open(await env.database());
    await applyMigrations(db, { logger: silentLogger, migrationsDir: dir });
    const broken = "29990101000000_add_partial";
    addMigration(dir, broken, `CREATE TABLE "partial_a" ("id" INTEGER);\nCREATE TABLE "partial_b" ("id" INTEGER REFERENCES "no_such_table" ("id"));\n`);

    const error = await rejection(applyMigrations(db, { logger: silentLogger, migrationsDir: dir }));
    expect(error).toBeInstanceOf(MigrationError);
    expect(error.message).toContain(broken);
    expect(error.message).toMatch(/no_such_table/);
    expect(await tableExists(db.sql, "partial_a")).toBe(false);
    const attempt = (await rowsOf(db.sql)).filter((r) => r.migration_name === broken);
    expect(attempt).toHaveLength(1);
    expect(attempt[0]).toMatchObject({ finished_at: null, applied_steps_count: 0, logs: expect.stringMatching(/no_such_table/) });
    expect(attempt[0]?.rolled_back_at).toBeInstanceOf(Date);
    expect(await migrationStatus(db, { migrationsDir: dir })).toMatchObject({ pending: [broken], failed: [] });
    expect((await prismaDeployView(db.sql, dir)).failed).toEqual([]);

    addMigration(dir, broken, `CREATE TABLE "partial_a" ("id" INTEGER);\nCREATE TABLE "partial_b" ("id" INTEGER);\n`);
    expect(await applyMigrations(db, { logger: silentLogger, migrationsDir: dir })).toEqual([broken]);
    expect(await tableExists(db.sql, "partial_b")).toBe(true);
    expect(await migrationStatus(db, { migrationsDir: dir })).toMatchObject({ pending: [], failed: [], modified: [] });
  });

  it("sees a database migrated by `prisma migrate deploy` as up to date and applies nothing", async () => {
    const db = await env.open(await env.database());
    await db.sql.exec(PRISMA_MIGRATIONS_DDL);
    for (const name of REPO_MIGRATIONS) {
      const file = path.join(DEFAULT_MIGRATIONS_DIR, name, "migration.sql");
      // A failed first attempt that `prisma migrate resolve --rolled-back` marked, then the real run.
      await db.sql.query(
        `INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, applied_steps_count)
         VALUES ($1, $2, NULL, $3, 'Database error: something went wrong', now(), now() - interval '1 hour', 0)`,
        [randomUUID(), sha256(file), name],
      );
      const id = randomUUID();
      await db.sql.query(`INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at, applied_steps_count) VALUES ($1, $2, $3, now(), 0)`, [id, sha256(file), name]);
      await db.sql.exec(fs.readFileSync(file, "utf8"));
      await db.sql.query(`UPDATE _prisma_migrations SET finished_at = now(), applied_steps_count = applied_steps_count + 1 WHERE id = $1`, [id]);
    }
    expect(await applyMigrations(db, { logger: silentLogger })).toEqual([]);
    expect(await migrationStatus(db)).toEqual({ applied: REPO_MIGRATIONS, pending: [], modified: [], failed: [], unknown: [] });
    await expect(assertNoPendingMigrations(db)).resolves.toBeUndefined();
    expect(await rowsOf(db.sql)).toHaveLength(2 * REPO_MIGRATIONS.length);
  });

  it("writes rows that `prisma migrate deploy` reads as applied: finished, not rolled back, same name and checksum", async () => {
    const db = await env.open(await env.database());
    await applyMigrations(db, { logger: silentLogger });
    expect(await prismaDeployView(db.sql, DEFAULT_MIGRATIONS_DIR)).toEqual({ pending: [], failed: [], edited: [] });
  });

  it("treats an unfinished migration left by a crashed `prisma migrate deploy` as failed and refuses to continue", async () => {
    const dir = env.migrationsCopy();
    const db = await env.open(await env.database());
    await applyMigrations(db, { logger: silentLogger, migrationsDir: dir });
    const crashed = "29990101000000_crashed";
    addMigration(dir, crashed, `CREATE TABLE "crashed" ("id" INTEGER);\n`);
    await db.sql.query(`INSERT INTO _prisma_migrations (id, checksum, migration_name, logs, applied_steps_count) VALUES ($1, $2, $3, 'connection lost', 0)`, [
      randomUUID(),
      sha256(path.join(dir, crashed, "migration.sql")),
      crashed,
    ]);
    expect(await migrationStatus(db, { migrationsDir: dir })).toMatchObject({ failed: [crashed], pending: [] });
    const error = await rejection(applyMigrations(db, { logger: silentLogger, migrationsDir: dir }));
    expect(error).toBeInstanceOf(MigrationError);
    expect(error.message).toContain(crashed);
    expect(error.message).toMatch(/prisma migrate resolve/);
    expect(await tableExists(db.sql, "crashed")).toBe(false);
  });
});

describe("migrations on the server engine under concurrency", () => {
  const env = scratch("server");
  afterAll(async () => {
    await env.cleanup();
  });

  it("leaves exactly one row per migration when two processes migrate at once (advisory lock)", async () => {
    const testDb = await env.database();
    const first = await env.open(testDb);
    const second = await env.open(testDb);
    const results = await Promise.allSettled([applyMigrations(first, { logger: silentLogger }), applyMigrations(second, { logger: silentLogger })]);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "fulfilled"]);
    const applied = results.flatMap((r) => (r.status === "fulfilled" ? r.value : []));
    expect(applied.sort()).toEqual(REPO_MIGRATIONS);
    const counts = await first.sql.query<{ migration_name: string; n: string }>(`SELECT migration_name, count(*) AS n FROM _prisma_migrations GROUP BY migration_name ORDER BY migration_name`);
    expect(counts.rows.map((r) => [r.migration_name, Number(r.n)])).toEqual(REPO_MIGRATIONS.map((name) => [name, 1]));
  });
});
