import fs from "node:fs";
import path from "node:path";
import { performance } from "node:perf_hooks";
import type { Database } from "./connect";

/**
 * Read-only looks at the database itself (server version, latency, catalogue),
 * for tools that check a deployment (verify) rather than use the data.
 */

export interface ServerInfo {
  /** e.g. "15.20" (server) or "18.6" (the embedded engine's PostgreSQL). */
  version: string;
  /** The first part of version(), e.g. "PostgreSQL 18.6 (PGlite 0.5.16)". */
  description: string;
  /** Median of a few `SELECT 1` round trips, in milliseconds. */
  latencyMs: number;
}

const LATENCY_SAMPLES = 3;

export async function serverInfo(db: Pick<Database, "sql">): Promise<ServerInfo> {
  const samples: number[] = [];
  for (let i = 0; i < LATENCY_SAMPLES; i += 1) {
    const started = performance.now();
    await db.sql.query("SELECT 1");
    samples.push(performance.now() - started);
  }
  samples.sort((a, b) => a - b);
  const result = await db.sql.query<{ version: string; full: string }>(`SELECT current_setting('server_version') AS version, version() AS full`);
  const row = result.rows[0];
  const version = (row?.version ?? "unknown").split(" ")[0] ?? "unknown";
  // version() continues with the compiler and platform, which nobody needs in a one-line report.
  const description = (row?.full ?? `PostgreSQL ${version}`).split(/ on |, compiled by /)[0] ?? `PostgreSQL ${version}`;
  return { version, description, latencyMs: samples[Math.floor(samples.length / 2)] ?? 0 };
}

export interface ReplicaState {
  /** True on a hot standby: a server replaying another's write-ahead log (pg_is_in_recovery()). */
  standby: boolean;
  /**
   * A standby's delay: 0 when it has replayed all it received, else the age of
   * the newest transaction it replayed, in ms; undefined on a server that is no standby.
   */
  replayLagMs: number | undefined;
}

/** Whether the server is a hot standby, and how far it is behind the primary (for a read replica). */
export async function replicaState(db: Pick<Database, "sql">): Promise<ReplicaState> {
  // An idle primary sends nothing new: a standby that replayed all it received is not behind, however old its last transaction.
  const result = await db.sql.query<{ standby: boolean; lag_ms: number | string | null }>(
    `SELECT pg_is_in_recovery() AS standby,
            CASE WHEN NOT pg_is_in_recovery() THEN NULL
                 WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
                 ELSE greatest(0, extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp()) * 1000) END AS lag_ms`,
  );
  const row = result.rows[0];
  return { standby: row?.standby === true, replayLagMs: row?.lag_ms == null ? undefined : Number(row.lag_ms) };
}

export interface ColumnInfo {
  table: string;
  column: string;
  /** information_schema's data_type: "text", "numeric", "USER-DEFINED", "ARRAY", … */
  dataType: string;
  /** The underlying type name: "int4", "numeric", an enum's name, "_text" for text[]. */
  udtName: string;
  nullable: boolean;
  hasDefault: boolean;
  numericPrecision: number | null;
  numericScale: number | null;
}

interface ColumnRow {
  table_name: string;
  column_name: string;
  data_type: string;
  udt_name: string;
  is_nullable: string;
  column_default: string | null;
  is_identity: string;
  numeric_precision: number | string | null;
  numeric_scale: number | string | null;
}

const optionalNumber = (value: number | string | null) => (value === null ? null : Number(value));

/** Columns of the given tables in the current schema, in table order; absent tables have none. */
export async function tableColumns(db: Pick<Database, "sql">, tables: readonly string[]): Promise<ColumnInfo[]> {
  const result = await db.sql.query<ColumnRow>(
    `SELECT table_name, column_name, data_type, udt_name, is_nullable, column_default, is_identity, numeric_precision, numeric_scale
     FROM information_schema.columns
     WHERE table_schema = current_schema() AND table_name = ANY($1::text[])
     ORDER BY table_name, ordinal_position`,
    [[...tables]],
  );
  return result.rows.map((row) => ({
    table: row.table_name,
    column: row.column_name,
    dataType: row.data_type,
    udtName: row.udt_name,
    nullable: row.is_nullable === "YES",
    hasDefault: row.column_default !== null || row.is_identity === "YES",
    numericPrecision: optionalNumber(row.numeric_precision),
    numericScale: optionalNumber(row.numeric_scale),
  }));
}

/** Enum types of the current schema with their labels in declaration order. */
export async function enumTypes(db: Pick<Database, "sql">): Promise<Map<string, string[]>> {
  const result = await db.sql.query<{ name: string; label: string }>(
    `SELECT t.typname AS name, e.enumlabel AS label
     FROM pg_type t
     JOIN pg_enum e ON e.enumtypid = t.oid
     JOIN pg_namespace n ON n.oid = t.typnamespace
     WHERE n.nspname = current_schema()
     ORDER BY t.typname, e.enumsortorder`,
  );
  const enums = new Map<string, string[]>();
  for (const row of result.rows) enums.set(row.name, [...(enums.get(row.name) ?? []), row.label]);
  return enums;
}

/**
 * Whether an embedded database has been created under `dataDir`. Opening a
 * missing one would silently create an empty database, which a read-only tool
 * must not do. (The `pgdata` subdirectory is where openDatabase puts it.)
 */
export function embeddedDatabaseExists(dataDir: string): boolean {
  return fs.existsSync(path.join(path.resolve(dataDir, "pgdata"), "PG_VERSION"));
}
