import { UserFacingError, isTimeframe, TIMEFRAME_MS, TIMEFRAMES, type Timeframe } from "@candlekeep/core";
import type { Database } from "./connect";
import { rangeOf, withoutKnown, withoutStored, type MissingRange } from "./gap-ranges";
import { scanStretches, type Stretch } from "./history-scan";
import { distinctValuesCte, readWithoutJit } from "./sql";

/**
 * The history audit: every series' stored candles checked for holes over its
 * whole history, incrementally. series_audit keeps per series the range already
 * audited (first_open_time … audited_until); candle_gaps the missing ranges
 * found in it. A later audit reads only candles stored outside that range, and
 * the candles inside the known gaps (a repair may have filled them).
 */

export interface CandleGap {
  exchange: string;
  symbol: string;
  timeframe: Timeframe;
  /** Open time (epoch ms) of the first missing candle. */
  fromTime: number;
  /** Open time of the last missing candle (inclusive). */
  toTime: number;
  /** Candles missing in the range. */
  missing: number;
  /** The exchange has no data for it (recorded once, not fetched again). */
  unavailable: boolean;
}

export interface SeriesAuditState {
  exchange: string;
  symbol: string;
  timeframe: Timeframe;
  /** The oldest stored candle when the series was audited. */
  firstOpenTime: number;
  /** Every candle from firstOpenTime up to this one is stored or listed as a gap. */
  auditedUntil: number;
  auditedAt: number;
}

export interface HistoryAuditResult {
  /** Series audited. */
  series: number;
  /** Candles read (first audit: all; repeat: only what is new). */
  scannedCandles: number;
  /** Gap ranges known after the audit (unavailable ones included). */
  gaps: number;
  /** Candles missing in those ranges (unavailable excluded). */
  missingCandles: number;
  ms: number;
}

/** Which series of an exchange: all of them, or only the given symbols and/or timeframes. */
export interface SeriesSelection {
  exchange: string;
  symbols?: readonly string[];
  timeframes?: readonly Timeframe[];
}

export interface AuditHistoryOptions extends SeriesSelection {
  /** Called after each read of a long audit: candle slots checked so far of those to check. */
  onProgress?: (done: number, total: number) => void;
  /**
   * Read every stored candle of the selection again, not only those outside the audited range: the
   * audit trusts that range, so candles removed behind it (by hand, or a restore from an older
   * backup) are found only this way. Known gaps and unavailable ranges stay known.
   */
  full?: boolean;
}

export interface CandleRange {
  exchange: string;
  symbol: string;
  timeframe: Timeframe;
  fromTime: number;
  toTime: number;
}

/** A history call was given a selection or range it cannot work with; the message says what to pass instead. */
export class InvalidHistoryRequestError extends UserFacingError {
  override readonly name = "InvalidHistoryRequestError";
}

type HistoryDb = Pick<Database, "kind" | "sql" | "session" | "logger">;

const TS = (msExpression: string) => `(timestamptz 'epoch' + (${msExpression}) * interval '1 millisecond')`;
const MS = (timeExpression: string) => `(extract(epoch from ${timeExpression}) * 1000)::int8`;
const toMs = (value: string | number | null): number | null => (value === null ? null : Number(value));

interface Selection {
  exchange: string;
  /** null: every symbol stored for the exchange. */
  symbols: string[] | null;
  timeframes: Timeframe[];
}

function selection(options: SeriesSelection, caller: string): Selection {
  if (typeof options.exchange !== "string" || options.exchange === "") {
    throw new InvalidHistoryRequestError(`${caller}: exchange is empty; pass the exchange id the candles are stored under (e.g. "binance").`);
  }
  const badSymbol = options.symbols?.find((symbol) => typeof symbol !== "string" || symbol === "");
  if (badSymbol !== undefined) throw new InvalidHistoryRequestError(`${caller}: symbols holds an empty symbol; pass symbols as stored (e.g. "BTC/USDT") or leave symbols out for all.`);
  const badTimeframe = options.timeframes?.find((timeframe) => !isTimeframe(timeframe));
  if (badTimeframe !== undefined) {
    throw new InvalidHistoryRequestError(`${caller}: unknown timeframe "${String(badTimeframe)}"; use ${TIMEFRAMES.join(", ")} or leave timeframes out for all.`);
  }
  return {
    exchange: options.exchange,
    symbols: options.symbols ? [...new Set(options.symbols)] : null,
    timeframes: options.timeframes ? [...new Set(options.timeframes)] : [...TIMEFRAMES],
  };
}

