import { TIMEFRAMES, TIMEFRAME_MS, alignToTimeframe, type Timeframe } from "@candlekeep/core";
import { listCandleGaps, type Database } from "@candlekeep/db";
import { openOnTestDatabase } from "@candlekeep/db/testing";
import type { BotRuntime } from "../runtime";
import { backfillDays } from "../testing/backfill";
import { recordCandleRequests, type CandleRequest } from "../testing/candle-requests";
import { spawnBot } from "../testing/process";
import { useServerTestBot } from "../testing/server-bot";
import { simCandleMismatches } from "../testing/sim-truth";
import { repairHistory, type RepairReport } from "./repair";

/** `backfill --days N` as a repair: the audit finds what is missing, and only that is fetched (PostgreSQL server, the sim). */

const DAY = 86_400_000;
const SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"];

/** A run of missing candles of one series: `count` candles from the one `back` candles before the forming one. */
interface Run {
  symbol: string;
  timeframe: Timeframe;
  back: number;
  count: number;
}

function runSpan(rt: BotRuntime, run: Run): { from: number; to: number } {
  const step = TIMEFRAME_MS[run.timeframe];
  const from = alignToTimeframe(rt.market.now(), run.timeframe) - run.back * step;
  return { from, to: from + (run.count - 1) * step };
}

async function deleteRuns(db: Database, rt: BotRuntime, runs: readonly Run[]): Promise<number> {
  let deleted = 0;
  for (const run of runs) {
    const { from, to } = runSpan(rt, run);
    const result = await db.sql.query(
      "DELETE FROM candles WHERE exchange = 'sim' AND symbol = $1 AND timeframe = $2 AND open_time BETWEEN to_timestamp($3::float8 / 1000) AND to_timestamp($4::float8 / 1000)",
      [run.symbol, run.timeframe, from, to],
    );
    deleted += result.rowCount ?? 0;
  }
  return deleted;
}

/** Watches what the bot asks the exchange for from now on. */
function watchRequests(rt: BotRuntime): CandleRequest[] {
  const recorded = recordCandleRequests(rt.market);
  rt.market = recorded.market;
  return recorded.requests;
}

