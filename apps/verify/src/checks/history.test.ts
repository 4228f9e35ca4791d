import { alignToTimeframe, silentLogger, TIMEFRAME_MS, type Timeframe } from "@candlekeep/core";
import { markRangeUnavailable, saveCandles, type Database } from "@candlekeep/db";
import { captureLogger, DATABASE_KINDS, type TestDatabase } from "@candlekeep/db/testing";
import type { CheckContext } from "../check";
import { renderJson } from "../report";
import { runVerify } from "../run";
import { configFor, createMigratedDatabase, freshCandles, withDatabase } from "../test-helpers";
import { auditProgress, historyCheck } from "./history";

const NOW = Date.UTC(2026, 10, 25, 12, 7, 30);
const COINS = ["BTC/USDT", "ETH/USDT"];
const TIMEFRAMES: Timeframe[] = ["15m", "1h"];

/** Open time of the candle `ago` candles before the one forming at NOW (freshCandles' index). */
const openAt = (timeframe: Timeframe, ago: number) => alignToTimeframe(NOW, timeframe) - ago * TIMEFRAME_MS[timeframe];
const short = (ms: number) => new Date(ms).toISOString().replace(/:00\.000Z$/, "Z");
const range = (timeframe: Timeframe, from: number, to: number) => ({ from: new Date(openAt(timeframe, from)).toISOString(), to: new Date(openAt(timeframe, to)).toISOString() });

/** 300 candles of each coin × timeframe on `exchange`, leaving out `skip` (candles ago) of the series named in it. */
async function fill(db: Database, exchange: string, skip: Record<string, readonly number[]> = {}) {
  for (const symbol of COINS) {
    for (const timeframe of TIMEFRAMES) {
      const saved = await saveCandles(db, freshCandles({ exchange, symbols: [symbol], timeframes: [timeframe], nowMs: NOW, count: 300, skip: skip[`${symbol} ${timeframe}`] ?? [] }), NOW);
      expect(saved.rejected).toEqual([]);
    }
  }
}