/** The WHERE of a table with exchange, symbol, timeframe columns, for the selection's parameters $1, $2, $3. */
const SELECTED = "exchange = $1 AND ($2::text[] IS NULL OR symbol = ANY($2::text[])) AND timeframe = ANY($3::text[])";
const selectionParams = (s: Selection) => [s.exchange, s.symbols, s.timeframes];

// ---------------------------------------------------------------------------------------------
// Reading

interface SeriesEnds {
  symbol: string;
  timeframe: Timeframe;
  /** Oldest stored candle. */
  first: number;
  /** Newest closed candle. */
  closed: number;
  auditedFirst: number | null;
  auditedUntil: number | null;
}

/**
 * Per selected series with a closed candle: its oldest stored candle, its newest
 * closed one and its audit state. Two probes of the primary key per series
 * (symbols found by skipping through it), however long the history.
 */
async function seriesEnds(db: HistoryDb, s: Selection): Promise<SeriesEnds[]> {
  const symbols = s.symbols === null ? `WITH RECURSIVE ${distinctValuesCte("symbols", "candles", "symbol", "exchange = $1")}` : "WITH symbols(value) AS (SELECT unnest($2::text[]))";
  const series = "c.exchange = $1 AND c.symbol = sy.value AND c.timeframe = t.timeframe";
  const rows = await readWithoutJit<{
    symbol: string;
    timeframe: Timeframe;
    first_ms: string | number;
    closed_ms: string | number;
    audited_first_ms: string | number | null;
    audited_until_ms: string | number | null;
  }>(
    db,
    `${symbols}
     SELECT sy.value AS symbol, t.timeframe, ${MS("f.open_time")} AS first_ms, ${MS("l.open_time")} AS closed_ms,
            ${MS("a.first_open_time")} AS audited_first_ms, ${MS("a.audited_until")} AS audited_until_ms
     FROM symbols sy
     CROSS JOIN unnest($3::text[]) AS t(timeframe)
     CROSS JOIN LATERAL (SELECT c.open_time FROM candles c WHERE ${series} ORDER BY c.open_time LIMIT 1) AS f
     CROSS JOIN LATERAL (SELECT c.open_time FROM candles c WHERE ${series} AND c.is_closed ORDER BY c.open_time DESC LIMIT 1) AS l
     LEFT JOIN series_audit a ON a.exchange = $1 AND a.symbol = sy.value AND a.timeframe = t.timeframe
     WHERE sy.value IS NOT NULL AND ($2::text[] IS NULL OR sy.value = ANY($2::text[]))
     ORDER BY sy.value, t.timeframe`,
    selectionParams(s),
  );
  return rows.map((row) => ({
    symbol: row.symbol,
    timeframe: row.timeframe,
    first: Number(row.first_ms),
    closed: Number(row.closed_ms),
    auditedFirst: toMs(row.audited_first_ms),
    auditedUntil: toMs(row.audited_until_ms),
  }));
}

/**
 * A stretch of one series to read: the candles strictly between `lo` and `hi`.
 * Both ends count as present: each is a stored candle (read with the series'
 * ends) or the edge of the range audited before.
 */
interface Segment extends Stretch {
  /** Ends that are stored candles outside the audited range: read by this audit. */
  newEnds: number;
}

/** What each series needs read: all of it the first time, later only what lies outside its audited range. */
function segmentsOf(ends: readonly SeriesEnds[]): Segment[] {
  const segments: Segment[] = [];
  for (const e of ends) {
    if (e.auditedFirst === null || e.auditedUntil === null) {
      segments.push({ symbol: e.symbol, timeframe: e.timeframe, lo: e.first, hi: e.closed, newEnds: e.first === e.closed ? 1 : 2 });
      continue;
    }
    if (e.first < e.auditedFirst) segments.push({ symbol: e.symbol, timeframe: e.timeframe, lo: e.first, hi: e.auditedFirst, newEnds: 1 });
    if (e.closed > e.auditedUntil) segments.push({ symbol: e.symbol, timeframe: e.timeframe, lo: e.auditedUntil, hi: e.closed, newEnds: 1 });
  }
  return segments;
}

