import { TIMEFRAME_MS, type Timeframe } from "@candlekeep/core";
import type { Database } from "./connect";
import { rangeBetween, rangeOf, type MissingRange } from "./gap-ranges";
import { readWithoutJit } from "./sql";

/**
 * The history audit's read of stored candles: which candles are missing in
 * stretches of series, read through the candles primary key. Each stretch is
 * cut into chunks of consecutive candle slots; a chunk is counted first (an
 * index-only count, the cheapest full read) and read candle by candle only when
 * the count falls short, so a hole costs a chunk's read, not its series'.
 */

/** The candle slots strictly between `lo` and `hi` (open times on the timeframe's grid) of one series. */
export interface Stretch {
  symbol: string;
  timeframe: Timeframe;
  lo: number;
  hi: number;
}

export interface StretchScan {
  /** Missing ranges inside the stretch, oldest first. */
  missing: MissingRange[];
  /** Candles stored inside it. */
  stored: number;
}

/** Slots per chunk: a hole costs a detailed read of this many candles at most (~1 ms). */
const CHUNK_SLOTS = 4_096;
// A chunk this small is read in detail at once: counting it first would cost a second look for little.
const COUNT_FIRST_ABOVE = 256;
// Slots per statement: each runs well inside the connection's statement timeout (a few hundred ms
// at this size), progress is reported between them, and connections share the work.
const BATCH_SLOTS = 2_000_000;
const BATCH_CHUNKS = 5_000;
// The server reads with this many connections at once (its two cores here); the embedded engine has one.
const SERVER_READERS = 2;

interface Chunk {
  /** Index of its stretch. */
  stretch: number;
  symbol: string;
  timeframe: Timeframe;
  /** First and last slot (open times), inclusive. */
  from: number;
  to: number;
  slots: number;
}

function chunksOf(stretches: readonly Stretch[]): Chunk[] {
  const chunks: Chunk[] = [];
  stretches.forEach((stretch, index) => {
    const step = TIMEFRAME_MS[stretch.timeframe];
    for (let from = stretch.lo + step; from < stretch.hi; from += CHUNK_SLOTS * step) {
      const to = Math.min(stretch.hi - step, from + (CHUNK_SLOTS - 1) * step);
      chunks.push({ stretch: index, symbol: stretch.symbol, timeframe: stretch.timeframe, from, to, slots: (to - from) / step + 1 });
    }
  });
  return chunks;
}

function batchesOf(chunks: readonly Chunk[]): Chunk[][] {
  const batches: Chunk[][] = [];
  let batch: Chunk[] = [];
  let slots = 0;
  for (const chunk of chunks) {
    if (batch.length > 0 && (slots + chunk.slots > BATCH_SLOTS || batch.length >= BATCH_CHUNKS)) {
      batches.push(batch);
      batch = [];
      slots = 0;
    }
    batch.push(chunk);
    slots += chunk.slots;
  }
  if (batch.length > 0) batches.push(batch);
  return batches;
}

type ScanDb = Pick<Database, "kind" | "sql" | "session">;

const CHUNKS = "unnest($2::text[], $3::text[], $4::int8[], $5::int8[], $6::int8[]) WITH ORDINALITY AS ch(symbol, timeframe, from_ms, to_ms, step_ms, i)";
const CHUNK_CANDLES = `c.exchange = $1 AND c.symbol = ch.symbol AND c.timeframe = ch.timeframe
  AND c.open_time BETWEEN timestamptz 'epoch' + ch.from_ms * interval '1 millisecond' AND timestamptz 'epoch' + ch.to_ms * interval '1 millisecond'`;

const chunkParams = (exchange: string, chunks: readonly Chunk[]) => [
  exchange,
  chunks.map((c) => c.symbol),
  chunks.map((c) => c.timeframe),
  chunks.map((c) => c.from),
  chunks.map((c) => c.to),
  chunks.map((c) => TIMEFRAME_MS[c.timeframe]),
];

/** Candles stored in each chunk (an index range scan each, reading the index only). */
async function storedCounts(db: ScanDb, exchange: string, chunks: readonly Chunk[]): Promise<number[]> {
  const rows = await readWithoutJit<{ n: string | number }>(
    db,
    `SELECT n.n FROM ${CHUNKS} CROSS JOIN LATERAL (SELECT count(*) AS n FROM candles c WHERE ${CHUNK_CANDLES}) AS n ORDER BY ch.i`,
    chunkParams(exchange, chunks),
  );
  return rows.map((row) => Number(row.n));
}

/**
 * The missing runs of each chunk, from one ordered read of its candles (the
 * primary key's order, no sort): the first and the last candle, and each one
 * that follows a hole, with the candle before it.
 */
