import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type pg from "pg";
import { from as copyFrom } from "pg-copy-streams";
import { saveCandles, type CandleInput, type Database } from "@candlekeep/db";
import { createEmbeddedTestDatabase, createServerTestDatabase } from "@candlekeep/db/testing";
import { withDatabase } from "./database";
import { benchCandles } from "./data";
import { timeRoundRobin, timingFigure, withGoal, withRatio, type BenchOptions, type Figure } from "./harness";

/**
 * Bulk candle writes, the same rows through three paths:
 *  - the project's saveCandles (what the bot's flush and backfill use),
 *  - Prisma's createMany({ skipDuplicates }) (the obvious ORM way),
 *  - COPY … FROM STDIN into an identical table (the physical limit; server only),
 * on fresh rows and on an all-duplicate re-write of the same rows.
 */

const COLUMNS = "exchange, symbol, timeframe, open_time, open, high, low, close, volume, is_closed";

export interface WriteSizes {
  /** Coins in the main comparison (× 4 timeframes × perSeries rows). */
  coins: number;
  perSeries: number;
  /** Coin counts of the scaling rows. */
  scaling: number[];
}

export function writeSizes(smoke: boolean): WriteSizes {
  return smoke ? { coins: 5, perSeries: 10, scaling: [2, 5, 10] } : { coins: 500, perSeries: 10, scaling: [50, 500, 2000] };
}

/** COPY text format: backslash, tab and line breaks escaped (see PostgreSQL's COPY "Text Format"). */
function copyTextField(value: string): string {
  return /[\\\t\n\r]/.test(value) ? value.replace(/[\\\t\n\r]/g, (c) => (c === "\\" ? "\\\\" : c === "\t" ? "\\t" : c === "\n" ? "\\n" : "\\r")) : value;
}

/** The reference COPY: rows serialised the way psql's \copy would send them, 5,000 rows per chunk. */
export async function copyInto(pool: pg.Pool, table: string, rows: readonly CandleInput[]): Promise<number> {
  const client = await pool.connect();
  try {
    const stream = client.query(copyFrom(`COPY ${table} (${COLUMNS}) FROM STDIN`));
    async function* chunks() {
      for (let start = 0; start < rows.length; start += 5000) {
        let text = "";
        for (const r of rows.slice(start, start + 5000)) {
          text += `${copyTextField(r.exchange)}\t${copyTextField(r.symbol)}\t${r.timeframe}\t${new Date(r.openTime).toISOString()}\t${r.open}\t${r.high}\t${r.low}\t${r.close}\t${r.volume}\t${r.isClosed ? "t" : "f"}\n`;
        }
        yield text;
      }
    }
    await pipeline(Readable.from(chunks()), stream);
    return stream.rowCount;
  } finally {
    client.release();
  }
}

function createMany(db: Database, rows: readonly CandleInput[]) {
  return db.prisma.candle.createMany({
    data: rows.map((r) => ({
      exchange: r.exchange,
      symbol: r.symbol,
      timeframe: r.timeframe,
      openTime: new Date(r.openTime),
      open: r.open,
      high: r.high,
      low: r.low,
      close: r.close,
      volume: r.volume,
      isClosed: r.isClosed,
    })),
    skipDuplicates: true,
  });
}

