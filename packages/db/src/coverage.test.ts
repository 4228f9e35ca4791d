import { alignToTimeframe, TIMEFRAME_MS, type Timeframe } from "@candlekeep/core";
import { saveCandles, type CandleInput } from "./candles";
import { candleCoverage } from "./coverage";
import type { SqlRunner } from "./sql";
import { DATABASE_KINDS, openTestDatabase } from "./testing";

/** Not on a candle boundary, as a real clock would be. */
const NOW = Date.UTC(2026, 5, 1, 12, 7);
const WINDOW = 24;

/** Open time of the candle `ago` candles before the newest one at NOW. */
const openAt = (timeframe: Timeframe, ago: number) => alignToTimeframe(NOW, timeframe) - ago * TIMEFRAME_MS[timeframe];

/** Candles from `oldest` candles ago up to the newest, leaving out the `holes` (also counted in candles ago). */
function series(symbol: string, timeframe: Timeframe, oldest: number, holes: readonly number[] = [], exchange = "binance"): CandleInput[] {
  const rows: CandleInput[] = [];
  for (let ago = oldest; ago >= 0; ago -= 1) {
    if (holes.includes(ago)) continue;
    rows.push({ exchange, symbol, timeframe, openTime: openAt(timeframe, ago), open: 10, high: 11, low: 9, close: 10.5, volume: 1, isClosed: ago > 0 });
  }
  return rows;
}

describe.each(DATABASE_KINDS)("candleCoverage on the %s engine", (kind) => {
  let db: Awaited<ReturnType<typeof openTestDatabase>>;
  beforeAll(async () => {
    db = await openTestDatabase(kind);
    const result = await saveCandles(
      db,
      [
        // Two holes inside the recent 24-candle window (1 + 2 candles missing) and one before it.
        ...series("BTC/USDT", "1h", 48, [5, 10, 11, 30]),
        ...series("BTC/USDT", "15m", 10),
        // The first two candles of the window are missing, while older candles exist.
        ...series("ETH/USDT", "1h", 48, [23, 22]),
        // A series that started inside the window: gaps count from its first candle.
        ...series("NEW/USDT", "1h", 5, [2]),
        // Another exchange's candles are not ours.
        ...series("NONE/USDT", "1h", 10, [], "kraken"),
      ],
      NOW,
    );
    expect(result.rejected).toEqual([]);
  });
  afterAll(async () => {
    await db.close();
  });

  it("returns one row per requested symbol × timeframe, with first and last open times and recent gaps", async () => {
    const coverage = await candleCoverage(db, { exchange: "binance", symbols: ["BTC/USDT", "ETH/USDT", "NEW/USDT", "NONE/USDT"], timeframes: ["1h", "15m"], windowCandles: WINDOW, nowMs: NOW });
    const row = (symbol: string, timeframe: Timeframe, oldest: number | null, recentGaps: number) => ({
      exchange: "binance",
      symbol,
      timeframe,
      firstOpenTime: oldest === null ? null : openAt(timeframe, oldest),
      lastOpenTime: oldest === null ? null : openAt(timeframe, 0),
      recentGaps,
    });
    expect(coverage).toEqual([
      row("BTC/USDT", "15m", 10, 0),
      row("BTC/USDT", "1h", 48, 3),
      row("ETH/USDT", "15m", null, 0),
      row("ETH/USDT", "1h", 48, 2),
      row("NEW/USDT", "15m", null, 0),
      row("NEW/USDT", "1h", 5, 1),
      row("NONE/USDT", "15m", null, 0),
      row("NONE/USDT", "1h", null, 0),
    ]);
  });

  it("counts only the gaps inside the recent window", async () => {
    const [wide] = await candleCoverage(db, { exchange: "binance", symbols: ["BTC/USDT"], timeframes: ["1h"], windowCandles: 100, nowMs: NOW });
    expect(wide?.recentGaps).toBe(4);
    const [narrow] = await candleCoverage(db, { exchange: "binance", symbols: ["BTC/USDT"], timeframes: ["1h"], windowCandles: 5, nowMs: NOW });
    expect(narrow?.recentGaps).toBe(0);
  });

  it("on a candle boundary, counts the window's candles up to the one opening then, and no earlier one", async () => {
    // ETH/USDT lacks the candles 22 and 23 candles back: a window of 23 ends 22 back.
    const boundary = openAt("1h", 0);
    const [eth] = await candleCoverage(db, { exchange: "binance", symbols: ["ETH/USDT"], timeframes: ["1h"], windowCandles: 23, nowMs: boundary });
    expect(eth?.recentGaps).toBe(1);
    const [unaligned] = await candleCoverage(db, { exchange: "binance", symbols: ["ETH/USDT"], timeframes: ["1h"], windowCandles: 23, nowMs: NOW });
    expect(unaligned?.recentGaps).toBe(1);
  });

  it("reports no recent gaps for a series whose newest candle is older than the window", async () => {
    const [stale] = await candleCoverage(db, { exchange: "binance", symbols: ["BTC/USDT"], timeframes: ["1h"], windowCandles: WINDOW, nowMs: NOW + 100 * TIMEFRAME_MS["1h"] });
    expect(stale).toMatchObject({ lastOpenTime: openAt("1h", 0), recentGaps: 0 });
  });

  it("returns one row per series when a symbol or timeframe is asked for twice", async () => {
    const coverage = await candleCoverage(db, { exchange: "binance", symbols: ["NEW/USDT", "NEW/USDT"], timeframes: ["1h", "1h"], windowCandles: WINDOW, nowMs: NOW });
    expect(coverage.map((c) => [c.symbol, c.timeframe, c.firstOpenTime, c.recentGaps])).toEqual([["NEW/USDT", "1h", openAt("1h", 5), 1]]);
  });

  it("returns nothing when asked for no symbols", async () => {
    expect(await candleCoverage(db, { exchange: "binance", symbols: [], timeframes: ["1h"], windowCandles: WINDOW, nowMs: NOW })).toEqual([]);
  });
});