interface GapRow extends MissingRange {
  symbol: string;
  timeframe: Timeframe;
  unavailableAt: number | null;
  /** null: now. */
  foundAt: number | null;
}

interface KnownGap extends GapRow {
  /** Open times of candles stored inside the range since it was recorded. */
  stored: number[];
}

const parseTimes = (value: ReadonlyArray<string | number> | null) => (value ?? []).map(Number);

/** The recorded gaps of the selected series, each with the candles stored inside it since. */
async function knownGaps(db: HistoryDb, s: Selection): Promise<KnownGap[]> {
  const rows = await readWithoutJit<{
    symbol: string;
    timeframe: Timeframe;
    from_ms: string | number;
    to_ms: string | number;
    missing: number;
    unavailable_ms: string | number | null;
    found_ms: string | number;
    stored: Array<string | number> | null;
  }>(
    db,
    `SELECT g.symbol, g.timeframe, ${MS("g.from_time")} AS from_ms, ${MS("g.to_time")} AS to_ms, g.missing,
            ${MS("g.unavailable_at")} AS unavailable_ms, ${MS("g.found_at")} AS found_ms, s.stored
     FROM candle_gaps g
     CROSS JOIN LATERAL (
       SELECT array_agg(${MS("c.open_time")} ORDER BY c.open_time) AS stored FROM candles c
       WHERE c.exchange = g.exchange AND c.symbol = g.symbol AND c.timeframe = g.timeframe AND c.open_time BETWEEN g.from_time AND g.to_time
     ) AS s
     WHERE g.exchange = $1 AND ($2::text[] IS NULL OR g.symbol = ANY($2::text[])) AND g.timeframe = ANY($3::text[])
     ORDER BY g.symbol, g.timeframe, g.from_time`,
    selectionParams(s),
  );
  return rows.map((row) => ({
    symbol: row.symbol,
    timeframe: row.timeframe,
    fromTime: Number(row.from_ms),
    toTime: Number(row.to_ms),
    missing: Number(row.missing),
    unavailableAt: toMs(row.unavailable_ms),
    foundAt: Number(row.found_ms),
    stored: parseTimes(row.stored),
  }));
}

// ---------------------------------------------------------------------------------------------
// Writing

/** Rows to take out (by key) and rows to put in; a row put in under a key taken out rewrites that row. */
interface GapChanges {
  removed: GapRow[];
  added: GapRow[];
}

interface AuditedRange {
  symbol: string;
  timeframe: Timeframe;
  first: number;
  until: number;
}

const keyOf = (row: { symbol: string; timeframe: string; fromTime: number }) => `${row.symbol}\u0000${row.timeframe}\u0000${row.fromTime}`;

/**
 * Writes gap changes and audit watermarks in one statement (atomic on both
 * engines without holding a transaction open on the embedded engine's one
 * connection). A key both removed and added is an update: the statement's
 * parts cannot see each other's rows.
 */
