import type { Database } from "./connect";
import { readWithoutJit } from "./sql";

/**
 * How big each table of the schema is and how fast it grows, for verify's
 * storage check and the dashboard's system panel. Sizes come from the
 * catalogue (table, indexes and TOAST, every partition); growth from the rows'
 * own timestamps: the rows of the last days, counted through an index that
 * holds the time column, scaled by the table's bytes per row. Cost follows the
 * recent rows and the index's leading groups, never the whole table: a table
 * past `exactCountMaxBytes` is not counted row by row either.
 */

/** A table whose rows accumulate, with the column saying when each row came. */
export interface GrowingTable {
  table: string;
  timeColumn: string;
}

/** A table whose rows are replaced rather than added: its size follows what the bot tracks, not time. */
export interface BoundedTable {
  table: string;
  bounded: string;
}

export type TableGrowthSpec = GrowingTable | BoundedTable;

/** Every table of the schema, in the order reports list them. */
export const SCHEMA_TABLES: readonly TableGrowthSpec[] = [
  // A candle's own time: a backfill writes years of candles in minutes, while the bot adds one per series and period.
  { table: "candles", timeColumn: "open_time" },
  { table: "decision_traces", timeColumn: "time" },
  { table: "system_events", timeColumn: "time" },
  { table: "trades", timeColumn: "exit_time" },
  { table: "positions", bounded: "one row per open position" },
  { table: "orders", timeColumn: "created_at" },
  { table: "account_state", timeColumn: "time" },
  { table: "series_audit", bounded: "one row per series" },
  { table: "candle_gaps", timeColumn: "found_at" },
];

/** Rows counted one by one, the planner's statistics scaled to the table's pages now, or a sample of pages. */
export type RowsSource = "counted" | "statistics" | "sample";

export type Growth =
  | {
      kind: "measured";
      timeColumn: string;
      /** The index the recent rows were counted through; undefined: the table is small enough to read whole. */
      index: string | undefined;
      /** The start of the window: the older of `windowDays` ago and the oldest row; null for an empty table. */
      since: Date | null;
      windowDays: number;
      /** Rows whose time is at or after `since`. */
      rows: number;
      rowsPerDay: number;
      bytesPerDay: number;
    }
  | { kind: "bounded"; reason: string }
  | { kind: "unmeasured"; reason: string };

export interface TableGrowth {
  table: string;
  /** Table, indexes and TOAST on disk, over every partition. */
  bytes: number;
  rows: number;
  rowsSource: RowsSource;
  growth: Growth;
}

export interface DatabaseGrowth {
  /** pg_database_size: every table, index and the catalogue (the write-ahead log is outside it). */
  databaseBytes: number;
  tables: TableGrowth[];
  /** The measured tables' growth added up. */
  bytesPerDay: number;
}

export interface GrowthOptions {
  /** The clock the window ends at. */
  nowMs: number;
  /** Days of rows the growth is averaged over (default GROWTH_WINDOW_DAYS). */
  windowDays?: number;
  /** Tables up to this many heap bytes are counted row by row (default EXACT_COUNT_MAX_BYTES). */
  exactCountMaxBytes?: number;
}

export const GROWTH_WINDOW_DAYS = 7;
/** count(*) over 16 MB of heap takes a few milliseconds; past it the catalogue's estimate is used. */
export const EXACT_COUNT_MAX_BYTES = 16 * 1024 * 1024;
/** Rows spanning less than this say little about a day: a start-up's burst would be taken for the daily rate. */
export const MIN_GROWTH_SPAN_MS = 60 * 60 * 1000;
/** Heap pages a sample reads when the table has no statistics (the embedded engine keeps none): a few MB. */
const SAMPLE_PAGES = 200;
const DAY_MS = 24 * 60 * 60 * 1000;

const quoteIdentifier = (name: string) => `"${name.replace(/"/g, '""')}"`;

interface SizeRow {
  total_bytes: string | number;
  heap_bytes: string | number;
  page_size: string | number;
  unanalysed: string | number;
  estimated_rows: string | number;
}

// A partitioned table keeps nothing itself: its partitions (pg_partition_tree, empty for a plain table) hold the rows.
// reltuples / relpages × the pages now is how the planner scales statistics taken when the table was smaller.
const SIZE_SQL = `WITH tree AS (SELECT $1::text::regclass AS relid UNION SELECT relid FROM pg_partition_tree($1::text::regclass))
SELECT sum(pg_total_relation_size(c.oid))::float8 AS total_bytes,
  sum(pg_relation_size(c.oid))::float8 AS heap_bytes,
  current_setting('block_size')::int AS page_size,
  count(*) FILTER (WHERE c.relkind <> 'p' AND pg_relation_size(c.oid) > 0 AND (c.reltuples < 0 OR c.relpages = 0))::int AS unanalysed,
  sum(CASE WHEN c.relkind = 'p' OR c.relpages = 0 OR c.reltuples < 0 THEN 0
      ELSE c.reltuples / c.relpages * (pg_relation_size(c.oid) / current_setting('block_size')::int) END)::float8 AS estimated_rows
FROM tree JOIN pg_class c ON c.oid = tree.relid`;

