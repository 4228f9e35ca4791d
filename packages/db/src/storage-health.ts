import type { Database } from "./connect";

/**
 * How a table is kept on disk, for verify's storage check: whether autovacuum
 * may clean it, how many dead rows wait for a VACUUM, and how its primary key
 * compares with the same index rebuilt. Read from the catalogue and the
 * server's statistics; needs no extension (pgstattuple may not be installed).
 * The embedded engine keeps no statistics across runs and runs no autovacuum,
 * so the figures only mean something on a server.
 */

export interface TableStorageHealth {
  table: string;
  /**
   * The server's `autovacuum` setting, and the table's autovacuum_enabled
   * storage parameter (undefined when not set: the server's setting applies).
   */
  autovacuum: { server: boolean; table: boolean | undefined };
  /** From the server's statistics; undefined while it has none for the table (never written, analysed or vacuumed since a reset). */
  rows: { live: number; dead: number; lastVacuumAt: number | null } | undefined;
  /** The table's primary key; undefined when it has none. */
  primaryKey: IndexHealth | undefined;
}

export interface IndexHealth {
  name: string;
  bytes: number;
  /**
   * What the index would take rebuilt (REINDEX) for the table's live rows: leaf
   * pages filled to its fillfactor, as an index build fills them, plus the
   * levels above. undefined when it cannot be estimated (no row count yet, not
   * a B-tree, or a key that is an expression).
   */
  packedBytes: number | undefined;
  /** The live rows the estimate is for. */
  liveRows: number | undefined;
}

interface TableRow {
  server_autovacuum: string;
  table_autovacuum: boolean | null;
  page_size: number | string;
  heap_bytes: string | number;
  reltuples: number | string;
  live: string | number | null;
  dead: string | number | null;
  activity: string | number | null;
  last_vacuum_ms: string | number | null;
  index_oid: number | string | null;
  index_name: string | null;
  index_bytes: string | number | null;
  index_method: string | null;
  index_fillfactor: number | string | null;
}

interface KeyColumnRow {
  name: string | null;
  length: number | string;
  align: string;
}

// pg_options_to_table gives each storage parameter as written: the text-to-boolean cast reads it as the server did.
const TABLE_SQL = `SELECT current_setting('autovacuum') AS server_autovacuum,
  (SELECT option_value::boolean FROM pg_options_to_table(c.reloptions) WHERE option_name = 'autovacuum_enabled') AS table_autovacuum,
  current_setting('block_size')::int AS page_size,
  pg_relation_size(c.oid) AS heap_bytes,
  c.reltuples,
  s.n_live_tup AS live,
  s.n_dead_tup AS dead,
  s.n_tup_ins + s.n_tup_upd + s.n_tup_del + s.vacuum_count + s.autovacuum_count + s.analyze_count + s.autoanalyze_count AS activity,
  (extract(epoch from greatest(s.last_vacuum, s.last_autovacuum)) * 1000)::int8 AS last_vacuum_ms,
  i.oid AS index_oid,
  i.relname AS index_name,
  pg_relation_size(i.oid) AS index_bytes,
  am.amname AS index_method,
  (SELECT option_value::int FROM pg_options_to_table(i.reloptions) WHERE option_name = 'fillfactor') AS index_fillfactor
FROM pg_class c
LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
LEFT JOIN pg_index x ON x.indrelid = c.oid AND x.indisprimary
LEFT JOIN pg_class i ON i.oid = x.indexrelid
LEFT JOIN pg_am am ON am.oid = i.relam
WHERE c.oid = $1::regclass`;

// Every column an index entry holds (key and INCLUDE), in order; a key that is an expression has no attribute (null name).
const KEY_COLUMNS_SQL = `SELECT a.attname AS name, coalesce(a.attlen, -2) AS length, coalesce(a.attalign, 'c') AS align
FROM pg_index x
CROSS JOIN LATERAL unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, position)
LEFT JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum AND k.attnum > 0
WHERE x.indexrelid = $1::oid
ORDER BY k.position`;

/** B-tree page layout (PostgreSQL's nbtree): page header, the B-tree's special space, an entry's line pointer. */
const PAGE_HEADER_BYTES = 24;
const BTREE_SPECIAL_BYTES = 16;
const LINE_POINTER_BYTES = 4;
/** Index entry header: the heap row's address and the entry's size. */
const INDEX_TUPLE_HEADER_BYTES = 8;
const MAX_ALIGN = 8;
const BTREE_DEFAULT_FILLFACTOR = 90;
/** An index build leaves 30 % of each page above the leaves free. */
const BTREE_NONLEAF_FILLFACTOR = 70;
/** Heap pages read to measure the average entry: enough for a steady average, a few MB at most on any table. */
const SAMPLE_PAGES = 200;
const ALIGNMENT: Readonly<Record<string, number>> = { c: 1, s: 2, i: 4, d: 8 };

const quoteIdentifier = (name: string) => `"${name.replace(/"/g, '""')}"`;
const optionalNumber = (value: string | number | null) => (value === null ? undefined : Number(value));