async function writeChanges(db: Pick<Database, "sql">, exchange: string, changes: GapChanges, audited: readonly AuditedRange[]): Promise<void> {
  const addedKeys = new Set(changes.added.map(keyOf));
  const removedKeys = new Set(changes.removed.map(keyOf));
  const deletes = changes.removed.filter((row) => !addedKeys.has(keyOf(row)));
  const updates = changes.added.filter((row) => removedKeys.has(keyOf(row)));
  const inserts = changes.added.filter((row) => !removedKeys.has(keyOf(row)));
  if (deletes.length + updates.length + inserts.length + audited.length === 0) return;
  const column = <T>(rows: readonly GapRow[], pick: (row: GapRow) => T) => rows.map(pick);
  const gapKey = (alias: string) => `g.exchange = $1 AND g.symbol = ${alias}.symbol AND g.timeframe = ${alias}.timeframe AND g.from_time = ${TS(`${alias}.from_ms`)}`;
  await db.sql.query(
    `WITH deleted AS (
       DELETE FROM candle_gaps g USING unnest($2::text[], $3::text[], $4::int8[]) AS d(symbol, timeframe, from_ms)
       WHERE ${gapKey("d")}
     ), updated AS (
       UPDATE candle_gaps g SET to_time = ${TS("u.to_ms")}, missing = u.missing, unavailable_at = ${TS("u.unavailable_ms")}
       FROM unnest($5::text[], $6::text[], $7::int8[], $8::int8[], $9::int4[], $10::int8[]) AS u(symbol, timeframe, from_ms, to_ms, missing, unavailable_ms)
       WHERE ${gapKey("u")}
     ), inserted AS (
       INSERT INTO candle_gaps (exchange, symbol, timeframe, from_time, to_time, missing, unavailable_at, found_at)
       SELECT $1, i.symbol, i.timeframe, ${TS("i.from_ms")}, ${TS("i.to_ms")}, i.missing, ${TS("i.unavailable_ms")}, coalesce(${TS("i.found_ms")}, now())
       FROM unnest($11::text[], $12::text[], $13::int8[], $14::int8[], $15::int4[], $16::int8[], $17::int8[]) AS i(symbol, timeframe, from_ms, to_ms, missing, unavailable_ms, found_ms)
       ON CONFLICT DO NOTHING
     ), audited AS (
       INSERT INTO series_audit (exchange, symbol, timeframe, first_open_time, audited_until)
       SELECT $1, a.symbol, a.timeframe, ${TS("a.first_ms")}, ${TS("a.until_ms")}
       FROM unnest($18::text[], $19::text[], $20::int8[], $21::int8[]) AS a(symbol, timeframe, first_ms, until_ms)
       ON CONFLICT (exchange, symbol, timeframe) DO UPDATE SET
         first_open_time = least(series_audit.first_open_time, excluded.first_open_time),
         audited_until = greatest(series_audit.audited_until, excluded.audited_until),
         audited_at = now()
     )
     SELECT 1`,
    [
      exchange,
      column(deletes, (r) => r.symbol),
      column(deletes, (r) => r.timeframe),
      column(deletes, (r) => r.fromTime),
      column(updates, (r) => r.symbol),
      column(updates, (r) => r.timeframe),
      column(updates, (r) => r.fromTime),
      column(updates, (r) => r.toTime),
      column(updates, (r) => r.missing),
      column(updates, (r) => r.unavailableAt),
      column(inserts, (r) => r.symbol),
      column(inserts, (r) => r.timeframe),
      column(inserts, (r) => r.fromTime),
      column(inserts, (r) => r.toTime),
      column(inserts, (r) => r.missing),
      column(inserts, (r) => r.unavailableAt),
      column(inserts, (r) => r.foundAt),
      audited.map((a) => a.symbol),
      audited.map((a) => a.timeframe),
      audited.map((a) => a.first),
      audited.map((a) => a.until),
    ],
  );
}

const seriesKey = (row: { symbol: string; timeframe: string }) => `${row.symbol}\u0000${row.timeframe}`;

/** Known gaps with candles stored inside them since: each replaced by what is still missing of it. */
function refreshedGaps(known: readonly KnownGap[]): { changes: GapChanges; remaining: Map<string, GapRow[]> } {
  const changes: GapChanges = { removed: [], added: [] };
  const remaining = new Map<string, GapRow[]>();
  for (const gap of known) {
    const { stored, ...row } = gap;
    const pieces = stored.length === 0 ? [row] : withoutStored(row, stored, TIMEFRAME_MS[row.timeframe]).map((range) => ({ ...row, ...range }));
    if (stored.length > 0) {
      changes.removed.push(row);
      changes.added.push(...pieces);
    }
    const list = remaining.get(seriesKey(row)) ?? [];
    list.push(...pieces);
    remaining.set(seriesKey(row), list);
  }
  return { changes, remaining };
}