interface IndexRow {
  name: string;
  columns: (string | null)[];
  not_null: boolean[];
}

// Plain B-tree indexes (no predicate) and their key columns in order; an expression key has no name.
const INDEXES_SQL = `SELECT i.relname::text AS name,
  array_agg(a.attname::text ORDER BY k.position) AS columns,
  array_agg(coalesce(a.attnotnull, false) ORDER BY k.position) AS not_null
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_am am ON am.oid = i.relam
CROSS JOIN LATERAL unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, position)
LEFT JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum AND k.attnum > 0
WHERE x.indrelid = $1::text::regclass AND x.indisvalid AND x.indpred IS NULL AND am.amname = 'btree' AND k.position <= x.indnkeyatts
GROUP BY i.relname`;

/**
 * The index to count recent rows through: one holding `timeColumn` after the
 * fewest leading columns, all NOT NULL (a NULL group would be skipped). Each
 * distinct value of those leading columns costs one probe.
 */
function timeIndex(indexes: readonly IndexRow[], timeColumn: string): { name: string; groups: string[] } | undefined {
  const usable = indexes.flatMap((index) => {
    const position = index.columns.indexOf(timeColumn);
    const groups = index.columns.slice(0, position);
    const notNull = index.not_null.slice(0, position).every(Boolean);
    return position >= 0 && notNull && groups.every((c): c is string => c !== null) ? [{ name: index.name, groups }] : [];
  });
  usable.sort((a, b) => a.groups.length - b.groups.length || a.name.localeCompare(b.name));
  return usable[0];
}

/**
 * SQL giving the oldest time of `table` (`oldest_ms`), or with `since` ($1) the rows at or after
 * it (`rows`). With leading `groups`, their distinct values are found by skipping through the index
 * (one probe each), and each group's oldest row and recent rows are ranges of it. Two statements,
 * so the count is planned knowing `since`: with it unknown, the planner guessed a third of the
 * table and read all of it instead of the index's recent range.
 */
function growthSql(table: string, timeColumn: string, groups: readonly string[], read: "oldest" | "rows"): string {
  const t = quoteIdentifier(table);
  const time = `r.${quoteIdentifier(timeColumn)}`;
  const oldestMs = (expression: string) => `(extract(epoch FROM ${expression}) * 1000)::float8 AS oldest_ms`;
  if (groups.length === 0) {
    return read === "oldest" ? `SELECT ${oldestMs(`min(${time})`)} FROM ${t} AS r` : `SELECT count(*)::float8 AS rows FROM ${t} AS r WHERE ${time} >= $1::timestamptz`;
  }
  const quoted = groups.map(quoteIdentifier);
  const list = (alias: string) => quoted.map((c) => `${alias}.${c}`).join(", ");
  const sameGroup = quoted.map((c) => `r.${c} = prefixes.${c}`).join(" AND ");
  const prefixes = `WITH RECURSIVE prefixes AS (
  (SELECT ${list("r")} FROM ${t} AS r ORDER BY ${list("r")} LIMIT 1)
  UNION ALL
  SELECT ${list("next")} FROM prefixes AS previous
  CROSS JOIN LATERAL (SELECT ${list("r")} FROM ${t} AS r WHERE (${list("r")}) > (${list("previous")}) ORDER BY ${list("r")} LIMIT 1) AS next
)`;
  return read === "oldest"
    ? `${prefixes} SELECT ${oldestMs("min(first.time)")} FROM prefixes CROSS JOIN LATERAL (SELECT min(${time}) AS time FROM ${t} AS r WHERE ${sameGroup}) AS first`
    : `${prefixes} SELECT coalesce(sum(recent.rows), 0)::float8 AS rows FROM prefixes CROSS JOIN LATERAL (SELECT count(*) AS rows FROM ${t} AS r WHERE ${sameGroup} AND ${time} >= $1::timestamptz) AS recent`;
}

async function countRows(db: Pick<Database, "kind" | "sql" | "session">, table: string, size: SizeRow, exactCountMaxBytes: number): Promise<{ rows: number; source: RowsSource }> {
  const heapBytes = Number(size.heap_bytes);
  const t = quoteIdentifier(table);
  if (heapBytes <= exactCountMaxBytes) {
    const [row] = await readWithoutJit<{ rows: number }>(db, `SELECT count(*)::float8 AS rows FROM ${t}`, []);
    return { rows: Number(row?.rows ?? 0), source: "counted" };
  }
  if (Number(size.unanalysed) === 0) return { rows: Math.round(Number(size.estimated_rows)), source: "statistics" };
  // No statistics (never analysed, or the embedded engine): whole pages picked at random, scaled up.
  const percent = Math.min(100, (100 * SAMPLE_PAGES) / Math.max(1, heapBytes / Number(size.page_size)));
  const [row] = await readWithoutJit<{ rows: number }>(db, `SELECT count(*)::float8 AS rows FROM ${t} TABLESAMPLE SYSTEM ($1) REPEATABLE (0)`, [percent]);
  return { rows: Math.round((Number(row?.rows ?? 0) * 100) / percent), source: "sample" };
}