async function count(db: Database, table: string): Promise<number> {
  const result = await db.sql.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`);
  return Number(result.rows[0]?.n);
}

/** A check of the work done, not of the time taken: every path must have stored every row. */
function expectRows(what: string, actual: number, expected: number): void {
  if (actual !== expected) throw new Error(`${what} stored ${actual} rows, expected ${expected}`);
}

/**
 * Untimed preparation before a run: `statement`, then a CHECKPOINT where the
 * role may (superuser), so no run pays for flushing the previous run's pages.
 */
async function checkpointer(db: Database): Promise<(statement?: string) => Promise<void>> {
  const role = await db.sql.query<{ rolsuper: boolean }>("SELECT rolsuper FROM pg_roles WHERE rolname = current_user");
  const checkpoint = role.rows[0]?.rolsuper === true;
  return async (statement) => {
    if (statement) await db.sql.exec(statement);
    if (checkpoint) await db.sql.exec("CHECKPOINT");
  };
}

export interface WriteFigures {
  figures: Figure[];
  postgres: string;
}

/** Server engine: saveCandles vs createMany vs COPY, fresh and all duplicates, then saveCandles vs COPY at several sizes. */
export async function serverWrites(options: BenchOptions, nowMs: number): Promise<WriteFigures> {
  const sizes = writeSizes(options.smoke);
  const rows = benchCandles({ coins: sizes.coins, perSeries: sizes.perSeries, nowMs });
  const n = rows.length;
  return withDatabase(await createServerTestDatabase("candlekeep_bench"), async (db) => {
    const pool = db.pool;
    if (!pool) throw new Error("expected the server engine");
    const version = await db.sql.query<{ server_version: string }>("SHOW server_version");
    await db.sql.exec("CREATE TABLE bench_copy (LIKE candles INCLUDING ALL)");

    // createMany takes seconds and leaves much WAL behind: timed apart, so the
    // saveCandles/COPY pairs (the goal) do not run in its wake.
    const settle = await checkpointer(db);
    const fresh = await timeRoundRobin(
      [
        {
          id: "saveCandles",
          setup: () => settle("TRUNCATE candles"),
          run: async () => expectRows("saveCandles", (await saveCandles(db, rows, nowMs)).written, n),
        },
        {
          id: "copy",
          setup: () => settle("TRUNCATE bench_copy"),
          run: async () => expectRows("COPY", await copyInto(pool, "bench_copy", rows), n),
        },
      ],
      options,
    );
    const freshMany = await timeRoundRobin(
      [{ id: "createMany", setup: () => settle("TRUNCATE candles"), run: async () => expectRows("createMany", (await createMany(db, rows)).count, n) }],
      options,
    );
    // The table now holds exactly these rows: every write below is a no-op re-write.
    await db.sql.exec("TRUNCATE candles");
    await saveCandles(db, rows, nowMs);
    const duplicates = await timeRoundRobin(
      [{ id: "saveCandles", setup: () => settle(), run: async () => expectRows("saveCandles (duplicates)", (await saveCandles(db, rows, nowMs)).written, 0) }],
      options,
    );
    const duplicatesMany = await timeRoundRobin(
      [{ id: "createMany", setup: () => settle(), run: async () => expectRows("createMany (duplicates)", (await createMany(db, rows)).count, 0) }],
      options,
    );
    expectRows("candles table", await count(db, "candles"), n);

    const copy = timingFigure("server.copy.fresh", `server: COPY FROM STDIN, ${n.toLocaleString("en-US")} fresh rows`, fresh.get("copy") ?? []);
    const label = (what: string, kind: string) => `server: ${what}, ${n.toLocaleString("en-US")} ${kind}`;
    const save = timingFigure("server.saveCandles.fresh", label("saveCandles", "fresh rows"), fresh.get("saveCandles") ?? []);
    const saveRatio = save.value / copy.value;
    const figures: Figure[] = [
      withGoal(withRatio(save, copy, "COPY"), "≤ 2× COPY", saveRatio <= 2),
      withRatio(timingFigure("server.createMany.fresh", label("createMany", "fresh rows"), freshMany.get("createMany") ?? []), copy, "COPY"),
      { ...copy, ratio: { value: 1, to: "COPY" } },
      withRatio(timingFigure("server.saveCandles.duplicates", label("saveCandles", "duplicate rows"), duplicates.get("saveCandles") ?? []), copy, "COPY (fresh)"),
      withRatio(timingFigure("server.createMany.duplicates", label("createMany", "duplicate rows"), duplicatesMany.get("createMany") ?? []), copy, "COPY (fresh)"),
    ];

    for (const coins of sizes.scaling) {
      const scaled = benchCandles({ coins, perSeries: sizes.perSeries, nowMs, seed: coins });
      const samples = await timeRoundRobin(
        [
          { id: "saveCandles", setup: () => settle("TRUNCATE candles"), run: async () => expectRows("saveCandles", (await saveCandles(db, scaled, nowMs)).written, scaled.length) },
          { id: "copy", setup: () => settle("TRUNCATE bench_copy"), run: async () => expectRows("COPY", await copyInto(pool, "bench_copy", scaled), scaled.length) },
        ],
        options,
      );
      const rowsText = `${coins} coins (${scaled.length.toLocaleString("en-US")} rows)`;
      const scaledCopy = timingFigure(`scaling.${coins}.copy`, `scaling: COPY, ${rowsText}`, samples.get("copy") ?? []);
      figures.push(withRatio(timingFigure(`scaling.${coins}.saveCandles`, `scaling: saveCandles, ${rowsText}`, samples.get("saveCandles") ?? []), scaledCopy, "COPY"), scaledCopy);
    }
    return { figures, postgres: version.rows[0]?.server_version ?? "unknown" };
  });
}

/** Embedded engine (PGlite, in-process): saveCandles vs createMany, fresh and all duplicates. */
export async function embeddedWrites(options: BenchOptions, nowMs: number): Promise<Figure[]> {
  const sizes = writeSizes(options.smoke);
  const rows = benchCandles({ coins: sizes.coins, perSeries: sizes.perSeries, nowMs });
  const n = rows.length;
  return withDatabase(createEmbeddedTestDatabase(), async (db) => {
    const fresh = await timeRoundRobin(
      [
        { id: "saveCandles", setup: () => db.sql.exec("TRUNCATE candles"), run: async () => expectRows("saveCandles", (await saveCandles(db, rows, nowMs)).written, n) },
        { id: "createMany", setup: () => db.sql.exec("TRUNCATE candles"), run: async () => expectRows("createMany", (await createMany(db, rows)).count, n) },
      ],
      options,
    );
    await db.sql.exec("TRUNCATE candles");
    await saveCandles(db, rows, nowMs);
    const duplicates = await timeRoundRobin(
      [
        { id: "saveCandles", run: async () => expectRows("saveCandles (duplicates)", (await saveCandles(db, rows, nowMs)).written, 0) },
        { id: "createMany", run: async () => expectRows("createMany (duplicates)", (await createMany(db, rows)).count, 0) },
      ],
      options,
    );
    const label = (what: string, kind: string) => `embedded: ${what}, ${n.toLocaleString("en-US")} ${kind}`;
    const manyFresh = timingFigure("embedded.createMany.fresh", label("createMany", "fresh rows"), fresh.get("createMany") ?? []);
    const manyDuplicates = timingFigure("embedded.createMany.duplicates", label("createMany", "duplicate rows"), duplicates.get("createMany") ?? []);
    return [
      withRatio(timingFigure("embedded.saveCandles.fresh", label("saveCandles", "fresh rows"), fresh.get("saveCandles") ?? []), manyFresh, "createMany"),
      { ...manyFresh, ratio: { value: 1, to: "createMany" } },
      withRatio(timingFigure("embedded.saveCandles.duplicates", label("saveCandles", "duplicate rows"), duplicates.get("saveCandles") ?? []), manyDuplicates, "createMany"),
      { ...manyDuplicates, ratio: { value: 1, to: "createMany" } },
    ];
  });
}