async function gapTotals(db: HistoryDb, s: Selection): Promise<{ gaps: number; missing: number }> {
  const result = await db.sql.query<{ gaps: string | number; missing: string | number }>(
    `SELECT count(*) AS gaps, coalesce(sum(missing) FILTER (WHERE unavailable_at IS NULL), 0) AS missing FROM candle_gaps WHERE ${SELECTED}`,
    selectionParams(s),
  );
  return { gaps: Number(result.rows[0]?.gaps ?? 0), missing: Number(result.rows[0]?.missing ?? 0) };
}

/**
 * Incremental: reads only candles outside each series' audited range (older
 * than first_open_time, newer than audited_until), re-checks known gaps (a
 * filled gap is removed, a partly filled one split), records new gaps, and
 * moves the watermark to the newest *closed* candle. Series of `exchange`
 * (optionally only the given symbols/timeframes).
 */
export async function auditHistory(db: HistoryDb, options: AuditHistoryOptions): Promise<HistoryAuditResult> {
  const s = selection(options, "auditHistory");
  return exclusively(db, s.exchange, async () => {
    // Forgetting the watermarks makes the audit read each series as if never audited; a failed audit leaves them forgotten, which is safe.
    if (options.full === true) await db.sql.query(`DELETE FROM series_audit WHERE ${SELECTED}`, selectionParams(s));
    return audit(db, s, options.onProgress);
  });
}

// Session advisory locks take two int4 keys: Candlekeep's namespace for the history audit, and the exchange.
export const AUDIT_LOCK_NAMESPACE = 0x436b4861; // "CkHa"

/** The embedded engine's audit running now, per engine (its Database.sql), which the next one waits for. */
const embeddedAudits = new WeakMap<object, Promise<unknown>>();

/**
 * Runs `fn` while no other audit of `exchange` runs: two audits reading the same
 * new candles at once would each record the gaps they found, and a range filled
 * in between could be recorded twice, overlapping. Server: a session advisory
 * lock, waited for (other processes audit too: verify, the dashboard). Embedded:
 * one process holds the database, whose audits run one after another.
 */
async function exclusively<T>(db: HistoryDb, exchange: string, fn: () => Promise<T>): Promise<T> {
  if (db.kind !== "server") {
    const current = (embeddedAudits.get(db.sql) ?? Promise.resolve()).catch(() => undefined).then(fn);
    embeddedAudits.set(db.sql, current);
    return current;
  }
  return db.session(
    async (connection) => {
      await connection.query("SELECT pg_advisory_lock($1, hashtext($2))", [AUDIT_LOCK_NAMESPACE, exchange]);
      try {
        return await fn();
      } finally {
        await connection.query("SELECT pg_advisory_unlock($1, hashtext($2))", [AUDIT_LOCK_NAMESPACE, exchange]);
      }
    },
    // The wait lasts as long as the other audit.
    { queryTimeoutMs: 0 },
  );
}

async function audit(db: HistoryDb, s: Selection, onProgress: AuditHistoryOptions["onProgress"]): Promise<HistoryAuditResult> {
  const started = performance.now();
  const ends = await seriesEnds(db, s);
  const segments = segmentsOf(ends);
  const scans = await scanStretches(db, s.exchange, segments, onProgress);
  const { changes, remaining } = refreshedGaps(await knownGaps(db, s));
  let scannedCandles = 0;
  segments.forEach((segment, i) => {
    const scan = scans[i];
    if (scan === undefined) return;
    scannedCandles += scan.stored + segment.newEnds;
    const known = remaining.get(seriesKey(segment)) ?? [];
    const step = TIMEFRAME_MS[segment.timeframe];
    for (const gap of scan.missing) {
      for (const range of withoutKnown(gap, known, step)) changes.added.push({ symbol: segment.symbol, timeframe: segment.timeframe, ...range, unavailableAt: null, foundAt: null });
    }
  });
  const audited = ends.map((e) => ({ symbol: e.symbol, timeframe: e.timeframe, first: e.first, until: e.closed }));
  await writeChanges(db, s.exchange, changes, audited);
  const totals = await gapTotals(db, s);
  const result: HistoryAuditResult = {
    series: ends.length,
    scannedCandles,
    gaps: totals.gaps,
    missingCandles: totals.missing,
    ms: Math.round(performance.now() - started),
  };
  db.logger.debug("history audit done", { exchange: s.exchange, ...result });
  return result;
}

