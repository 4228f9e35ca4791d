import { performance } from "node:perf_hooks";
import { latestDecisionTracePerSymbol, removeDecisionTraces, vacuumTable, type Database } from "@candlekeep/db";
import { median, parseBenchArgs, report, runMain, timingFigure, withRatio, type Figure } from "../../../packages/db/bench/harness";
import { retentionDays, takeDaysFlag } from "./retention-options";
import { forgetLogLines, startBenchBot, type BenchBot } from "./setup";

/**
 * Storage and retention: bytes per decision trace and per candle as the bot writes them, and what
 * removing a day of decision traces costs on a table holding `days` of them at `coins` coins (one
 * trace per coin every 5 minutes, the bot's own payloads): by batched deletes (what the bot does),
 * with a VACUUM after, and, for comparison, by dropping the day's partition of the same traces in
 * a table partitioned by day (decision_traces' key holds the time, so the same key serves both). The tick is measured while the day is deleted and vacuumed, as a
 * ratio to ticks without it (the bot at a real exchange's cadence, one minute of market per tick),
 * and the read of every coin's newest trace (the throttle's restore, verify's activity check) on
 * both layouts.
 *
 * The two layouts are filled one after the other (the partitioned copy is dropped first), so the
 * disk holds one of them at a time: ~65 MB a day at 500 coins.
 */

const DAY = 86_400_000;
const TRACE_EVERY_MS = 5 * 60_000;
/** Distinct payloads (the bot's own traces) cycled through the filled days. */
const PAYLOAD_SAMPLES = 1000;
const PARTITIONED = "bench_traces_by_day";

interface Sizes {
  coins: number;
  days: number;
  /** Days removed, one per repetition. */
  repeat: number;
  /** Ticks run without a pass before each day's removal. */
  baselineTicks: number;
  warmupTicks: number;
}

runMain(async () => {
  const args = takeDaysFlag(process.argv.slice(2));
  const options = parseBenchArgs(args.rest);
  const days = retentionDays(args.days, options);
  const sizes: Sizes = options.smoke
    ? { coins: 5, days, repeat: options.repeat, baselineTicks: 2, warmupTicks: 5 }
    : { coins: 500, days, repeat: options.repeat, baselineTicks: 15, warmupTicks: 10 };
  const bench = await startBenchBot({ coins: sizes.coins, history: options.smoke ? 100 : 300, ticks: 10_000, stepMinutes: 1, caughtUp: true });
  try {
    const db = await bench.bot.database.get();
    await bench.bot.ticks(sizes.warmupTicks);
    forgetLogLines(bench.bot);
    const figures: Figure[] = [...(await rowBytes(db))];
    const firstDay = Math.floor(bench.bot.runtime.market.now() / DAY) * DAY - sizes.days * DAY;
    const symbols = bench.bot.runtime.symbols;
    const exchange = bench.bot.runtime.market.id;
    await db.sql.exec(`CREATE TABLE bench_trace_payloads AS
      SELECT (row_number() OVER (ORDER BY time, symbol) - 1)::int AS n, payload FROM decision_traces ORDER BY time, symbol LIMIT ${PAYLOAD_SAMPLES}`);

    const partitioned = await measurePartitions(db, sizes, firstDay, exchange, symbols);
    const filled = await fillTraces(db, "decision_traces", sizes, firstDay, exchange, symbols);
    figures.push(await diskBytesPerTrace(db, sizes));
    const plainRead = await timeLatestRead(db, "decision_traces", exchange, symbols, options.repeat);
    const deletes = await measureDeletes(bench, db, sizes, firstDay, exchange);

    const latestPlain = timingFigure("read.latest.plain", `every coin's newest trace (the throttle's restore), one table`, plainRead);
    const tickBase = timingFigure("tick.base", `tick, ${sizes.coins} coins, one minute of market per tick, no retention pass`, deletes.ticksWithout);
    figures.push(
      timingFigure("retention.delete.day", `delete a day of traces (${(sizes.coins * (DAY / TRACE_EVERY_MS)).toLocaleString("en-US")} rows), statements of 5,000 rows`, deletes.deleteMs),
      timingFigure("retention.delete.statement", "  its longest statement (the longest any row lock is held)", deletes.longestStatementMs),
      timingFigure("retention.vacuum.day", "  VACUUM of the table after it", deletes.vacuumMs),
      timingFigure("retention.drop.day", "drop a day's partition (the same traces, partitioned by day)", partitioned.dropMs),
      tickBase,
      withRatio(timingFigure("tick.duringPass", `tick, ${sizes.coins} coins, while a day is deleted and vacuumed`, deletes.ticksDuring), tickBase, "a tick without it"),
      latestPlain,
      withRatio(timingFigure("read.latest.partitioned", `every coin's newest trace, ${sizes.days} daily partitions`, partitioned.readMs), latestPlain, "one table"),
    );
    report(options, {
      name: "retention",
      title: `Trace and candle bytes, and retention on ${sizes.days} days of traces (apps/bot)`,
      measuredAt: new Date().toISOString(),
      smoke: options.smoke,
      repetitions: sizes.repeat,
      settings: { coins: sizes.coins, days: sizes.days, tracesPerCoinPerDay: DAY / TRACE_EVERY_MS, tracesStored: filled.rows, fillMinutes: Math.round(filled.ms / 60_000), database: "server" },
      figures,
    });
  } finally {
    await bench.stop();
  }
});