/**
 * SQL for the bytes one index entry of a row takes on a leaf page: header,
 * the columns at their alignment, padded to MAXALIGN, plus its line pointer.
 * Key text is short (a 1-byte length header, stored unaligned), as in every
 * index of ours. undefined for a column whose size cannot be read this way.
 */
function entryBytesSql(columns: readonly KeyColumnRow[]): string | undefined {
  let offset = String(INDEX_TUPLE_HEADER_BYTES);
  for (const column of columns) {
    const length = Number(column.length);
    if (column.name === null || length < -1 || length === 0) return undefined;
    if (length === -1) {
      offset = `(${offset} + pg_column_size(${quoteIdentifier(column.name)}))`;
    } else {
      const align = ALIGNMENT[column.align] ?? MAX_ALIGN;
      offset = `((${offset} + ${align - 1}) / ${align} * ${align} + ${length})`;
    }
  }
  return `((${offset} + ${MAX_ALIGN - 1}) / ${MAX_ALIGN} * ${MAX_ALIGN} + ${LINE_POINTER_BYTES})`;
}

/** Pages of a B-tree built for `rows` entries of `entryBytes`: leaves at `fillfactor`, the levels above at 70 %, and the metapage. */
function packedBtreePages(rows: number, entryBytes: number, pageSize: number, fillfactor = BTREE_DEFAULT_FILLFACTOR): number {
  const usable = pageSize - PAGE_HEADER_BYTES - BTREE_SPECIAL_BYTES;
  const perPage = (fill: number) => Math.max(2, Math.floor((usable - Math.floor((pageSize * (100 - fill)) / 100)) / entryBytes));
  let level = Math.max(1, Math.ceil(rows / perPage(fillfactor)));
  let pages = level;
  while (level > 1) {
    level = Math.ceil(level / perPage(BTREE_NONLEAF_FILLFACTOR));
    pages += level;
  }
  return pages + 1;
}

/** The average leaf entry of `index`, measured on a page sample of `table` (or its first rows when the sample finds none). */
async function averageEntryBytes(db: Pick<Database, "sql">, table: string, indexOid: number, heapPages: number): Promise<number | undefined> {
  const columns = (await db.sql.query<KeyColumnRow>(KEY_COLUMNS_SQL, [indexOid])).rows;
  const entry = entryBytesSql(columns);
  if (entry === undefined) return undefined;
  const percent = Math.min(100, (100 * SAMPLE_PAGES) / Math.max(1, heapPages));
  const sampled = await db.sql.query<{ bytes: number | string | null }>(`SELECT avg(${entry})::float8 AS bytes FROM ${quoteIdentifier(table)} TABLESAMPLE SYSTEM ($1) REPEATABLE (0)`, [percent]);
  const bytes = sampled.rows[0]?.bytes ?? null;
  if (bytes !== null) return Number(bytes);
  const first = await db.sql.query<{ bytes: number | string | null }>(`SELECT avg(${entry})::float8 AS bytes FROM (SELECT * FROM ${quoteIdentifier(table)} LIMIT 1000) AS first_rows`);
  return optionalNumber(first.rows[0]?.bytes ?? null);
}

/** The storage health of `table` (in the current schema) and its primary key. */
export async function tableStorageHealth(db: Pick<Database, "sql">, table: string): Promise<TableStorageHealth> {
  const row = (await db.sql.query<TableRow>(TABLE_SQL, [quoteIdentifier(table)])).rows[0];
  if (!row) throw new Error(`table ${table} not found`);
  const pageSize = Number(row.page_size);
  // The statistics are all zero until the table is written, analysed or vacuumed (or again after a reset).
  const hasStatistics = Number(row.activity ?? 0) > 0;
  const rows = hasStatistics ? { live: Number(row.live), dead: Number(row.dead), lastVacuumAt: optionalNumber(row.last_vacuum_ms) ?? null } : undefined;
  // reltuples is -1 until the first VACUUM, ANALYZE or index build.
  const liveRows = rows?.live ?? (Number(row.reltuples) >= 0 ? Number(row.reltuples) : undefined);

  let primaryKey: IndexHealth | undefined;
  if (row.index_name !== null) {
    let packedBytes: number | undefined;
    if (liveRows !== undefined && row.index_method === "btree") {
      const entryBytes = liveRows === 0 ? 0 : await averageEntryBytes(db, table, Number(row.index_oid), Number(row.heap_bytes) / pageSize);
      const fillfactor = optionalNumber(row.index_fillfactor) ?? BTREE_DEFAULT_FILLFACTOR;
      packedBytes = entryBytes === undefined ? undefined : packedBtreePages(liveRows, Math.max(1, entryBytes), pageSize, fillfactor) * pageSize;
    }
    primaryKey = { name: row.index_name, bytes: Number(row.index_bytes), packedBytes, liveRows };
  }
  return {
    table,
    autovacuum: { server: row.server_autovacuum === "on", table: row.table_autovacuum ?? undefined },
    rows,
    primaryKey,
  };
}
