import { alignToTimeframe, TIMEFRAME_MS, type Timeframe } from "@candlekeep/core";
import { saveCandles, type CandleInput } from "./candles";
import { AUDIT_LOCK_NAMESPACE, auditHistory, InvalidHistoryRequestError, listCandleGaps, markRangeUnavailable, seriesAuditStates, type CandleGap } from "./history";
import { DATABASE_KINDS, openTestDatabase, rejection, until } from "./testing";

/** Not on a candle boundary, as a real clock would be. */
const NOW = Date.UTC(2026, 5, 1, 12, 7);
const DAY = 86_400_000;

/** Open time of the candle `ago` candles before the one forming at `nowMs`. */
const openAt = (timeframe: Timeframe, ago: number, nowMs = NOW) => alignToTimeframe(nowMs, timeframe) - ago * TIMEFRAME_MS[timeframe];

/** Whether the candle `ago` candles back is one of `holes` (single offsets or inclusive [from, to] runs). */
const inHoles = (ago: number, holes: ReadonlyArray<number | readonly [number, number]>) => holes.some((h) => (typeof h === "number" ? h === ago : ago <= h[0] && ago >= h[1]));

/**
 * Candles of one series from `oldest` candles before the one forming at `nowMs` up to it (that one
 * forming, the others closed), leaving out the `holes`; `newest` > 0 ends the series earlier.
 */
function series(
  exchange: string,
  symbol: string,
  timeframe: Timeframe,
  oldest: number,
  options: { holes?: ReadonlyArray<number | readonly [number, number]>; newest?: number; nowMs?: number } = {},
): CandleInput[] {
  const rows: CandleInput[] = [];
  for (let ago = oldest; ago >= (options.newest ?? 0); ago -= 1) {
    if (inHoles(ago, options.holes ?? [])) continue;
    rows.push({ exchange, symbol, timeframe, openTime: openAt(timeframe, ago, options.nowMs), open: 10, high: 11, low: 9, close: 10.5, volume: 1, isClosed: ago > 0 });
  }
  return rows;
}

/** The gap of the candles `from` to `to` candles back (from ≥ to), as listed. */
function gap(exchange: string, symbol: string, timeframe: Timeframe, from: number, to: number, unavailable = false, nowMs = NOW): CandleGap {
  return { exchange, symbol, timeframe, fromTime: openAt(timeframe, from, nowMs), toTime: openAt(timeframe, to, nowMs), missing: from - to + 1, unavailable };
}

