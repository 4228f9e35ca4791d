import { formatBytes, tableStorageHealth, type IndexHealth, type TableStorageHealth } from "@candlekeep/db";
import type { Check, CheckOutcome } from "../check";

/**
 * How the candles are kept on disk. Warns, naming the command that
 * fixes it, when autovacuum cannot clean the table, when dead rows wait for a
 * VACUUM, and when the primary key has grown well past its rebuilt size (the
 * bot writes one candle per series per tick, in the middle of the index, so
 * its pages split and stay about half full).
 */

const TABLE = "candles";
/** Dead rows past this share of the live rows are worth a VACUUM: autovacuum's own default trigger (autovacuum_vacuum_scale_factor). */
export const DEAD_ROWS_SHARE = 0.2;
/** Fewer dead rows than this are not worth a warning, whatever their share. */
export const DEAD_ROWS_MIN = 10_000;
/** An index this many times its rebuilt size is bloated: the bot's write order leaves it at ~1.7×. */
export const BLOAT_RATIO = 1.5;
/** Less room than this to win back is not worth a REINDEX. */
export const BLOAT_MIN_BYTES = 16 * 1024 * 1024;

const VACUUM = `VACUUM (ANALYZE) ${TABLE}`;
const ratio = (index: IndexHealth) => index.bytes / Math.max(1, index.packedBytes ?? 1);
/** "120 dead rows beside 1000 live (12 %)". */
const deadBesideLive = (rows: { dead: number; live: number }) =>
  `${rows.dead} dead rows beside ${rows.live} live${rows.live > 0 ? ` (${Math.round((100 * rows.dead) / rows.live)} %)` : ""}`;
/** Small indexes in kB: formatBytes would call them "0 MB". */
const size = (bytes: number) => (bytes < 1024 * 1024 ? `${Math.ceil(bytes / 1024)} kB` : formatBytes(bytes));
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");

interface Finding {
  /** What is wrong, in a few words, for the summary. */
  problem: string;
  /** What is wrong and exactly what to run, for the details. */
  detail: string;
  /** The commands that fix it, for --json. */
  actions: string[];
}

function autovacuumFindings(health: TableStorageHealth): Finding[] {
  const findings: Finding[] = [];
  if (!health.autovacuum.server) {
    findings.push({
      problem: "autovacuum is off on the server",
      detail:
        `autovacuum is off on the server: dead rows of ${TABLE} are never cleaned up and its statistics go stale. ` +
        `Turn it on in the server's settings (autovacuum = on in postgresql.conf, or ALTER SYSTEM SET autovacuum = on; SELECT pg_reload_conf();); until then run ${VACUUM} regularly`,
      actions: ["ALTER SYSTEM SET autovacuum = on", "SELECT pg_reload_conf()", VACUUM],
    });
  }
  if (health.autovacuum.table === false) {
    const alter = `ALTER TABLE ${TABLE} SET (autovacuum_enabled = true)`;
    findings.push({
      problem: `autovacuum is disabled for ${TABLE}`,
      detail: `autovacuum is disabled for ${TABLE} (autovacuum_enabled = false): run ${alter}`,
      actions: [alter],
    });
  }
  return findings;
}

function deadRowsFinding(rows: NonNullable<TableStorageHealth["rows"]>): Finding | undefined {
  if (rows.dead < DEAD_ROWS_MIN || rows.dead <= DEAD_ROWS_SHARE * rows.live) return undefined;
  const vacuumed = rows.lastVacuumAt === null ? "never vacuumed" : `last vacuumed ${iso(rows.lastVacuumAt)}`;
  return {
    problem: `${rows.dead} dead rows`,
    detail: `${deadBesideLive(rows)} in ${TABLE}, ${vacuumed}: run ${VACUUM}`,
    actions: [VACUUM],
  };
}

function bloatFinding(index: IndexHealth): Finding | undefined {
  if (index.packedBytes === undefined || ratio(index) < BLOAT_RATIO || index.bytes - index.packedBytes < BLOAT_MIN_BYTES) return undefined;
  const reindex = `REINDEX INDEX CONCURRENTLY ${index.name}`;
  return {
    problem: `${index.name} is ${ratio(index).toFixed(1)}× its rebuilt size`,
    detail:
      `${index.name} is ${size(index.bytes)}, ${ratio(index).toFixed(1)}× the ~${size(index.packedBytes)} a rebuilt index takes for ${index.liveRows ?? 0} live rows: ` +
      `run ${reindex} (writes go on meanwhile; it needs about ${size(index.packedBytes)} free while it runs)`,
    actions: [reindex],
  };
}

function indexLine(index: IndexHealth | undefined): string {
  if (index === undefined) return `${TABLE} has no primary key`;
  if (index.packedBytes === undefined) return `${index.name}: ${size(index.bytes)}; not compared with a rebuilt index: no row count for ${TABLE} yet (${VACUUM} gives one)`;
  return `${index.name}: ${size(index.bytes)}, ${ratio(index).toFixed(1)}× a rebuilt index for ${index.liveRows ?? 0} live rows`;
}

const notApplicable: CheckOutcome = {
  status: "skip",
  summary: "not applicable on the embedded engine: it runs no autovacuum and keeps no row statistics between runs",
  details: [
    "autovacuum: not applicable (the embedded engine is PostgreSQL in single-user mode, which has no autovacuum)",
    "dead rows and index size: not applicable (its row statistics start from zero every time it opens)",
  ],
};

export const storageCheck: Check = async ({ db }) => {
  if (db.kind === "embedded") return notApplicable;
  const health = await tableStorageHealth(db, TABLE);
  const deadRows = health.rows && deadRowsFinding(health.rows);
  const bloat = health.primaryKey && bloatFinding(health.primaryKey);
  const findings = [...autovacuumFindings(health), ...(deadRows ? [deadRows] : []), ...(bloat ? [bloat] : [])];

  const lines = findings.map((f) => f.detail);
  if (health.autovacuum.server && health.autovacuum.table !== false) lines.push(`autovacuum: on for ${TABLE}`);
  if (!deadRows) {
    lines.push(health.rows ? `dead rows: ${deadBesideLive(health.rows)}` : `dead rows: no statistics for ${TABLE} yet`);
  }
  if (!bloat) lines.push(indexLine(health.primaryKey));

  const data = {
    table: TABLE,
    autovacuum: health.autovacuum,
    liveRows: health.rows?.live ?? null,
    deadRows: health.rows?.dead ?? null,
    lastVacuumAt: health.rows === undefined || health.rows.lastVacuumAt === null ? null : iso(health.rows.lastVacuumAt),
    primaryKey: health.primaryKey ?? null,
    thresholds: { deadRowsShare: DEAD_ROWS_SHARE, deadRowsMin: DEAD_ROWS_MIN, bloatRatio: BLOAT_RATIO, bloatMinBytes: BLOAT_MIN_BYTES },
    actions: [...new Set(findings.flatMap((f) => f.actions))],
  };
  if (findings.length > 0) {
    return { status: "warn", summary: `${TABLE} needs maintenance: ${findings.map((f) => f.problem).join("; ")} (the lines below say what to run)`, details: lines, data };
  }
  const rows = health.rows ? `${health.rows.dead} dead rows` : "no row statistics yet";
  const index = health.primaryKey?.packedBytes === undefined ? "" : `, ${health.primaryKey.name} ${ratio(health.primaryKey).toFixed(1)}× its rebuilt size`;
  return { status: "pass", summary: `${TABLE}: autovacuum on, ${rows}${index}`, details: lines, data };
};
