import { TIMEFRAMES, TIMEFRAME_MS, silentLogger } from "@candlekeep/core";
import { saveCandles, type Database, type SqlRunner } from "@candlekeep/db";
import { DATABASE_KINDS, openTestDatabase } from "@candlekeep/db/testing";
import type { CheckContext } from "../check";
import { freshCandles, configFor } from "../test-helpers";
import { candlesBehind, coverageCheck, seriesState } from "./coverage";

const QUARTER = TIMEFRAME_MS["15m"];
const NOW = Date.UTC(2026, 10, 25, 12, 7, 30); // 12:07:30, inside the 12:00 quarter hour

describe("the freshness rule", () => {
  it("counts the candles missing before the one forming now", () => {
    const forming = Date.UTC(2026, 10, 25, 12, 0);
    expect(candlesBehind(forming, "15m", NOW)).toBe(0);
    expect(candlesBehind(forming - QUARTER, "15m", NOW)).toBe(1);
    expect(candlesBehind(forming + QUARTER, "15m", NOW)).toBe(-1);
    expect(candlesBehind(Date.UTC(2026, 10, 24), "1d", NOW)).toBe(1);
  });

  it("calls a series stale only when more than staleAfter candles are missing", () => {
    const forming = Date.UTC(2026, 10, 25, 12, 0);
    const series = (lastOpenTime: number | null) => ({ lastOpenTime, timeframe: "15m" as const });
    expect(seriesState(series(forming - 2 * QUARTER), 2, NOW)).toBe("fresh");
    expect(seriesState(series(forming - 3 * QUARTER), 2, NOW)).toBe("stale");
    expect(seriesState(series(forming - 3 * QUARTER), 3, NOW)).toBe("fresh");
    expect(seriesState(series(forming), 0, NOW)).toBe("fresh");
    expect(seriesState(series(forming - QUARTER), 0, NOW)).toBe("stale");
    expect(seriesState(series(null), 2, NOW)).toBe("empty");
  });
});

/**
 * Counts the queries a check sends, on the pool and on dedicated connections
 * alike (not the BEGIN/SET/COMMIT around one, which carry no data).
 */
function countingRunner(inner: SqlRunner, counter: { queries: number }): SqlRunner {
  return {
    query: <Row extends object>(text: string, params?: readonly unknown[]) => {
      counter.queries += 1;
      return inner.query<Row>(text, params);
    },
    exec: (text: string) => inner.exec(text),
  };
}

describe.each(DATABASE_KINDS)("coverage of 500 coins on the %s engine", (kind) => {
  const coins = Array.from({ length: 500 }, (_, i) => `C${i}/USDT`);
  let db: Awaited<ReturnType<typeof openTestDatabase>>;
  beforeAll(async () => {
    db = await openTestDatabase(kind);
    const saved = await saveCandles(db, freshCandles({ symbols: coins, timeframes: TIMEFRAMES, nowMs: NOW, count: 3 }), NOW);
    expect(saved.accepted).toBe(6000);
  });
  afterAll(async () => {
    await db.close();
  });

  function context(symbols: string[]): CheckContext & { counter: { queries: number } } {
    const counter = { queries: 0 };
    const counted: Database = { ...db, sql: countingRunner(db.sql, counter), session: (fn) => db.session((connection) => fn(countingRunner(connection, counter))) };
    return {
      counter,
      db: counted,
      readDb: counted,
      config: configFor(db.testDb, { EXCHANGE: "sim" }),
      nowMs: NOW,
      logger: silentLogger,
      trackedCoins: async () => ({ symbols, source: "test" }),
      exchangeBalances: undefined,
    };
  }

  it("checks 500 coins × 4 timeframes in one query", async () => {
    const ctx = context(coins);
    const outcome = await coverageCheck(ctx);
    expect(outcome.status).toBe("pass");
    expect(outcome.summary).toBe("500 coins × 4 timeframes on sim: all 2000 series fresh (≤ 2 candles behind), no gaps in the last 96 candles");
    expect(ctx.counter.queries).toBe(1);
  });

  it("lists the coins without candles compactly in one query, the full list in the data", async () => {
    const missing = Array.from({ length: 20 }, (_, i) => `NEW${i}/USDT`);
    const ctx = context([...coins, ...missing]);
    const outcome = await coverageCheck(ctx);
    expect(ctx.counter.queries).toBe(1);
    expect(outcome.status).toBe("fail");
    expect(outcome.summary).toBe("520 coins × 4 timeframes on sim: 80 with no candles of 2080 series — no candles: NEW0/USDT (all timeframes); NEW1/USDT (all timeframes); NEW10/USDT (all timeframes) … and 17 more (--json lists all)");
    expect(JSON.stringify(outcome.data).match(/"state":"empty"/g)).toHaveLength(80);
  });
});
