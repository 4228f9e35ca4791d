import { setTimeout as sleep } from "node:timers/promises";
import { TIMEFRAME_MS } from "@candlekeep/core";
import { TWO_PART_MIN_ROWS } from "./candle-write";
import { saveCandles, recentCandles, latestCandlesPerSeries, latestSeriesCandles, type CandleInput } from "./candles";
import { DATABASE_KINDS, openTestDatabase, until } from "./testing";
import type { Database } from "./connect";

const HOUR = TIMEFRAME_MS["1h"];
const T0 = Date.UTC(2026, 0, 1);

function candle(overrides: Partial<CandleInput> = {}): CandleInput {
  return { exchange: "sim", symbol: "BTC/USDT", timeframe: "1h", openTime: T0, open: 100, high: 110, low: 90, close: 105, volume: 12.5, isClosed: true, ...overrides };
}

function series(symbols: number, timeframes: readonly string[], perSeries: number): CandleInput[] {
  const rows: CandleInput[] = [];
  for (let s = 0; s < symbols; s += 1) {
    for (const timeframe of timeframes) {
      const step = TIMEFRAME_MS[timeframe as "1h"];
      for (let i = 0; i < perSeries; i += 1) {
        const open = 100 + s + i * 0.5;
        rows.push(candle({ symbol: `C${s}/USDT`, timeframe, openTime: T0 + i * step, open, close: open + 0.25, high: open + 1, low: open - 1, volume: i }));
      }
    }
  }
  return rows;
}

async function countCandles(db: Database): Promise<number> {
  const result = await db.sql.query<{ n: string }>("SELECT count(*) AS n FROM candles");
  return Number(result.rows[0]?.n);
}

