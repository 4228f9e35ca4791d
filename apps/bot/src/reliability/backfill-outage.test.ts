import { setTimeout as sleep } from "node:timers/promises";
import { SIM_DEFAULT_SYMBOLS, TIMEFRAMES } from "@candlekeep/core";
import { type Database } from "@candlekeep/db";
import { createServerTestDatabase, openOnTestDatabase, type TestDatabase } from "@candlekeep/db/testing";
import { loadRecentHistory } from "../history/resume";
import { OUTAGE_LOG_INTERVAL_MS } from "../outage";
import { startTestBot, type TestBot } from "../testing/bot";
import { latestTick, spawnBot, type BotProcess, type LogLine } from "../testing/process";
import { simCandleMismatches } from "../testing/sim-truth";
import { TcpProxy } from "../testing/tcp-proxy";

/**
 * Reliability: the database goes away (every connection through a TCP proxy reset, new
 * ones refused) while history is loaded, at start-up or by `backfill --days N`. The
 * backfill keeps what it fetched, waits with the same outage story as the ticks (one
 * line when it starts, at most one per interval, one when it ends), and resumes.
 */

const SYMBOLS = SIM_DEFAULT_SYMBOLS.slice(0, 12);
const OUTAGE_MS = 6000;
const OUTAGE_STARTED = (l: LogLine) => /^(writing candles|reading .*) failed/.test(l.message ?? "");