/** Average bytes of a decision trace (its payload, its row) and of a candle row, as the bot wrote them. */
async function rowBytes(db: Database): Promise<Figure[]> {
  const traces = await db.sql.query<{ payload: string | number; row: string | number }>(
    "SELECT avg(pg_column_size(payload)) AS payload, avg(pg_column_size(t.*)) AS row FROM decision_traces t",
  );
  const candles = await db.sql.query<{ row: string | number; disk: string | number }>(
    "SELECT avg(pg_column_size(c.*)) AS row, pg_total_relation_size('candles')::float8 / count(*) AS disk FROM candles c",
  );
  return [
    { id: "trace.bytes.payload", label: "decision trace: payload (pg_column_size)", value: Number(traces.rows[0]?.payload), unit: "bytes" },
    { id: "trace.bytes.row", label: "decision trace: row", value: Number(traces.rows[0]?.row), unit: "bytes" },
    { id: "candle.bytes.row", label: "candle: row", value: Number(candles.rows[0]?.row), unit: "bytes" },
    { id: "candle.bytes.disk", label: "candle: table and indexes per row", value: Number(candles.rows[0]?.disk), unit: "bytes" },
  ];
}

async function diskBytesPerTrace(db: Database, sizes: Sizes): Promise<Figure> {
  const result = await db.sql.query<{ disk: string | number }>("SELECT pg_total_relation_size('decision_traces')::float8 / count(*) AS disk FROM decision_traces");
  return { id: "trace.bytes.disk", label: `decision trace: table and indexes per row (${sizes.days} days stored)`, value: Number(result.rows[0]?.disk), unit: "bytes" };
}

/**
 * `days` of traces from `firstDay` into `table`, a day per statement: every coin every 5 minutes,
 * the bot's own payloads cycled. Says how far it got every 10 days.
 */
async function fillTraces(db: Database, table: string, sizes: Sizes, firstDay: number, exchange: string, symbols: readonly string[]): Promise<{ rows: number; ms: number }> {
  const started = performance.now();
  let rows = 0;
  for (let day = 0; day < sizes.days; day += 1) {
    const from = firstDay + day * DAY;
    const result = await db.session(
      (connection) =>
        connection.query(
          `INSERT INTO ${table} (exchange, symbol, time, level, payload)
           SELECT $3, s.symbol, t.time, 'info', p.payload
           FROM generate_series($1::int8, $1::int8 + ${DAY - TRACE_EVERY_MS}, ${TRACE_EVERY_MS}) AS t0(ms)
           CROSS JOIN LATERAL (SELECT t0.ms, timestamptz 'epoch' + t0.ms * interval '1 millisecond' AS time) AS t
           CROSS JOIN unnest($2::text[]) WITH ORDINALITY AS s(symbol, n)
           JOIN bench_trace_payloads p ON p.n = (s.n + t.ms / ${TRACE_EVERY_MS}) % (SELECT count(*) FROM bench_trace_payloads)`,
          [from, [...symbols], exchange],
        ),
      { queryTimeoutMs: 0 },
    );
    rows += result.rowCount;
    if ((day + 1) % 10 === 0 || day + 1 === sizes.days) process.stderr.write(`retention bench: ${table}: ${day + 1}/${sizes.days} days, ${rows.toLocaleString("en-US")} traces, ${Math.round((performance.now() - started) / 1000)} s\n`);
  }
  await db.session((connection) => connection.exec(`VACUUM ANALYZE ${table}`), { queryTimeoutMs: 0 });
  return { rows, ms: performance.now() - started };
}