describe.each(DATABASE_KINDS)("the history audit on the %s engine", (kind) => {
  let db: Awaited<ReturnType<typeof openTestDatabase>>;
  beforeAll(async () => {
    db = await openTestDatabase(kind);
  });
  afterAll(async () => {
    await db.close();
  });

  async function store(rows: readonly CandleInput[], nowMs = NOW) {
    const result = await saveCandles(db, rows, nowMs + DAY);
    expect(result.rejected).toEqual([]);
  }

  it("finds a missing candle, a run of candles and a missing day on the first audit, with their exact ranges and counts", async () => {
    // 3,000 15m candles (counted first, then read in detail where short), a complete long series, and a short 1h one.
    await store([
      ...series("first", "BTC/USDT", "15m", 2_999, { holes: [2_500, [1_210, 1_206], [700, 605]] }),
      ...series("first", "ETH/USDT", "15m", 2_999),
      ...series("first", "ETH/USDT", "1h", 100, { holes: [[99, 76], 3] }),
    ]);
    const result = await auditHistory(db, { exchange: "first" });
    expect(result).toMatchObject({ series: 3, gaps: 5, missingCandles: 1 + 5 + 96 + 24 + 1 });
    // Every stored closed candle was read once: the forming ones are not audited yet.
    expect(result.scannedCandles).toBe(2_999 - 102 + 2_999 + 100 - 25);
    expect(await listCandleGaps(db, { exchange: "first" })).toEqual([
      gap("first", "BTC/USDT", "15m", 2_500, 2_500),
      gap("first", "BTC/USDT", "15m", 1_210, 1_206),
      gap("first", "BTC/USDT", "15m", 700, 605),
      gap("first", "ETH/USDT", "1h", 99, 76),
      gap("first", "ETH/USDT", "1h", 3, 3),
    ]);
  });

  it("finds holes of any length anywhere in a long series: across the edges of its reads and longer than one", async () => {
    // 20,000 15m candles: the audit reads them in chunks of 4,096 (edges at 15,903/15,902, 11,807/11,806, 7,711/7,710, 3,615/3,614 candles back).
    await store(series("long", "BTC/USDT", "15m", 19_999, { holes: [[15_903, 15_902], [12_000, 7_000], 3_615] }));
    const result = await auditHistory(db, { exchange: "long" });
    expect(result).toMatchObject({ series: 1, scannedCandles: 19_999 - 5_004, gaps: 3, missingCandles: 5_004 });
    expect(await listCandleGaps(db, { exchange: "long" })).toEqual([
      gap("long", "BTC/USDT", "15m", 15_903, 15_902),
      gap("long", "BTC/USDT", "15m", 12_000, 7_000),
      gap("long", "BTC/USDT", "15m", 3_615, 3_615),
    ]);
  });

  it("reads only the candles stored since on a repeat audit, and finds the hole a downtime left after the watermark", async () => {
    await store(series("repeat", "BTC/USDT", "1h", 200, { holes: [150] }));
    await auditHistory(db, { exchange: "repeat" });
    const again = await auditHistory(db, { exchange: "repeat" });
    expect(again).toMatchObject({ series: 1, scannedCandles: 0, gaps: 1, missingCandles: 1 });

    // Two days later: the bot was down for the first 30 hours; the candles since are stored.
    const later = NOW + 2 * DAY;
    await store(series("repeat", "BTC/USDT", "1h", 48, { nowMs: later, holes: [[47, 18]] }), later);
    const repeat = await auditHistory(db, { exchange: "repeat" });
    // 18 closed candles stored since the watermark: the one forming then, and 17 after the downtime.
    expect(repeat).toMatchObject({ series: 1, scannedCandles: 18, gaps: 2, missingCandles: 1 + 30 });
    expect(await listCandleGaps(db, { exchange: "repeat" })).toEqual([gap("repeat", "BTC/USDT", "1h", 150, 150), gap("repeat", "BTC/USDT", "1h", 47, 18, false, later)]);
  });

  it("removes a gap once its candles are stored, and shrinks or splits one that is partly filled", async () => {
    await store([...series("fill", "BTC/USDT", "1h", 300, { holes: [[250, 241], [200, 191], [150, 141]] })]);
    await auditHistory(db, { exchange: "fill" });
    // All of the first, the start of the second, the middle of the third.
    await store([...series("fill", "BTC/USDT", "1h", 250, { newest: 241 }), ...series("fill", "BTC/USDT", "1h", 200, { newest: 197 }), ...series("fill", "BTC/USDT", "1h", 146, { newest: 145 })]);
    const result = await auditHistory(db, { exchange: "fill" });
    expect(result).toMatchObject({ scannedCandles: 0, gaps: 3, missingCandles: 6 + 4 + 4 });
    expect(await listCandleGaps(db, { exchange: "fill" })).toEqual([
      gap("fill", "BTC/USDT", "1h", 196, 191),
      gap("fill", "BTC/USDT", "1h", 150, 147),
      gap("fill", "BTC/USDT", "1h", 144, 141),
    ]);
  });

  it("moves the watermark to the newest closed candle only: a forming candle is audited once it has closed", async () => {
    await store(series("forming", "BTC/USDT", "4h", 20));
    await auditHistory(db, { exchange: "forming" });
    expect(await seriesAuditStates(db, { exchange: "forming" })).toEqual([
      expect.objectContaining({ exchange: "forming", symbol: "BTC/USDT", timeframe: "4h", firstOpenTime: openAt("4h", 20), auditedUntil: openAt("4h", 1) }),
    ]);
    // The forming candle closes and the next one forms.
    const later = NOW + TIMEFRAME_MS["4h"];
    await store(series("forming", "BTC/USDT", "4h", 1, { nowMs: later }), later);
    expect(await auditHistory(db, { exchange: "forming" })).toMatchObject({ scannedCandles: 1, gaps: 0 });
    expect((await seriesAuditStates(db, { exchange: "forming" }))[0]?.auditedUntil).toBe(openAt("4h", 1, later));
  });

  it("audits candles stored before the first audited one when history is extended backwards", async () => {
    await store(series("extend", "BTC/USDT", "1d", 30));
    await auditHistory(db, { exchange: "extend" });
    // A backfill further back: 60 older days, two of them missing.
    await store(series("extend", "BTC/USDT", "1d", 90, { newest: 31, holes: [[70, 69]] }));
    const result = await auditHistory(db, { exchange: "extend" });
    expect(result).toMatchObject({ scannedCandles: 58, gaps: 1, missingCandles: 2 });
    expect(await listCandleGaps(db, { exchange: "extend" })).toEqual([gap("extend", "BTC/USDT", "1d", 70, 69)]);
    expect((await seriesAuditStates(db, { exchange: "extend" }))[0]).toMatchObject({ firstOpenTime: openAt("1d", 90), auditedUntil: openAt("1d", 1) });
    // The candle just before the old first one missing is found too.
    await store(series("extend", "BTC/USDT", "1d", 95, { newest: 92 }));
    expect(await auditHistory(db, { exchange: "extend" })).toMatchObject({ scannedCandles: 4, gaps: 2, missingCandles: 3 });
    expect((await listCandleGaps(db, { exchange: "extend" }))[0]).toEqual(gap("extend", "BTC/USDT", "1d", 91, 91));
  });

  it("keeps a range marked unavailable listed as such through later audits, and lists it only when asked to", async () => {
    await store(series("unavailable", "BTC/USDT", "1h", 100, { holes: [[80, 71], [40, 31]] }));
    await auditHistory(db, { exchange: "unavailable" });
    // The exchange has nothing for part of the first gap, for all of the second, and for a week before the listing.
    await markRangeUnavailable(db, { exchange: "unavailable", symbol: "BTC/USDT", timeframe: "1h", fromTime: openAt("1h", 76), toTime: openAt("1h", 71) });
    await markRangeUnavailable(db, { exchange: "unavailable", symbol: "BTC/USDT", timeframe: "1h", fromTime: openAt("1h", 40), toTime: openAt("1h", 31) });
    await markRangeUnavailable(db, { exchange: "unavailable", symbol: "BTC/USDT", timeframe: "1h", fromTime: openAt("1h", 100 + 168), toTime: openAt("1h", 101) });
    const later = NOW + DAY;
    await store(series("unavailable", "BTC/USDT", "1h", 24, { nowMs: later }), later);
    const result = await auditHistory(db, { exchange: "unavailable" });
    expect(result).toMatchObject({ gaps: 4, missingCandles: 4 });
    expect(await listCandleGaps(db, { exchange: "unavailable" })).toEqual([gap("unavailable", "BTC/USDT", "1h", 80, 77)]);
    expect(await listCandleGaps(db, { exchange: "unavailable", includeUnavailable: true })).toEqual([
      gap("unavailable", "BTC/USDT", "1h", 100 + 168, 101, true),
      gap("unavailable", "BTC/USDT", "1h", 80, 77),
      gap("unavailable", "BTC/USDT", "1h", 76, 71, true),
      gap("unavailable", "BTC/USDT", "1h", 40, 31, true),
    ]);
  });

  it("records a marked range inside a stretch not yet audited, and the audit that finds the hole keeps it", async () => {
    await store(series("outage", "BTC/USDT", "15m", 50));
    await auditHistory(db, { exchange: "outage" });
    // An exchange outage after the watermark: the resume found nothing for 10 candles of a 20-candle hole.
    const later = NOW + DAY;
    await markRangeUnavailable(db, { exchange: "outage", symbol: "BTC/USDT", timeframe: "15m", fromTime: openAt("15m", 80, later), toTime: openAt("15m", 71, later) });
    await store(series("outage", "BTC/USDT", "15m", 95, { nowMs: later, holes: [[85, 66]] }), later);
    expect(await auditHistory(db, { exchange: "outage" })).toMatchObject({ gaps: 3, missingCandles: 10 });
    expect(await listCandleGaps(db, { exchange: "outage", includeUnavailable: true })).toEqual([
      gap("outage", "BTC/USDT", "15m", 85, 81, false, later),
      gap("outage", "BTC/USDT", "15m", 80, 71, true, later),
      gap("outage", "BTC/USDT", "15m", 70, 66, false, later),
    ]);
  });

  it("marks only the missing candles of a range that holds stored ones, splitting it there", async () => {
    await store(series("split", "BTC/USDT", "1h", 30, { holes: [[20, 16], [12, 11]] }));
    await markRangeUnavailable(db, { exchange: "split", symbol: "BTC/USDT", timeframe: "1h", fromTime: openAt("1h", 22), toTime: openAt("1h", 10) });
    expect(await listCandleGaps(db, { exchange: "split", includeUnavailable: true })).toEqual([gap("split", "BTC/USDT", "1h", 20, 16, true), gap("split", "BTC/USDT", "1h", 12, 11, true)]);
    // The audit finds nothing new in them.
    expect(await auditHistory(db, { exchange: "split" })).toMatchObject({ gaps: 2, missingCandles: 0 });
  });

  it("audits only the selected exchange, symbols and timeframes, and leaves other series untouched", async () => {
    await store([
      ...series("scope", "BTC/USDT", "1h", 50, { holes: [10] }),
      ...series("scope", "BTC/USDT", "15m", 50, { holes: [10] }),
      ...series("scope", "ETH/USDT", "1h", 50, { holes: [10] }),
      ...series("scope-other", "BTC/USDT", "1h", 50, { holes: [10] }),
    ]);
    expect(await auditHistory(db, { exchange: "scope", symbols: ["BTC/USDT"], timeframes: ["1h"] })).toMatchObject({ series: 1, gaps: 1, missingCandles: 1 });
    expect(await listCandleGaps(db, { exchange: "scope" })).toEqual([gap("scope", "BTC/USDT", "1h", 10, 10)]);
    expect((await seriesAuditStates(db, { exchange: "scope" })).map((s) => `${s.symbol} ${s.timeframe}`)).toEqual(["BTC/USDT 1h"]);
    expect(await seriesAuditStates(db, { exchange: "scope-other" })).toEqual([]);
    expect(await listCandleGaps(db, { exchange: "scope-other" })).toEqual([]);

    expect(await auditHistory(db, { exchange: "scope" })).toMatchObject({ series: 3, gaps: 3 });
    expect((await listCandleGaps(db, { exchange: "scope", timeframes: ["15m"] })).map((g) => `${g.symbol} ${g.timeframe}`)).toEqual(["BTC/USDT 15m"]);
    expect(await listCandleGaps(db, { exchange: "scope-other" })).toEqual([]);
  });

  it("refuses an empty exchange, an unknown timeframe and a range off the timeframe's grid or reversed, saying what to pass", async () => {
    await expect(auditHistory(db, { exchange: "" })).rejects.toThrow(/exchange is empty/);
    const unknown = await rejection(listCandleGaps(db, { exchange: "x", timeframes: ["5m" as Timeframe] }));
    expect(unknown).toBeInstanceOf(InvalidHistoryRequestError);
    expect(unknown.message).toBe('listCandleGaps: unknown timeframe "5m"; use 15m, 1h, 4h, 1d or leave timeframes out for all.');
    await expect(markRangeUnavailable(db, { exchange: "x", symbol: "BTC/USDT", timeframe: "1h", fromTime: openAt("1h", 5) + 1, toTime: openAt("1h", 1) })).rejects.toThrow(/fromTime .* is not a 1h candle's open time/);
    await expect(markRangeUnavailable(db, { exchange: "x", symbol: "BTC/USDT", timeframe: "1h", fromTime: openAt("1h", 1), toTime: openAt("1h", 5) })).rejects.toThrow(/is after toTime/);
  });
});

describe("the history audit's lock on the server engine", () => {
  let db: Awaited<ReturnType<typeof openTestDatabase>>;
  beforeAll(async () => {
    db = await openTestDatabase("server");
  });
  afterAll(async () => {
    await db.close();
  });

  it("waits for another audit of the same exchange to finish before it reads", async () => {
    expect((await saveCandles(db, series("locked", "BTC/USDT", "1h", 50, { holes: [20] }), NOW + DAY)).rejected).toEqual([]);
    // Another process's audit of the exchange, holding its lock.
    let released: () => void = () => undefined;
    const holding = db.session(async (connection) => {
      await connection.query("SELECT pg_advisory_lock($1, hashtext($2))", [AUDIT_LOCK_NAMESPACE, "locked"]);
      await new Promise<void>((resolve) => {
        released = resolve;
      });
      await connection.query("SELECT pg_advisory_unlock($1, hashtext($2))", [AUDIT_LOCK_NAMESPACE, "locked"]);
    });
    let done = false;
    const audit = auditHistory(db, { exchange: "locked" }).finally(() => {
      done = true;
    });
    // The audit's session waits on the advisory lock, and has recorded nothing.
    await until("the audit waiting for the lock", async () => ((await db.sql.query("SELECT 1 FROM pg_stat_activity WHERE wait_event = 'advisory' AND datname = current_database()")).rowCount > 0 ? true : undefined), 10_000);
    expect(done).toBe(false);
    expect(await seriesAuditStates(db, { exchange: "locked" })).toEqual([]);
    released();
    await holding;
    expect(await audit).toMatchObject({ series: 1, gaps: 1, missingCandles: 1 });
  });
});