const minutes = (ms: number) => `${Math.max(0, Math.round(ms / 60_000))} minutes`;

async function measureGrowth(
  db: Pick<Database, "kind" | "sql" | "session">,
  spec: GrowingTable,
  sizes: { bytes: number; rows: number; heapBytes: number },
  options: Required<GrowthOptions>,
): Promise<Growth> {
  const indexes = (await db.sql.query<IndexRow>(INDEXES_SQL, [quoteIdentifier(spec.table)])).rows;
  const index = timeIndex(indexes, spec.timeColumn);
  if (index === undefined && sizes.heapBytes > options.exactCountMaxBytes) {
    return { kind: "unmeasured", reason: `no index holds ${spec.timeColumn} to count the recent rows by, and the table is too big to read whole on every run` };
  }
  const groups = index?.groups ?? [];
  const [oldest] = await readWithoutJit<{ oldest_ms: number | null }>(db, growthSql(spec.table, spec.timeColumn, groups, "oldest"), []);
  const oldestMs = oldest?.oldest_ms ?? null;
  const common = { kind: "measured" as const, timeColumn: spec.timeColumn, index: index?.name };
  if (oldestMs === null) return { ...common, since: null, windowDays: 0, rows: 0, rowsPerDay: 0, bytesPerDay: 0 };
  const sinceMs = Math.max(options.nowMs - options.windowDays * DAY_MS, Number(oldestMs));
  const spanMs = options.nowMs - sinceMs;
  if (spanMs < MIN_GROWTH_SPAN_MS) {
    return { kind: "unmeasured", reason: `its rows span ${minutes(options.nowMs - oldestMs)}: growth is measured once they span an hour` };
  }
  const [counted] = await readWithoutJit<{ rows: number }>(db, growthSql(spec.table, spec.timeColumn, groups, "rows"), [new Date(sinceMs)]);
  const rows = Number(counted?.rows ?? 0);
  const windowDays = spanMs / DAY_MS;
  const rowsPerDay = rows / windowDays;
  // Statistics may lag behind the rows just counted: never more bytes per row than the table holds.
  const bytesPerRow = sizes.bytes / Math.max(1, sizes.rows, rows);
  return { ...common, since: new Date(sinceMs), windowDays, rows, rowsPerDay, bytesPerDay: rowsPerDay * bytesPerRow };
}

/** The size, rows and growth per day of one table (in the current schema). */
export async function tableGrowth(db: Pick<Database, "kind" | "sql" | "session">, spec: TableGrowthSpec, options: GrowthOptions): Promise<TableGrowth> {
  const settings: Required<GrowthOptions> = { windowDays: GROWTH_WINDOW_DAYS, exactCountMaxBytes: EXACT_COUNT_MAX_BYTES, ...options };
  const size = (await db.sql.query<SizeRow>(SIZE_SQL, [quoteIdentifier(spec.table)])).rows[0];
  if (size === undefined) throw new Error(`table ${spec.table} not found`);
  const { rows, source } = await countRows(db, spec.table, size, settings.exactCountMaxBytes);
  const bytes = Number(size.total_bytes);
  const growth: Growth =
    "bounded" in spec ? { kind: "bounded", reason: spec.bounded } : await measureGrowth(db, spec, { bytes, rows, heapBytes: Number(size.heap_bytes) }, settings);
  return { table: spec.table, bytes, rows, rowsSource: source, growth };
}

/** The database's size and each table of the schema's size, rows and growth per day. */
export async function databaseGrowth(db: Pick<Database, "kind" | "sql" | "session">, options: GrowthOptions): Promise<DatabaseGrowth> {
  const [database] = (await db.sql.query<{ bytes: string | number }>("SELECT pg_database_size(current_database())::float8 AS bytes")).rows;
  const tables: TableGrowth[] = [];
  // One after another: the embedded engine has one connection, and a server need not be asked for eight at once.
  for (const spec of SCHEMA_TABLES) tables.push(await tableGrowth(db, spec, options));
  const bytesPerDay = tables.reduce((sum, t) => sum + (t.growth.kind === "measured" ? t.growth.bytesPerDay : 0), 0);
  return { databaseBytes: Number(database?.bytes ?? 0), tables, bytesPerDay };
}