describe.each(DATABASE_KINDS)("the history check on the %s engine", (kind) => {
  let testDb: TestDatabase;
  beforeAll(async () => {
    testDb = await createMigratedDatabase(kind, async (db) => {
      await fill(db, "clean");
      // Old holes: one candle and a run of three 15m candles, one 1h candle 250 hours back; one recent (the coverage check's).
      await fill(db, "gappy", { "BTC/USDT 15m": [200, 152, 151, 150], "BTC/USDT 1h": [250, 10] });
      // A run the exchange has no data for, and a stretch before the first candle (the coin's listing).
      await fill(db, "listing", { "ETH/USDT 1h": [159, 158, 157, 156, 155, 154, 153, 152, 151, 150] });
      await fill(db, "restored");
    });
  });
  afterAll(async () => {
    await testDb.drop();
  });

  const context = (db: Database, exchange: string, logger = silentLogger, argv: readonly string[] = []): CheckContext => ({
    db,
    readDb: db,
    config: configFor(testDb, { EXCHANGE: exchange, TIMEFRAMES: TIMEFRAMES.join(",") }, argv),
    nowMs: NOW,
    logger,
    trackedCoins: async () => ({ symbols: COINS, source: "test" }),
    exchangeBalances: undefined,
  });

  it("passes a complete history, and a repeat run reads no candle again", async () => {
    const first = await withDatabase(testDb, (db) => historyCheck(context(db, "clean")));
    expect(first.status).toBe("pass");
    expect(first.summary).toBe("2 coins × 2 timeframes on clean: no gaps older than the last 96 candles in the 4 series audited");
    expect(first.data).toMatchObject({ audit: { series: 4, scannedCandles: 4 * 299 }, gaps: [], missingCandles: 0, repair: null, unavailable: [] });
    expect(first.data?.series).toContainEqual({ symbol: "BTC/USDT", timeframe: "15m", firstOpenTime: new Date(openAt("15m", 299)).toISOString(), completeUpTo: new Date(openAt("15m", 1)).toISOString() });

    const again = await withDatabase(testDb, (db) => historyCheck(context(db, "clean")));
    expect(again.status).toBe("pass");
    expect(again.data).toMatchObject({ audit: { series: 4, scannedCandles: 0 } });
  });

  it("finds candles removed behind the audited range only with --full-audit, which reads every candle again; the gap stays known after", async () => {
    expect((await withDatabase(testDb, (db) => historyCheck(context(db, "restored")))).status).toBe("pass");
    // As if restored from an older backup: candles the audit already counted are gone.
    await withDatabase(testDb, (db) =>
      db.sql.query("DELETE FROM candles WHERE exchange = 'restored' AND symbol = 'ETH/USDT' AND timeframe = '15m' AND open_time BETWEEN $1 AND $2", [new Date(openAt("15m", 202)), new Date(openAt("15m", 200))]),
    );
    const incremental = await withDatabase(testDb, (db) => historyCheck(context(db, "restored")));
    expect(incremental.status).toBe("pass");
    expect(incremental.data).toMatchObject({ audit: { scannedCandles: 0 } });

    const full = await withDatabase(testDb, (db) => historyCheck(context(db, "restored", silentLogger, ["--full-audit"])));
    expect(full.status).toBe("warn");
    expect(full.data).toMatchObject({ audit: { series: 4, scannedCandles: 3 * 299 + 296 }, gaps: [{ symbol: "ETH/USDT", timeframe: "15m", ...range("15m", 202, 200), missing: 3 }], missingCandles: 3 });
    const after = await withDatabase(testDb, (db) => historyCheck(context(db, "restored")));
    expect(after.data).toMatchObject({ audit: { scannedCandles: 0 }, missingCandles: 3 });
  });

  it("warns about scattered old gaps with their exact ranges and the backfill reaching the oldest, leaving recent ones to the coverage check", async () => {
    const outcome = await withDatabase(testDb, (db) => historyCheck(context(db, "gappy")));
    expect(outcome.status).toBe("warn");
    // The oldest gap opens 250 h and 7.5 min before NOW: 11 days reach it.
    expect(outcome.summary).toBe("2 coins × 2 timeframes on gappy: 3 gaps older than the last 96 candles, 5 candles missing in 2 series — repair: pnpm --filter bot start -- backfill --days 11");
    expect(outcome.details).toContain(
      `gaps older than the last 96 candles (3 ranges, 5 candles missing in 2 series): BTC/USDT 15m ${short(openAt("15m", 200))} … ${short(openAt("15m", 200))} (1 missing); ` +
        `BTC/USDT 15m ${short(openAt("15m", 152))} … ${short(openAt("15m", 150))} (3 missing); BTC/USDT 1h ${short(openAt("1h", 250))} … ${short(openAt("1h", 250))} (1 missing)`,
    );
    expect(outcome.details).toContain(`repair: pnpm --filter bot start -- backfill --days 11 (reaches back to the oldest gap, ${short(openAt("1h", 250))})`);
    expect(outcome.data).toMatchObject({
      gaps: [
        { symbol: "BTC/USDT", timeframe: "15m", ...range("15m", 200, 200), missing: 1 },
        { symbol: "BTC/USDT", timeframe: "15m", ...range("15m", 152, 150), missing: 3 },
        { symbol: "BTC/USDT", timeframe: "1h", ...range("1h", 250, 250), missing: 1 },
      ],
      missingCandles: 5,
      repair: "pnpm --filter bot start -- backfill --days 11",
    });
  });

  it("puts the gaps, their ranges and the repair in verify's --json report", async () => {
    const report = await runVerify(configFor(testDb, { EXCHANGE: "gappy", SYMBOLS: COINS.join(","), TIMEFRAMES: TIMEFRAMES.join(",") }, ["--only", "history", "--json"]), { logger: silentLogger, now: () => NOW });
    const json = JSON.parse(renderJson(report)) as { status: string; checks: { name: string; status: string; data: { gaps: unknown[]; repair: string } }[] };
    expect(json.status).toBe("warn");
    const history = json.checks.find((c) => c.name === "history");
    expect(history?.status).toBe("warn");
    expect(history?.data.gaps).toEqual([
      { symbol: "BTC/USDT", timeframe: "15m", ...range("15m", 200, 200), missing: 1 },
      { symbol: "BTC/USDT", timeframe: "15m", ...range("15m", 152, 150), missing: 3 },
      { symbol: "BTC/USDT", timeframe: "1h", ...range("1h", 250, 250), missing: 1 },
    ]);
    expect(history?.data.repair).toBe("pnpm --filter bot start -- backfill --days 11");
  });

  it("lists ranges the exchange has no data for as information, without warning", async () => {
    await withDatabase(testDb, async (db) => {
      await historyCheck(context(db, "listing"));
      await markRangeUnavailable(db, { exchange: "listing", symbol: "ETH/USDT", timeframe: "1h", fromTime: openAt("1h", 159), toTime: openAt("1h", 150) });
      await markRangeUnavailable(db, { exchange: "listing", symbol: "BTC/USDT", timeframe: "15m", fromTime: openAt("15m", 319), toTime: openAt("15m", 300) });
    });
    const outcome = await withDatabase(testDb, (db) => historyCheck(context(db, "listing")));
    expect(outcome.status).toBe("pass");
    expect(outcome.summary).toBe("2 coins × 2 timeframes on listing: no gaps older than the last 96 candles in the 4 series audited; 2 ranges unavailable at the exchange");
    expect(outcome.details).toContain(
      `unavailable at the exchange, not fetched again (2 ranges): BTC/USDT 15m ${short(openAt("15m", 319))} … ${short(openAt("15m", 300))} (20 candles); ` +
        `ETH/USDT 1h ${short(openAt("1h", 159))} … ${short(openAt("1h", 150))} (10 candles)`,
    );
    expect(outcome.data).toMatchObject({
      gaps: [],
      repair: null,
      unavailable: [
        { symbol: "BTC/USDT", timeframe: "15m", ...range("15m", 319, 300), missing: 20 },
        { symbol: "ETH/USDT", timeframe: "1h", ...range("1h", 159, 150), missing: 10 },
      ],
    });
  });
});

describe("the history audit's progress", () => {
  it("logs a line each time a long audit passes another 5 %, none at its end", () => {
    const logger = captureLogger();
    const progress = auditProgress(logger, "binance");
    for (const done of [1_000_000, 1_100_000, 2_000_000, 2_100_000, 4_000_000]) progress(done, 4_000_000);
    expect(logger.lines).toEqual([
      { level: "info", message: "history audit: 1000000 of 4000000 candle slots checked (25 %)", meta: { exchange: "binance", done: 1_000_000, total: 4_000_000, percent: 25 } },
      { level: "info", message: "history audit: 2000000 of 4000000 candle slots checked (50 %)", meta: { exchange: "binance", done: 2_000_000, total: 4_000_000, percent: 50 } },
    ]);
  });

  it("logs nothing for an audit done in one read", () => {
    const logger = captureLogger();
    auditProgress(logger, "binance")(96, 96);
    expect(logger.lines).toEqual([]);
  });
});