describe.each(DATABASE_KINDS)("saveCandles on the %s engine", (kind) => {
  let db: Awaited<ReturnType<typeof openTestDatabase>>;
  beforeAll(async () => {
    db = await openTestDatabase(kind);
  });
  afterAll(async () => {
    await db.close();
  });
  beforeEach(async () => {
    await db.sql.exec("TRUNCATE candles");
  });

  it("writes 20,000 candles of many series in one call and writes nothing when they are sent again", async () => {
    const rows = series(500, ["15m", "1h", "4h", "1d"], 10);
    expect(rows).toHaveLength(20_000);
    const first = await saveCandles(db, rows);
    expect(first).toMatchObject({ written: 20_000, accepted: 20_000, rejected: [] });
    expect(await countCandles(db)).toBe(20_000);

    const again = await saveCandles(db, rows);
    expect(again.written).toBe(0);
    expect(await countCandles(db)).toBe(20_000);
  });

  it("writes a batch of new series and stored ones together: new rows inserted, changed ones updated, the rest left", async () => {
    const stored = series(2, ["1h"], 30);
    await saveCandles(db, stored.filter((c) => c.symbol === "C0/USDT" || c.openTime >= T0 + 10 * HOUR));
    // C0: 30 stored, 2 of them changed now. C1: 20 newer stored, 10 older new. C2 and C3: new.
    const changed = new Set([T0 + 3 * HOUR, T0 + 29 * HOUR]);
    const batch = [...stored, ...series(4, ["1h"], 30).filter((c) => c.symbol === "C2/USDT" || c.symbol === "C3/USDT")].map((c) =>
      c.symbol === "C0/USDT" && changed.has(c.openTime) ? { ...c, close: c.close + 0.5, high: c.high + 0.5 } : c,
    );
    const result = await saveCandles(db, batch);
    expect(result).toMatchObject({ written: 2 + 10 + 60, accepted: 120, rejected: [] });
    expect(await countCandles(db)).toBe(120);
    const c0 = await recentCandles(db, { exchange: "sim", symbol: "C0/USDT", timeframe: "1h" }, 30);
    expect(c0.filter((c) => changed.has(c.openTime)).map((c) => c.close)).toEqual(batch.filter((c) => c.symbol === "C0/USDT" && changed.has(c.openTime)).map((c) => c.close));
    expect((await recentCandles(db, { exchange: "sim", symbol: "C3/USDT", timeframe: "1h" }, 30)).map((c) => c.openTime)).toEqual(batch.filter((c) => c.symbol === "C3/USDT").map((c) => c.openTime));
  });

  it("updates the still-forming candle only when its values change, and stores exact float values", async () => {
    await saveCandles(db, [candle({ isClosed: false, close: 101.123456789012 })]);
    expect((await saveCandles(db, [candle({ isClosed: false, close: 101.123456789012 })])).written).toBe(0);

    const moved = await saveCandles(db, [candle({ isClosed: false, close: 107.5, high: 111 })]);
    expect(moved.written).toBe(1);
    const [stored] = await recentCandles(db, { exchange: "sim", symbol: "BTC/USDT", timeframe: "1h" }, 5);
    expect(stored).toMatchObject({ close: 107.5, high: 111, isClosed: false, openTime: T0 });

    await saveCandles(db, [candle({ isClosed: true, close: 108, high: 111 })]);
    expect((await recentCandles(db, { exchange: "sim", symbol: "BTC/USDT", timeframe: "1h" }, 5))[0]).toMatchObject({ close: 108, isClosed: true });
  });

  it("leaves room on every page, so a forming candle's update stays on its page (an in-place HOT update)", async () => {
    // 50 series of 20 candles, the newest of each still forming: ~20 pages, each with 2-3 forming rows.
    const rows = series(50, ["1h"], 20).map((c) => (c.openTime === T0 + 19 * HOUR ? { ...c, isClosed: false } : c));
    await saveCandles(db, rows);
    const pages = async () => {
      const result = await db.sql.query<{ symbol: string; page: number }>("SELECT symbol, (ctid::text::point)[0]::int AS page FROM candles WHERE NOT is_closed ORDER BY symbol");
      return result.rows;
    };
    const before = await pages();
    expect(new Set(before.map((r) => r.page)).size).toBeGreaterThan(10);

    const moved = rows.filter((c) => !c.isClosed).map((c) => ({ ...c, close: c.close + 0.125, high: c.high + 0.125 }));
    expect((await saveCandles(db, moved)).written).toBe(50);
    // Full pages (fillfactor 100) would send every update but the last page's elsewhere.
    expect(await pages()).toEqual(before);
  });

  it("never turns a closed candle back into a forming one", async () => {
    await saveCandles(db, [candle({ isClosed: true, close: 105 })]);
    const stale = await saveCandles(db, [candle({ isClosed: false, close: 99, low: 80 })]);
    expect(stale.written).toBe(0);
    expect((await recentCandles(db, { exchange: "sim", symbol: "BTC/USDT", timeframe: "1h" }, 1))[0]).toMatchObject({ close: 105, isClosed: true });
  });

  it("rejects invalid rows with a reason and saves the rest of the batch", async () => {
    const good = candle();
    const result = await saveCandles(db, [
      good,
      candle({ openTime: T0 + HOUR, open: Number.NaN }),
      candle({ openTime: T0 + 2 * HOUR, low: -1 }),
      candle({ openTime: T0 + 3 * HOUR, high: 95 }),
      candle({ openTime: T0 + 4 * HOUR + 1 }),
      candle({ openTime: T0 + 5 * HOUR, timeframe: "5m" }),
      candle({ openTime: Date.UTC(2500, 0, 1) }),
      candle({ openTime: 1_000 * HOUR }),
      candle({ openTime: T0 + 6 * HOUR, volume: -3 }),
    ]);
    expect(result.accepted).toBe(1);
    expect(result.rejected.map((r) => r.reason)).toEqual([
      "open must be a finite positive price (got NaN)",
      "low must be a finite positive price (got -1)",
      "high 95 is below max(open, close) 105",
      `open time ${new Date(T0 + 4 * HOUR + 1).toISOString()} is not aligned to 1h`,
      'unknown timeframe "5m" (expected 15m, 1h, 4h or 1d)',
      "open time 2500-01-01T00:00:00.000Z is in the future",
      `open time ${new Date(1_000 * HOUR).toISOString()} is before 2009`,
      "volume must be finite and ≥ 0 (got -3)",
    ]);
    expect(await countCandles(db)).toBe(1);
  });

  it("merges duplicate keys within one batch, keeping the last", async () => {
    const result = await saveCandles(db, [candle({ close: 101 }), candle({ close: 102 }), candle({ close: 103 })]);
    expect(result).toMatchObject({ accepted: 1, written: 1 });
    expect((await recentCandles(db, { exchange: "sim", symbol: "BTC/USDT", timeframe: "1h" }, 1))[0]?.close).toBe(103);
  });

  it("reads the latest candles of every series in one query: series in the order asked, each oldest first", async () => {
    await saveCandles(db, series(3, ["15m", "1h"], 6));
    const latest = await latestCandlesPerSeries(db, { exchange: "sim", symbols: ["C2/USDT", "C0/USDT", "NONE/USDT"], timeframes: ["1h", "15m"], perSeries: 2 });
    expect(latest.map((c) => `${c.symbol} ${c.timeframe} ${(c.openTime - T0) / TIMEFRAME_MS[c.timeframe]}`)).toEqual([
      "C2/USDT 1h 4", "C2/USDT 1h 5", "C2/USDT 15m 4", "C2/USDT 15m 5",
      "C0/USDT 1h 4", "C0/USDT 1h 5", "C0/USDT 15m 4", "C0/USDT 15m 5",
    ]);
  });

  it("reads each series' latest candles as columns with their exact values, the forming one included", async () => {
    const forming = candle({ openTime: T0 + 2 * HOUR, open: 0.1 + 0.2, high: 1e300, low: 5e-324, close: 101.123456789012, volume: 0, isClosed: false });
    await saveCandles(db, [candle({ openTime: T0 - 3 * HOUR }), candle({ openTime: T0, close: 104.75 }), candle({ openTime: T0 + HOUR }), forming], T0 + 2 * HOUR);
    const [btc, ...others] = await latestSeriesCandles(db, { exchange: "sim", symbols: ["BTC/USDT", "ETH/USDT"], timeframes: ["1h"], perSeries: 3 });
    expect(others).toEqual([]);
    expect(btc).toMatchObject({ exchange: "sim", symbol: "BTC/USDT", timeframe: "1h", length: 3 });
    expect([...(btc?.openTime ?? [])]).toEqual([T0, T0 + HOUR, T0 + 2 * HOUR]);
    expect([...(btc?.close ?? [])]).toEqual([104.75, 105, 101.123456789012]);
    expect([...(btc?.isClosed ?? [])]).toEqual([1, 1, 0]);
    expect([btc?.open[2], btc?.high[2], btc?.low[2], btc?.volume[2]]).toEqual([0.1 + 0.2, 1e300, 5e-324, 0]);
  });
});