/** Known gaps (after the last audit), ordered by symbol, timeframe, fromTime. */
export async function listCandleGaps(db: Pick<Database, "sql">, options: SeriesSelection & { includeUnavailable?: boolean }): Promise<CandleGap[]> {
  const s = selection(options, "listCandleGaps");
  const result = await db.sql.query<{ symbol: string; timeframe: Timeframe; from_ms: string | number; to_ms: string | number; missing: number; unavailable: boolean }>(
    `SELECT symbol, timeframe, ${MS("from_time")} AS from_ms, ${MS("to_time")} AS to_ms, missing, unavailable_at IS NOT NULL AS unavailable
     FROM candle_gaps WHERE ${SELECTED} AND ($4 OR unavailable_at IS NULL)
     ORDER BY symbol, timeframe, from_time`,
    [...selectionParams(s), options.includeUnavailable === true],
  );
  return result.rows.map((row) => ({
    exchange: s.exchange,
    symbol: row.symbol,
    timeframe: row.timeframe,
    fromTime: Number(row.from_ms),
    toTime: Number(row.to_ms),
    missing: Number(row.missing),
    unavailable: row.unavailable,
  }));
}

function checkedRange(range: CandleRange): CandleRange {
  const caller = "markRangeUnavailable";
  selection({ exchange: range.exchange, symbols: [range.symbol], timeframes: [range.timeframe] }, caller);
  const step = TIMEFRAME_MS[range.timeframe];
  for (const [name, value] of [
    ["fromTime", range.fromTime],
    ["toTime", range.toTime],
  ] as const) {
    if (!Number.isSafeInteger(value) || value % step !== 0) {
      throw new InvalidHistoryRequestError(`${caller}: ${name} ${value} is not a ${range.timeframe} candle's open time; pass whole epoch milliseconds on the ${range.timeframe} grid.`);
    }
  }
  if (range.fromTime > range.toTime) {
    throw new InvalidHistoryRequestError(`${caller}: fromTime ${new Date(range.fromTime).toISOString()} is after toTime ${new Date(range.toTime).toISOString()}; pass the first and the last missing candle's open times.`);
  }
  return range;
}

/**
 * Records that the exchange has no candles for [fromTime, toTime] of a series
 * (a listing date, an exchange outage): every missing candle of the range is
 * stored as an unavailable gap (an existing gap row is split where the range
 * begins or ends), so later repairs skip it. Candles stored inside the range
 * stay and split it. Also for a range before the first stored candle.
 */
export async function markRangeUnavailable(db: HistoryDb, range: CandleRange): Promise<void> {
  const { exchange, symbol, timeframe, fromTime, toTime } = checkedRange(range);
  const step = TIMEFRAME_MS[timeframe];
  const params = [exchange, symbol, timeframe, fromTime, toTime];
  // Under the audit's lock: an audit reading the gaps meanwhile would write them back unmarked.
  await exclusively(db, exchange, async () => {
    const overlapping = await db.sql.query<{ from_ms: string | number; to_ms: string | number; unavailable_ms: string | number | null; found_ms: string | number }>(
      `SELECT ${MS("from_time")} AS from_ms, ${MS("to_time")} AS to_ms, ${MS("unavailable_at")} AS unavailable_ms, ${MS("found_at")} AS found_ms
       FROM candle_gaps
       WHERE exchange = $1 AND symbol = $2 AND timeframe = $3 AND from_time <= ${TS("$5::int8")} AND to_time >= ${TS("$4::int8")}`,
      params,
    );
    const stored = await db.sql.query<{ open_ms: string | number }>(
      `SELECT ${MS("open_time")} AS open_ms FROM candles
       WHERE exchange = $1 AND symbol = $2 AND timeframe = $3 AND open_time BETWEEN ${TS("$4::int8")} AND ${TS("$5::int8")}
       ORDER BY open_time`,
      params,
    );
    const changes: GapChanges = { removed: [], added: [] };
    // Gaps reaching into the range keep what lies outside it, as they were.
    for (const row of overlapping.rows) {
      const gap: GapRow = { symbol, timeframe, ...rangeOf(Number(row.from_ms), Number(row.to_ms), step), unavailableAt: toMs(row.unavailable_ms), foundAt: Number(row.found_ms) };
      changes.removed.push(gap);
      if (gap.fromTime < fromTime) changes.added.push({ ...gap, ...rangeOf(gap.fromTime, fromTime - step, step) });
      if (gap.toTime > toTime) changes.added.push({ ...gap, ...rangeOf(toTime + step, gap.toTime, step) });
    }
    const nowMs = Date.now();
    const missing = withoutStored(rangeOf(fromTime, toTime, step), stored.rows.map((row) => Number(row.open_ms)), step);
    for (const run of missing) changes.added.push({ symbol, timeframe, ...run, unavailableAt: nowMs, foundAt: null });
    await writeChanges(db, exchange, changes, []);
  });
}