describe("database outage while history is loaded (PostgreSQL through a TCP proxy)", () => {
  let testDb: TestDatabase;
  let proxy: TcpProxy;
  let bot: BotProcess | undefined;
  let db: Database | undefined;
  let testBot: TestBot | undefined;

  beforeEach(async () => {
    testDb = await createServerTestDatabase();
    const target = new URL(testDb.url ?? "");
    proxy = new TcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
    await proxy.start();
    // Migrated here: the test reads candles (directly, not through the proxy) while the bot starts.
    db = await openOnTestDatabase(testDb, { autoMigrate: true });
  });
  afterEach(async () => {
    await bot?.kill();
    await testBot?.stop().catch(() => undefined);
    await db?.close();
    await proxy.stop();
    await testDb.drop();
    bot = undefined;
    testBot = undefined;
    db = undefined;
  });

  const viaProxy = () => {
    const url = new URL(testDb.url ?? "");
    url.port = String(proxy.port);
    return url.toString();
  };

  /** Cuts the proxy as soon as the first candles are stored (the backfill is writing), for OUTAGE_MS; returns where the cut was in the bot's log. */
  async function outageOnceWriting(proc: BotProcess): Promise<{ cutAt: number; restoredAt: number }> {
    const admin = db as Database;
    for (;;) {
      const { rows } = await admin.sql.query<{ stored: boolean }>("SELECT EXISTS (SELECT 1 FROM candles) AS stored");
      if (rows[0]?.stored) break;
      if (!proc.running) throw new Error("the bot ended before it wrote candles");
      await sleep(20);
    }
    const cutAt = proc.lines.length;
    proxy.cut();
    await proc.waitFor("the outage logged", OUTAGE_STARTED, { from: cutAt, timeoutMs: 15_000 });
    await sleep(OUTAGE_MS);
    expect(proc.running).toBe(true);
    const restoredAt = proc.lines.length;
    proxy.restore();
    return { cutAt, restoredAt };
  }

  /** The outage as one story: a line when it starts, at most one per interval, one when it ends; no series failed, nothing repeated. */
  function expectOneOutageStory(proc: BotProcess, cutAt: number): void {
    const since = proc.lines.slice(cutAt);
    const started = since.filter(OUTAGE_STARTED);
    expect(started.length).toBeGreaterThanOrEqual(1);
    expect(started.length).toBeLessThanOrEqual(1 + Math.floor(OUTAGE_MS / OUTAGE_LOG_INTERVAL_MS));
    expect(since.filter((l) => l.message?.startsWith("database is back") === true)).toHaveLength(1);
    expect(since.filter((l) => l.message === "backfill of a series failed")).toEqual([]);
    const counts = new Map<string, number>();
    for (const line of since) if (line.level === "warn" || line.level === "error") counts.set(line.message ?? line.raw, (counts.get(line.message ?? line.raw) ?? 0) + 1);
    expect([...counts].filter(([, count]) => count > 1 + Math.floor(OUTAGE_MS / OUTAGE_LOG_INTERVAL_MS)).map(([message, count]) => `${count}× ${message}`)).toEqual([]);
  }

  it("a reset during the start-up backfill is waited out: the bot resumes it, starts ticking, exits 0 on SIGTERM, and every candle is exact", async () => {
    const proc = spawnBot({
      DATABASE_URL: viaProxy(),
      CANDLEKEEP_DATA_DIR: testDb.dataDir,
      SYMBOLS: SYMBOLS.join(","),
      HISTORY_CANDLES: "5000",
      SIM_REPLAY_CANDLES: "10000",
    });
    bot = proc;
    const { cutAt } = await outageOnceWriting(proc);
    // The cut came during the backfill: the bot was not running yet.
    expect(proc.lines.slice(0, cutAt).some((l) => l.message === "bot running")).toBe(false);
    await proc.waitFor("the backfill resumed and finished", (l) => l.message === "backfill finished", { from: cutAt, timeoutMs: 60_000 });
    await proc.waitFor("bot running", (l) => l.message === "bot running", { from: cutAt });
    await proc.waitForTick(3);
    expectOneOutageStory(proc, cutAt);
    const finished = proc.lines.find((l) => l.message === "backfill finished");
    expect(finished?.fields).toMatchObject({ failed: 0 });

    const lastTick = latestTick(proc);
    await proc.waitForTick(lastTick + 2);
    proc.child.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
    expect(proc.lines.at(-1)).toMatchObject({ message: "shutdown finished", fields: { exitCode: 0 } });
    const exchangeTime = Date.parse(String(proc.lines.filter((l) => l.message === "tick").at(-1)?.fields.exchangeTime));
    expect(await simCandleMismatches(db as Database, { seed: 1, exchangeTime, symbols: SYMBOLS, timeframes: TIMEFRAMES, replayed: true })).toEqual([]);
  }, 180_000);

  it("a reset during `backfill --days N` is waited out: it resumes and exits 0 with every candle exact", async () => {
    const proc = spawnBot({ DATABASE_URL: viaProxy(), CANDLEKEEP_DATA_DIR: testDb.dataDir, SYMBOLS: SYMBOLS.join(",") }, ["backfill", "--days", "120"]);
    bot = proc;
    const { cutAt } = await outageOnceWriting(proc);
    expect(await proc.exited).toBe(0);
    expectOneOutageStory(proc, cutAt);
    const finished = proc.lines.find((l) => l.message === "backfill finished");
    expect(finished?.fields).toMatchObject({ failed: 0, series: SYMBOLS.length * TIMEFRAMES.length });
    expect(proc.lines.at(-1)).toMatchObject({ message: "shutdown finished", fields: { exitCode: 0, reason: "backfill finished" } });
    const exchangeTime = Date.parse(String(finished?.fields.until));
    expect(await simCandleMismatches(db as Database, { seed: 1, exchangeTime, symbols: SYMBOLS, timeframes: TIMEFRAMES, replayed: true })).toEqual([]);
  }, 180_000);

  it("a database away when the backfill reads what is stored is waited for too, in the same story", async () => {
    testBot = await startTestBot({ DATABASE_URL: viaProxy(), CANDLEKEEP_DATA_DIR: testDb.dataDir, SYMBOLS: SYMBOLS.slice(0, 3).join(",") }, { backfill: false });
    const rt = testBot.runtime;
    const cutAt = testBot.logger.lines.length;
    proxy.cut();
    const loading = loadRecentHistory(rt, false);
    await sleep(2500);
    const during = testBot.logger.lines.slice(cutAt).map((l) => l.message);
    expect(during.filter((m) => m === "reading the stored candles' coverage failed; waiting for the database and retrying")).toHaveLength(1);
    proxy.restore();
    const report = await loading;
    expect(report).toMatchObject({ failed: [], stopped: false, series: 3 * TIMEFRAMES.length });
    expect(report.written).toBeGreaterThan(0);
    const after = testBot.logger.lines.slice(cutAt).map((l) => l.message);
    expect(after.filter((m) => m === "database is back")).toHaveLength(1);
    expect(rt.status.dbDownSince).toBeUndefined();
    expect(await simCandleMismatches(db as Database, { seed: 1, exchangeTime: rt.market.now(), symbols: SYMBOLS.slice(0, 3), timeframes: TIMEFRAMES, replayed: true })).toEqual([]);
  }, 60_000);
});