/** Runs `fn` while another session holds the lock `lockStatement` takes (in a transaction committed afterwards). */
async function whileLocked(db: Database, lockStatement: string, params: unknown[], fn: () => Promise<void>): Promise<void> {
  let release: () => void = () => undefined;
  const released = new Promise<void>((resolve) => (release = resolve));
  let locked: () => void = () => undefined;
  const isLocked = new Promise<void>((resolve) => (locked = resolve));
  const holder = db.session(async (connection) => {
    await connection.exec("BEGIN");
    await connection.query(lockStatement, params);
    locked();
    await released;
    await connection.exec("COMMIT");
  });
  // A holder that fails before taking its lock ends the wait with its error.
  await Promise.race([isLocked, holder]);
  try {
    await fn();
  } finally {
    release();
    await holder;
  }
}

describe("saveCandles on the server while another session holds locks", () => {
  let db: Awaited<ReturnType<typeof openTestDatabase>>;
  beforeAll(async () => {
    db = await openTestDatabase("server");
  });
  afterAll(async () => {
    await db.close();
  });
  beforeEach(async () => {
    await db.sql.exec("TRUNCATE candles");
  });

  describe("blocked longer than its statement timeout", () => {
    it("gives up a write blocked longer than statementTimeoutMs, writing nothing, and writes it once the table is free", async () => {
      await whileLocked(db, "LOCK TABLE candles IN SHARE MODE", [], async () => {
        await expect(saveCandles(db, series(2, ["1h"], 10), Date.now(), { statementTimeoutMs: 200 })).rejects.toThrow(/statement timeout/);
      });
      expect(await countCandles(db)).toBe(0);
      expect((await saveCandles(db, series(2, ["1h"], 10), Date.now(), { statementTimeoutMs: 200 })).written).toBe(20);
    });
  });

  it("fails a write of new candles another session inserts first, and stores the batch when it is sent again", async () => {
    const rows = series(1, ["1h"], 20);
    const insertLast = "INSERT INTO candles (exchange, symbol, timeframe, open_time, open, high, low, close, volume, is_closed) VALUES ('sim', 'C0/USDT', '1h', $1, 1, 1, 1, 1, 1, true)";
    let racing: Promise<unknown> = Promise.resolve();
    await whileLocked(db, insertLast, [new Date(T0 + 19 * HOUR)], async () => {
      // Checked while the other session's row is not committed: the series looks new.
      racing = saveCandles(db, rows).then(
        () => "stored",
        (error: unknown) => String(error),
      );
      await until("the write waiting for the other session's row", async () => {
        const waiting = await db.sql.query<{ n: string }>("SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'");
        return Number(waiting.rows[0]?.n) > 0 ? true : undefined;
      }, 5_000);
    });
    expect(await racing).toMatch(/duplicate key/);
    expect(await countCandles(db)).toBe(1);
    expect((await saveCandles(db, rows)).written).toBe(20);
    expect((await recentCandles(db, { exchange: "sim", symbol: "C0/USDT", timeframe: "1h" }, 1))[0]?.close).toBe(rows[19]?.close);
  });

  describe("in two parts (secondHalfFrom)", () => {
    // Four coins of TWO_PART_MIN_ROWS / 4 candles: C0 and C1 make the first half, C2 and C3 the second.
    const batch = () => series(4, ["1h"], TWO_PART_MIN_ROWS / 4);
    const FIRST_HALF_COINS = ["C0/USDT", "C1/USDT"];
    const SECOND_HALF_COINS = ["C2/USDT", "C3/USDT"];

    async function storedOf(symbols: readonly string[]): Promise<number> {
      const result = await db.sql.query<{ n: string }>("SELECT count(*) AS n FROM candles WHERE symbol = ANY($1::text[])", [symbols]);
      return Number(result.rows[0]?.n);
    }

    /** Holds a row lock on `symbol`'s first candle (stored beforehand), so the half that writes it waits. */
    async function withCoinBlocked(symbol: string, fn: () => Promise<void>): Promise<void> {
      await saveCandles(db, [batch().find((c) => c.symbol === symbol) as CandleInput]);
      await whileLocked(db, "SELECT 1 FROM candles WHERE symbol = $1 FOR UPDATE", [symbol], fn);
    }
    const withFirstHalfBlocked = (fn: () => Promise<void>) => withCoinBlocked(FIRST_HALF_COINS[0] as string, fn);

    it("writes the second half on its own connection once signalled, while the first is still running", async () => {
      const rows = batch();
      let save: Promise<unknown> | undefined;
      await withFirstHalfBlocked(async () => {
        save = saveCandles(db, rows, Date.now(), { secondHalfFrom: Promise.resolve() });
        await until("the second half stored", async () => ((await storedOf(SECOND_HALF_COINS)) === rows.length / 2 ? true : undefined), 5_000);
        expect(await storedOf(FIRST_HALF_COINS)).toBe(1);
      });
      // The first candle was stored already, unchanged.
      expect(await save).toMatchObject({ written: rows.length - 1, accepted: rows.length });
      expect(await countCandles(db)).toBe(rows.length);
    });

    it("without the signal, starts the second half only when the first is done", async () => {
      const rows = batch();
      let save: Promise<unknown> | undefined;
      await withFirstHalfBlocked(async () => {
        save = saveCandles(db, rows, Date.now(), { secondHalfFrom: new Promise(() => undefined) });
        await sleep(300);
        expect(await storedOf(SECOND_HALF_COINS)).toBe(0);
      });
      await save;
      expect(await countCandles(db)).toBe(rows.length);
    });

    it("fails when the first half fails, and sends no second half after it", async () => {
      const rows = batch();
      await withFirstHalfBlocked(async () => {
        await expect(saveCandles(db, rows, Date.now(), { statementTimeoutMs: 200, secondHalfFrom: new Promise(() => undefined) })).rejects.toThrow(/statement timeout/);
      });
      expect(await storedOf(SECOND_HALF_COINS)).toBe(0);
      expect(await countCandles(db)).toBe(1);
    });

    it("fails when the first half fails after the second started, and the batch written again changes only the missing half", async () => {
      const rows = batch();
      await withFirstHalfBlocked(async () => {
        await expect(saveCandles(db, rows, Date.now(), { statementTimeoutMs: 200, secondHalfFrom: Promise.resolve() })).rejects.toThrow(/statement timeout/);
      });
      expect(await storedOf(SECOND_HALF_COINS)).toBe(rows.length / 2);
      // The caller's retry: the second half is stored already and unchanged, and so is the first half's
      // first candle (stored before the lock): the rest of the first half is what gets written.
      expect((await saveCandles(db, rows, Date.now(), { secondHalfFrom: Promise.resolve() })).written).toBe(rows.length / 2 - 1);
      expect(await countCandles(db)).toBe(rows.length);
    });

    it("fails when the second half fails, the first half stored", async () => {
      const rows = batch();
      await withCoinBlocked(SECOND_HALF_COINS[0] as string, async () => {
        await expect(saveCandles(db, rows, Date.now(), { statementTimeoutMs: 200, secondHalfFrom: Promise.resolve() })).rejects.toThrow(/statement timeout/);
      });
      expect(await storedOf(FIRST_HALF_COINS)).toBe(rows.length / 2);
      expect(await storedOf(SECOND_HALF_COINS)).toBe(1);
    });

    it("writes a batch smaller than TWO_PART_MIN_ROWS in one transaction", async () => {
      const rows = series(2, ["1h"], 10);
      await withFirstHalfBlocked(async () => {
        await expect(saveCandles(db, rows, Date.now(), { statementTimeoutMs: 300, secondHalfFrom: Promise.resolve() })).rejects.toThrow(/statement timeout/);
      });
      expect(await countCandles(db)).toBe(1);
    });
  });
});