async function missingRuns(db: ScanDb, exchange: string, chunks: readonly Chunk[]): Promise<MissingRange[][]> {
  const rows = await readWithoutJit<{ i: string | number; time_ms: string | number; prev_ms: string | number | null; is_last: boolean }>(
    db,
    `SELECT ch.i, (extract(epoch from p.open_time) * 1000)::int8 AS time_ms, (extract(epoch from p.prev) * 1000)::int8 AS prev_ms, p.next IS NULL AS is_last
     FROM ${CHUNKS}
     CROSS JOIN LATERAL (
       SELECT w.open_time, w.prev, w.next FROM (
         SELECT c.open_time, lag(c.open_time) OVER o AS prev, lead(c.open_time) OVER o AS next
         FROM candles c WHERE ${CHUNK_CANDLES}
         WINDOW o AS (ORDER BY c.open_time)
       ) AS w
       WHERE w.prev IS NULL OR w.next IS NULL OR w.open_time - w.prev > ch.step_ms * interval '1 millisecond'
     ) AS p
     ORDER BY ch.i, p.open_time`,
    chunkParams(exchange, chunks),
  );
  // Per chunk, the pairs of neighbouring present slots to look between; its edges' outer neighbours count as present.
  const pairs = chunks.map((): Array<[number, number]> => []);
  for (const row of rows) {
    const index = Number(row.i) - 1;
    const chunk = chunks[index];
    if (chunk === undefined) continue;
    const time = Number(row.time_ms);
    const prev = row.prev_ms === null ? chunk.from - TIMEFRAME_MS[chunk.timeframe] : Number(row.prev_ms);
    pairs[index]?.push([prev, time]);
    if (row.is_last) pairs[index]?.push([time, chunk.to + TIMEFRAME_MS[chunk.timeframe]]);
  }
  return chunks.map((chunk, index) => {
    const step = TIMEFRAME_MS[chunk.timeframe];
    const found = pairs[index] ?? [];
    if (found.length === 0) return [rangeOf(chunk.from, chunk.to, step)];
    return found.map(([before, after]) => rangeBetween(before, after, step)).filter((range): range is MissingRange => range !== undefined);
  });
}

/** Each chunk's missing runs: counted first when large, read in detail only when short of candles. */
async function scanBatch(db: ScanDb, exchange: string, batch: readonly Chunk[]): Promise<MissingRange[][]> {
  const counted = batch.filter((chunk) => chunk.slots > COUNT_FIRST_ABOVE);
  const counts = counted.length > 0 ? await storedCounts(db, exchange, counted) : [];
  const known = new Map<Chunk, MissingRange[]>();
  counted.forEach((chunk, i) => {
    const stored = counts[i] ?? 0;
    if (stored === chunk.slots) known.set(chunk, []);
    else if (stored === 0) known.set(chunk, [rangeOf(chunk.from, chunk.to, TIMEFRAME_MS[chunk.timeframe])]);
  });
  const detailed = batch.filter((chunk) => !known.has(chunk));
  const runs = detailed.length > 0 ? await missingRuns(db, exchange, detailed) : [];
  detailed.forEach((chunk, i) => known.set(chunk, runs[i] ?? []));
  return batch.map((chunk) => known.get(chunk) ?? []);
}

/** Appends `range` to `ranges`, joining it to the last one when they touch (a hole across a chunk edge). */
function appendJoined(ranges: MissingRange[], range: MissingRange, stepMs: number): void {
  const last = ranges[ranges.length - 1];
  if (last !== undefined && last.toTime + stepMs === range.fromTime) {
    last.toTime = range.toTime;
    last.missing += range.missing;
  } else ranges.push({ ...range });
}

/**
 * The missing ranges and stored candles inside each stretch. `onProgress(done,
 * total)` in candle slots checked, after each statement.
 */
export async function scanStretches(db: ScanDb, exchange: string, stretches: readonly Stretch[], onProgress?: (done: number, total: number) => void): Promise<StretchScan[]> {
  const batches = batchesOf(chunksOf(stretches));
  const total = batches.reduce((sum, batch) => sum + batch.reduce((n, chunk) => n + chunk.slots, 0), 0);
  const results: MissingRange[][][] = [];
  let next = 0;
  let done = 0;
  const reader = async () => {
    for (let index = next++; index < batches.length; index = next++) {
      const batch = batches[index] ?? [];
      results[index] = await scanBatch(db, exchange, batch);
      done += batch.reduce((n, chunk) => n + chunk.slots, 0);
      onProgress?.(done, total);
    }
  };
  await Promise.all(Array.from({ length: db.kind === "server" ? Math.min(SERVER_READERS, batches.length) : 1 }, reader));

  const scans: StretchScan[] = stretches.map((stretch) => ({ missing: [], stored: Math.max(0, (stretch.hi - stretch.lo) / TIMEFRAME_MS[stretch.timeframe] - 1) }));
  batches.forEach((batch, b) => {
    batch.forEach((chunk, c) => {
      const scan = scans[chunk.stretch];
      if (scan === undefined) return;
      for (const range of results[b]?.[c] ?? []) {
        appendJoined(scan.missing, range, TIMEFRAME_MS[chunk.timeframe]);
        scan.stored -= range.missing;
      }
    });
  });
  return scans;
}