/**
 * What the audit knows of a timeframe's series once retention removed their candles older than
 * `before`: gaps that end before it are forgotten, one reaching past it starts at its first kept
 * candle slot, and each series' audited range starts at its oldest stored candle (a series audited
 * only before it is forgotten, and audited afresh from what is stored). Under the audit's lock, after
 * the candles are deleted: an audit that read a series' ends before they went writes them first, and
 * is corrected here.
 */
export async function forgetHistoryBefore(db: HistoryDb, options: { exchange: string; timeframe: Timeframe; before: number }): Promise<void> {
  const s = selection({ exchange: options.exchange, timeframes: [options.timeframe] }, "forgetHistoryBefore");
  if (!Number.isSafeInteger(options.before)) throw new InvalidHistoryRequestError(`forgetHistoryBefore: before ${options.before} is not a time; pass epoch milliseconds.`);
  const step = TIMEFRAME_MS[options.timeframe];
  const firstKept = Math.ceil(options.before / step) * step;
  const series = "c.exchange = a.exchange AND c.symbol = a.symbol AND c.timeframe = a.timeframe";
  await exclusively(db, s.exchange, () =>
    db.sql.query(
      `WITH trimmed AS (
         UPDATE candle_gaps SET from_time = ${TS("$3::int8")}, missing = (${MS("to_time")} - $3::int8) / $4::int8 + 1
         WHERE exchange = $1 AND timeframe = $2 AND from_time < ${TS("$3::int8")} AND to_time >= ${TS("$3::int8")}
       ), removed AS (
         DELETE FROM candle_gaps WHERE exchange = $1 AND timeframe = $2 AND to_time < ${TS("$3::int8")}
       ), forgotten AS (
         DELETE FROM series_audit WHERE exchange = $1 AND timeframe = $2 AND audited_until < ${TS("$3::int8")}
       ), moved AS (
         UPDATE series_audit a SET first_open_time = greatest(a.first_open_time, (SELECT min(c.open_time) FROM candles c WHERE ${series}))
         WHERE a.exchange = $1 AND a.timeframe = $2 AND a.first_open_time < ${TS("$3::int8")} AND a.audited_until >= ${TS("$3::int8")}
       )
       SELECT 1`,
      [s.exchange, options.timeframe, firstKept, step],
    ),
  );
}

/** Per series: audit watermark state (for verify/dashboard to show "complete up to"). */
export async function seriesAuditStates(db: Pick<Database, "sql">, options: SeriesSelection): Promise<SeriesAuditState[]> {
  const s = selection(options, "seriesAuditStates");
  const result = await db.sql.query<{ symbol: string; timeframe: Timeframe; first_ms: string | number; until_ms: string | number; at_ms: string | number }>(
    `SELECT symbol, timeframe, ${MS("first_open_time")} AS first_ms, ${MS("audited_until")} AS until_ms, ${MS("audited_at")} AS at_ms
     FROM series_audit WHERE ${SELECTED} ORDER BY symbol, timeframe`,
    selectionParams(s),
  );
  return result.rows.map((row) => ({
    exchange: s.exchange,
    symbol: row.symbol,
    timeframe: row.timeframe,
    firstOpenTime: Number(row.first_ms),
    auditedUntil: Number(row.until_ms),
    auditedAt: Number(row.at_ms),
  }));
}