describe("candleCoverage on the server engine", () => {
  let db: Awaited<ReturnType<typeof openTestDatabase>>;
  beforeAll(async () => {
    db = await openTestDatabase("server");
  });
  afterAll(async () => {
    await db.close();
  });

  interface Watch {
    /** On the session's connection before candleCoverage gets it, and after it is done with it. */
    start?(connection: SqlRunner): Promise<void>;
    end?(connection: SqlRunner): Promise<void>;
    /** On the same connection (inside candleCoverage's transaction) before and after each of its queries. */
    beforeQuery?(connection: SqlRunner): Promise<void>;
    afterQuery?(connection: SqlRunner): Promise<void>;
  }

  /** The real database as candleCoverage uses it, with `watch` looking at the connection it is handed. */
  function watched(watch: Watch): Pick<typeof db, "kind" | "sql" | "session"> {
    return {
      kind: db.kind,
      sql: db.sql,
      session: <T>(fn: (connection: SqlRunner) => Promise<T>): Promise<T> =>
        db.session(async (connection) => {
          await watch.start?.(connection);
          const result = await fn({
            exec: (text) => connection.exec(text),
            async query<Row extends object>(text: string, params?: readonly unknown[]) {
              await watch.beforeQuery?.(connection);
              const rows = await connection.query<Row>(text, params);
              await watch.afterQuery?.(connection);
              return rows;
            },
          });
          await watch.end?.(connection);
          return result;
        }),
    };
  }

  it("runs its query with the JIT compiler off, and leaves the connection's setting as it was", async () => {
    const seen: string[] = [];
    let after: string | undefined;
    const jitOf = async (connection: SqlRunner) => (await connection.query<{ jit: string }>("SELECT current_setting('jit') AS jit")).rows[0]?.jit;
    // JIT switched on for the session, its setting read before each of candleCoverage's queries.
    const jitWatched = watched({
      start: (connection) => connection.exec("SET jit = on"),
      beforeQuery: async (connection) => {
        seen.push((await jitOf(connection)) ?? "unknown");
      },
      end: async (connection) => {
        after = await jitOf(connection);
        await connection.exec("RESET jit");
      },
    });
    const coverage = await candleCoverage(jitWatched, { exchange: "binance", symbols: ["BTC/USDT"], timeframes: ["1h"], windowCandles: WINDOW, nowMs: NOW });
    expect(coverage).toHaveLength(1);
    expect(seen).toEqual(["off"]);
    expect(after).toBe("on");
  });

  it("reads the ends of a series and its recent window only, however long its history", async () => {
    const history = 2_000;
    expect((await saveCandles(db, series("LONG/USDT", "1h", history - 1), NOW)).rejected).toEqual([]);
    // Index entries the coverage query returned, read inside its own transaction on its connection.
    let entriesRead: number | undefined;
    const statsWatched = watched({
      afterQuery: async (connection) => {
        const stats = await connection.query<{ read: string }>("SELECT pg_stat_get_xact_tuples_returned('candles_pkey'::regclass) AS read");
        entriesRead = Number(stats.rows[0]?.read);
      },
    });
    const [long] = await candleCoverage(statsWatched, { exchange: "binance", symbols: ["LONG/USDT"], timeframes: ["1h"], windowCandles: WINDOW, nowMs: NOW });
    expect(long).toMatchObject({ firstOpenTime: openAt("1h", history - 1), lastOpenTime: openAt("1h", 0), recentGaps: 0 });
    // The first and the last candle, and the window's 24 (the forming one among them): 26 of 2,000.
    expect(entriesRead).toBe(2 + WINDOW);
  });
});