/** Every coin's newest trace in one query (latestDecisionTracePerSymbol's), timed `repeat` times after one untimed. */
async function timeLatestRead(db: Database, table: string, exchange: string, symbols: readonly string[], repeat: number): Promise<number[]> {
  const read = () =>
    table === "decision_traces"
      ? latestDecisionTracePerSymbol(db, { exchange, symbols })
      : db.sql.query(
          `SELECT t.* FROM unnest($2::text[]) WITH ORDINALITY AS s(symbol, position)
           CROSS JOIN LATERAL (SELECT * FROM ${table} WHERE exchange = $1 AND symbol = s.symbol ORDER BY time DESC LIMIT 1) AS t
           ORDER BY s.position`,
          [exchange, [...symbols]],
        );
  await read();
  const samples: number[] = [];
  for (let i = 0; i < repeat; i += 1) {
    const started = performance.now();
    await read();
    samples.push(performance.now() - started);
  }
  return samples;
}

/**
 * The same traces in a table partitioned by day, with decision_traces' columns and key, its oldest
 * partitions dropped one per repetition, the newest-trace read timed; then dropped whole.
 */
async function measurePartitions(db: Database, sizes: Sizes, firstDay: number, exchange: string, symbols: readonly string[]): Promise<{ dropMs: number[]; readMs: number[] }> {
  await db.sql.exec(`CREATE TABLE ${PARTITIONED} (LIKE decision_traces INCLUDING DEFAULTS, PRIMARY KEY (exchange, symbol, time)) PARTITION BY RANGE (time)`);
  for (let day = 0; day < sizes.days; day += 1) {
    const from = new Date(firstDay + day * DAY).toISOString();
    const to = new Date(firstDay + (day + 1) * DAY).toISOString();
    await db.sql.exec(`CREATE TABLE ${PARTITIONED}_${day} PARTITION OF ${PARTITIONED} FOR VALUES FROM ('${from}') TO ('${to}')`);
  }
  try {
    await fillTraces(db, PARTITIONED, sizes, firstDay, exchange, symbols);
    const readMs = await timeLatestRead(db, PARTITIONED, exchange, symbols, sizes.repeat);
    const dropMs: number[] = [];
    for (let day = 0; day < sizes.repeat; day += 1) {
      const started = performance.now();
      await db.sql.exec(`DROP TABLE ${PARTITIONED}_${day}`);
      dropMs.push(performance.now() - started);
    }
    return { dropMs, readMs };
  } finally {
    await db.session((connection) => connection.exec(`DROP TABLE ${PARTITIONED}`), { queryTimeoutMs: 0 });
  }
}

interface DeleteFigures {
  deleteMs: number[];
  longestStatementMs: number[];
  vacuumMs: number[];
  ticksWithout: number[];
  ticksDuring: number[];
}

/**
 * Per repetition: ticks without a pass, then the oldest day deleted (removeDecisionTraces, as the
 * pass does) and the table vacuumed while the bot ticks back to back.
 */
async function measureDeletes(bench: BenchBot, db: Database, sizes: Sizes, firstDay: number, exchange: string): Promise<DeleteFigures> {
  const figures: DeleteFigures = { deleteMs: [], longestStatementMs: [], vacuumMs: [], ticksWithout: [], ticksDuring: [] };
  const tick = async (into: number[]) => {
    const started = performance.now();
    const [report] = await bench.bot.ticks(1);
    into.push(performance.now() - started);
    if (report?.flushError !== undefined || (report?.failed.length ?? 0) > 0) throw new Error(`tick failed: ${report?.flushError ?? report?.failed[0]?.error}`);
    forgetLogLines(bench.bot);
  };
  for (let day = 0; day < sizes.repeat; day += 1) {
    for (let i = 0; i < sizes.baselineTicks; i += 1) await tick(figures.ticksWithout);
    let finished = false;
    const pass = (async () => {
      try {
        let last = performance.now();
        let longest = 0;
        const started = last;
        await removeDecisionTraces(db, {
          exchange,
          before: firstDay + (day + 1) * DAY,
          onProgress: () => {
            const now = performance.now();
            longest = Math.max(longest, now - last);
            last = now;
          },
        });
        figures.deleteMs.push(performance.now() - started);
        figures.longestStatementMs.push(longest);
        const vacuumStarted = performance.now();
        await vacuumTable(db, "decision_traces");
        figures.vacuumMs.push(performance.now() - vacuumStarted);
      } finally {
        finished = true;
      }
    })();
    do {
      await tick(figures.ticksDuring);
    } while (!finished);
    await pass;
  }
  process.stderr.write(`retention bench: ticks during the passes ${figures.ticksDuring.length}, median ${median(figures.ticksDuring).toFixed(1)} ms\n`);
  return figures;
}