describe("backfill --days N repairs only what is missing", () => {
  const testBot = useServerTestBot();
  let db: Database | undefined;
  afterEach(async () => {
    await db?.close();
    db = undefined;
  });

  it("finds scattered gaps with the audit and fetches only their candles, each request sized to its gap; the gaps leave the list", async () => {
    // History the audit has not seen yet (stored by the start-up load, as by a bot older than the audit), with holes in it.
    await testBot.start({ SYMBOLS: SYMBOLS.join(","), HISTORY_CANDLES: "3000" });
    // `backfill` is a bot of its own, holding the last HISTORY_CANDLES (100) of each series: the holes lie further back.
    const rt = (await testBot.start({ SYMBOLS: SYMBOLS.join(",") }, { backfill: false })).runtime;
    db = await openOnTestDatabase(testBot.database);
    const runs: Run[] = [
      { symbol: "BTC/USDT", timeframe: "15m", back: 500, count: 1 },
      { symbol: "BTC/USDT", timeframe: "15m", back: 902, count: 3 },
      { symbol: "ETH/USDT", timeframe: "15m", back: 2009, count: 10 },
      { symbol: "ETH/USDT", timeframe: "1h", back: 301, count: 2 },
      { symbol: "SOL/USDT", timeframe: "4h", back: 150, count: 1 },
      { symbol: "BTC/USDT", timeframe: "1d", back: 200, count: 1 },
    ];
    const k = runs.reduce((sum, run) => sum + run.count, 0);
    expect(await deleteRuns(db, rt, runs)).toBe(k);

    const requests = watchRequests(rt);
    const second = await repairHistory(rt, backfillDays(rt, 30));
    expect(second).toMatchObject({
      audit: { gaps: runs.length, missingCandles: k },
      rangesFound: { before: 0, gap: runs.length, after: 0, total: runs.length },
      candlesFetched: k,
      candlesStored: k,
      rangesUnavailable: 0,
      gapsLeft: 0,
      candlesMissingLeft: 0,
      failed: [],
      stopped: false,
    });
    // Each gap asked for once, from its first missing candle, for exactly its candles: k in all (the goal is ≤ 2k + a page per range).
    const asked = (request: CandleRequest) => `${request.symbol} ${request.timeframe} ${request.since} ${request.limit}`;
    expect(requests.map(asked).sort()).toEqual(runs.map((run) => asked({ ...run, since: runSpan(rt, run).from, limit: run.count, answered: run.count })).sort());
    expect(await listCandleGaps(db, { exchange: "sim", includeUnavailable: true })).toEqual([]);
    expect(await simCandleMismatches(db, { seed: 1, exchangeTime: rt.market.now(), symbols: SYMBOLS, timeframes: TIMEFRAMES, replayed: true })).toEqual([]);
  }, 120_000);

  it("records a range the exchange has no candles for (a coin listed later) once, and does not ask for it again", async () => {
    const startTime = Date.now();
    const listing = startTime - 10 * DAY + 3 * 3_600_000 + 60_000;
    const bot = await testBot.start({ SYMBOLS: "BTC/USDT,ETH/USDT" }, { backfill: false, simListedFrom: { "ETH/USDT": listing } });
    const rt = bot.runtime;
    const first = await repairHistory(rt, backfillDays(rt, 30));
    // Before its listing, ETH has nothing on any timeframe: one range each, recorded.
    expect(first).toMatchObject({ failed: [], stopped: false, rangesUnavailable: TIMEFRAMES.length, gapsLeft: 0 });
    db = await openOnTestDatabase(testBot.database);
    const unavailable = await listCandleGaps(db, { exchange: "sim", includeUnavailable: true });
    const onGrid = (time: number, tf: Timeframe) => Math.ceil(time / TIMEFRAME_MS[tf]) * TIMEFRAME_MS[tf];
    const start = backfillDays(rt, 30).startFor ?? (() => 0);
    expect(unavailable.map((gap) => [gap.symbol, gap.timeframe, gap.unavailable, gap.fromTime, gap.toTime])).toEqual(
      [...TIMEFRAMES].sort().map((tf) => ["ETH/USDT", tf, true, onGrid(start(tf), tf), onGrid(listing, tf) - TIMEFRAME_MS[tf]]),
    );
    expect(first.candlesUnavailable).toBe(unavailable.reduce((sum, gap) => sum + gap.missing, 0));

    const requests = watchRequests(rt);
    const second = await repairHistory(rt, backfillDays(rt, 30));
    expect(second).toMatchObject({ rangesFound: { total: 0 }, candlesFetched: 0, rangesUnavailable: 0, failed: [], stopped: false });
    expect(requests).toEqual([]);

    // Ten days further back: only what lies before the recorded range is asked for, and recorded in its turn.
    const further = await repairHistory(rt, backfillDays(rt, 40));
    expect(further).toMatchObject({ rangesUnavailable: TIMEFRAMES.length, failed: [], stopped: false });
    const recordedFrom = new Map(unavailable.map((gap) => [gap.timeframe, gap.fromTime]));
    for (const request of requests.filter((r) => r.symbol === "ETH/USDT")) {
      const step = TIMEFRAME_MS[request.timeframe];
      expect((request.since ?? 0) + (request.limit - 1) * step).toBe((recordedFrom.get(request.timeframe) ?? 0) - step);
    }
    requests.length = 0;
    await repairHistory(rt, backfillDays(rt, 40));
    expect(requests).toEqual([]);
  }, 120_000);

  it("`backfill --days N --json` prints one JSON object on stdout saying what it found and did, the log on stderr; run again, it finds nothing to fetch", async () => {
    const run = async () => {
      const bot = spawnBot({ DATABASE_URL: testBot.database.url ?? "", CANDLEKEEP_DATA_DIR: testBot.database.dataDir, SYMBOLS: "BTC/USDT" }, ["backfill", "--days", "2", "--json"]);
      expect(await bot.exited).toBe(0);
      expect(bot.lines.some((l) => l.message === "backfill finished")).toBe(true);
      const out = bot.stdout().trim().split("\n");
      expect(out).toHaveLength(1);
      const report: RepairReport & { exchange: string; days: number } = JSON.parse(out[0] ?? "");
      return report;
    };
    const first = await run();
    expect(first).toMatchObject({ exchange: "sim", days: 2, series: TIMEFRAMES.length, rangesFound: { before: 0, gap: 0, after: TIMEFRAMES.length, total: TIMEFRAMES.length }, rangesUnavailable: 0, gapsLeft: 0, failed: [], stopped: false });
    expect(first).toMatchObject({ candlesFetched: expect.any(Number), candlesStored: expect.any(Number) });
    // Nothing but what closed since (a candle of a timeframe whose boundary passed between the two runs, if one did).
    const second = await run();
    expect(second).toMatchObject({ rangesFound: { before: 0, gap: 0 }, failed: [], stopped: false });
    expect(second.candlesFetched).toBe(second.rangesFound.after);
  }, 60_000);
});
