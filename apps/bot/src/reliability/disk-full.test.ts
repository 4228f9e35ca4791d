import fs from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { TIMEFRAMES, silentLogger } from "@candlekeep/core";
import { openDatabase, type Database } from "@candlekeep/db";
import { mountTmpfs, tmpfsUnavailable, type TmpfsMount } from "@candlekeep/db/testing";
import { OUTAGE_LOG_INTERVAL_MS } from "../outage";
import { historyAudited, latestTick, numberField, runBotToExit, spawnBot, type BotProcess, type LogLine } from "../testing/process";
import { simCandleMismatches } from "../testing/sim-truth";

/**
 * Reliability: the embedded engine's disk fills up while the bot runs, then is
 * freed. A small tmpfs mounted for each test is the disk (PostgreSQL meets a
 * real ENOSPC); the bot is the real process on the simulated exchange, whose
 * candles are then compared with what the exchange produced.
 */

const unavailable = tmpfsUnavailable();
const onTmpfs = unavailable === undefined ? it : (name: string, fn: () => Promise<void>, timeout?: number) => it.skip(`${name} (skipped: ${unavailable})`, fn, timeout);

const MIB = 1024 * 1024;
const SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"];
/** How long the disk stays full. */
const FULL_MS = 10_000;
/** A busy loop uses a whole core; a ticking bot a few percent of one. */
const MAX_CPU_SHARE = 0.5;
const STOPPED = "embedded engine stopped on a fatal error; closed, it opens again once there is room";
const REOPENED = "embedded engine opened again after it stopped";

describe("embedded engine: the disk fills up (real bot process on a tmpfs)", () => {
  let disk: TmpfsMount | undefined;
  let bot: BotProcess | undefined;
  let db: Database | undefined;
  const dataDir = () => path.join(disk?.dir ?? "", "data");
  const env = () => ({ CANDLEKEEP_DATA_DIR: dataDir(), SYMBOLS: SYMBOLS.join(","), TICK_INTERVAL_MS: "100", SIM_REPLAY_CANDLES: "10000" });

  beforeEach(() => {
    if (unavailable === undefined) disk = mountTmpfs(128);
  });
  afterEach(async () => {
    await bot?.kill();
    await db?.close();
    bot = undefined;
    db = undefined;
    disk?.unmount();
    disk = undefined;
  });

  onTmpfs(
    "a full disk is one outage story, not a line per coin and tick; candles stay pending; once freed, ticks resume without a busy loop and every candle is stored",
    async () => {
      const tmpfs = disk as TmpfsMount;
      bot = spawnBot(env());
      const running = await bot.waitFor("bot running", (l) => l.message === "bot running");
      await bot.waitForTick(3);
      await historyAudited(bot);

      const filledAt = bot.lines.length;
      tmpfs.fill();
      await bot.waitFor("the outage logged", (l) => l.message?.startsWith("writing candles failed") === true, { from: filledAt, timeoutMs: 15_000 });
      await sleep(FULL_MS);
      expect(await healthz(running)).toMatchObject({ status: "ok", databaseDownSince: expect.any(String) });
      const freedAt = bot.lines.length;
      tmpfs.free();

      const back = await bot.waitFor("recovery logged", (l) => l.message === "database is back; pending candles written", { from: freedAt, timeoutMs: 20_000 });
      await expectNoBusyLoop(bot, running);

      bot.child.kill("SIGTERM");
      expect(await bot.exited).toBe(0);

      expectOneStory(bot.lines.slice(filledAt, freedAt));
      const ticks = bot.lines.slice(filledAt, freedAt).filter((l) => l.message === "tick");
      expect(ticks.length).toBeGreaterThanOrEqual(20);
      const pending = ticks.map((l) => numberField(l, "pending") ?? 0);
      expect(Math.max(...pending)).toBeGreaterThan(pending[0] ?? 0);
      expect(numberField(back, "written")).toBeGreaterThan(0);

      db = await openDatabase({ dataDir: dataDir(), autoMigrate: false, logger: silentLogger });
      expect(await simCandleMismatches(db, { seed: 1, exchangeTime: lastExchangeTime(bot.lines), symbols: SYMBOLS, timeframes: TIMEFRAMES, replayed: true })).toEqual([]);
    },
    120_000,
  );

  onTmpfs(
    "the engine panics for want of room for its next WAL segment: it is closed at once (no busy loop, /healthz answers), reported once, opened again once space is freed, and no candle is lost",
    async () => {
      const tmpfs = disk as TmpfsMount;
      // The log is left 1.5 MB short of the end of its segment: the bot needs the next one some seconds after it starts.
      const segment = await leaveWalRoom(dataDir(), 1.5 * MIB);
      bot = spawnBot(env());
      const running = await bot.waitFor("bot running", (l) => l.message === "bot running");
      await bot.waitForTick(3);

      // No WAL segment prepared in advance (PostgreSQL preallocates the next one at start-up when the log
      // is this close to the end of its segment), and room for the tables, not for a 16 MB segment.
      removeUnusedWalSegmentsAfter(dataDir(), segment);
      const filledAt = bot.lines.length;
      tmpfs.fill(8 * MIB);
      const stopped = await bot.waitFor("the engine stopped", (l) => l.message === STOPPED, { from: filledAt, timeoutMs: 60_000 });
      expect(stopped.fields).toMatchObject({ mountPoint: tmpfs.dir, needed: "32 MB" });
      const outage = await bot.waitFor("the outage logged", (l) => l.message?.startsWith("writing candles failed") === true, { from: filledAt, timeoutMs: 15_000 });
      expect(outage.fields.error).toMatch(new RegExp(`(has [\\d.]+ MB free; the embedded engine needs 32 MB to open it again after it stopped\\. Free [\\d.]+ MB or more on ${tmpfs.dir})|(The embedded engine stopped on a fatal error)`));

      // Stopped, the engine is never entered: the bot ticks on at its usual CPU and answers /healthz.
      await expectNoBusyLoop(bot, running);
      expect(await healthz(running)).toMatchObject({ status: "ok", databaseDownSince: expect.any(String) });
      await sleep(FULL_MS / 2);
      const freedAt = bot.lines.length;
      tmpfs.free();

      await bot.waitFor("the engine opened again", (l) => l.message === REOPENED, { from: freedAt, timeoutMs: 20_000 });
      await bot.waitFor("recovery logged", (l) => l.message === "database is back; pending candles written", { from: freedAt, timeoutMs: 20_000 });
      await expectNoBusyLoop(bot, running);
      bot.child.kill("SIGTERM");
      expect(await bot.exited).toBe(0);

      expectOneStory(bot.lines.slice(filledAt, freedAt));
      expect(bot.lines.filter((l) => l.message === STOPPED)).toHaveLength(1);
      db = await openDatabase({ dataDir: dataDir(), autoMigrate: false, logger: silentLogger });
      expect(await simCandleMismatches(db, { seed: 1, exchangeTime: lastExchangeTime(bot.lines), symbols: SYMBOLS, timeframes: TIMEFRAMES, replayed: true })).toEqual([]);
    },
    150_000,
  );

  onTmpfs(
    "SIGTERM on a full disk exits 0; a restart with too little room is refused with one line saying how much to free and where; once freed it starts and every candle is stored",
    async () => {
      const tmpfs = disk as TmpfsMount;
      const first = spawnBot(env());
      bot = first;
      await first.waitForTick(3);
      await historyAudited(first);
      const filledAt = first.lines.length;
      tmpfs.fill();
      await first.waitFor("the outage logged", (l) => l.message?.startsWith("writing candles failed") === true, { from: filledAt, timeoutMs: 15_000 });
      await first.waitForTick(latestTick(first) + 3);
      first.child.kill("SIGTERM");
      expect(await first.exited).toBe(0);
      await first.waitFor("what was not written", (l) => l.message === "shutdown flush failed; candles not written will be fetched again at the next start");

      // 16 MB free: too little for PostgreSQL to replay its log (it needs a new 16 MB WAL segment).
      tmpfs.free();
      tmpfs.fill(16 * MIB);
      const refused = await runBotToExit(env());
      expect(refused.code).toBe(1);
      expect(refused.errors).toHaveLength(1);
      expect(refused.errors[0]).toMatch(new RegExp(`^The disk holding the embedded database \\(${dataDir()}/pgdata\\) has 1[56](\\.\\d)? MB free; the embedded engine needs 32 MB to open it\\. Free 1[67](\\.\\d)? MB or more on ${tmpfs.dir}, or set CANDLEKEEP_DATA_DIR to a directory on a larger disk\\.$`));
      expect(refused.lines.filter((l) => l.level === "warn" || l.level === "error")).toHaveLength(1);

      tmpfs.free();
      const second = spawnBot(env());
      bot = second;
      await second.waitForTick(5);
      second.child.kill("SIGTERM");
      expect(await second.exited).toBe(0);
      db = await openDatabase({ dataDir: dataDir(), autoMigrate: false, logger: silentLogger });
      expect(await simCandleMismatches(db, { seed: 1, exchangeTime: lastExchangeTime(second.lines), symbols: SYMBOLS, timeframes: TIMEFRAMES, replayed: true })).toEqual([]);
    },
    120_000,
  );
});

/** The bot's /healthz answer (its port is in the "bot running" line). */
async function healthz(running: LogLine): Promise<Record<string, unknown>> {
  const response = await fetch(`http://127.0.0.1:${numberField(running, "port") ?? 0}/healthz`, { signal: AbortSignal.timeout(2000) });
  const body: unknown = await response.json();
  return typeof body === "object" && body !== null ? { ...body } : {};
}

/** Over 3 s, the bot used at most MAX_CPU_SHARE of a core, went on ticking and answered /healthz. */
async function expectNoBusyLoop(bot: BotProcess, running: LogLine): Promise<void> {
  const pid = bot.child.pid ?? 0;
  const tick = latestTick(bot);
  const before = cpuSeconds(pid);
  const startedAt = Date.now();
  await sleep(3000);
  const share = (cpuSeconds(pid) - before) / ((Date.now() - startedAt) / 1000);
  expect(share).toBeLessThan(MAX_CPU_SHARE);
  expect(latestTick(bot)).toBeGreaterThanOrEqual(tick + 5);
  expect(await healthz(running)).toMatchObject({ status: "ok" });
}

/** CPU seconds (user + system) process `pid` has used: fields 14 and 15 of /proc/<pid>/stat, in 1/100 s. */
function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** While the disk was full, no warning or error repeats (once per outage interval at most), and there are only a few. */
function expectOneStory(during: readonly LogLine[]): void {
  const counts = new Map<string, number>();
  for (const line of during) if (line.level === "warn" || line.level === "error") counts.set(line.message ?? line.raw, (counts.get(line.message ?? line.raw) ?? 0) + 1);
  const perInterval = 1 + Math.floor(FULL_MS / OUTAGE_LOG_INTERVAL_MS);
  expect([...counts].filter(([, count]) => count > perInterval).map(([message, count]) => `${count}× ${message}`)).toEqual([]);
  expect([...counts.values()].reduce((sum, count) => sum + count, 0)).toBeLessThanOrEqual(5);
  expect(during.filter((l) => l.level === undefined)).toEqual([]); // nothing but the bot's JSON lines (no engine output)
}

/** Exchange time of the bot's last tick. */
function lastExchangeTime(lines: readonly LogLine[]): number {
  const last = lines.filter((l) => l.message === "tick").at(-1);
  const time = last?.fields.exchangeTime;
  if (typeof time !== "string") throw new Error("no tick logged");
  return Date.parse(time);
}

const WAL_SEGMENT_BYTES = 16 * MIB;

/** The WAL segment files in the data directory (not the directory's other entries). */
function walSegments(dir: string): string[] {
  return fs.readdirSync(path.join(dir, "pgdata", "pg_wal")).filter((name) => /^[0-9A-F]{24}$/.test(name));
}

/**
 * Creates the database in `dir` and writes WAL (logical messages, nothing else)
 * until `room` bytes are left in its current segment, whose name is returned.
 */
async function leaveWalRoom(dir: string, room: number): Promise<string> {
  const db = await openDatabase({ dataDir: dir, autoMigrate: true, logger: silentLogger });
  let position: number;
  try {
    for (;;) {
      const [row] = (await db.sql.query<{ lsn: string }>("SELECT pg_current_wal_insert_lsn()::text AS lsn")).rows;
      const [high = "0", low = "0"] = (row?.lsn ?? "0/0").split("/");
      position = parseInt(high, 16) * 2 ** 32 + parseInt(low, 16);
      const left = WAL_SEGMENT_BYTES - (position % WAL_SEGMENT_BYTES);
      if (left <= room) break;
      await db.sql.query("SELECT pg_logical_emit_message(false, 'test', repeat('x', $1::int))", [Math.max(1, Math.min(MIB, left - room - 200))]);
    }
  } finally {
    await db.close();
  }
  const segment = Math.floor(position / WAL_SEGMENT_BYTES);
  return `00000001${Math.floor(segment / 256).toString(16).padStart(8, "0")}${(segment % 256).toString(16).padStart(8, "0")}`.toUpperCase();
}

/**
 * Removes the WAL segments after `current` that PostgreSQL prepared in advance
 * (zeroed, or recycled from older ones) and has not written to yet, so the next
 * one must be created when the log reaches it. A segment in use starts with a
 * page header holding its own start address (xlp_pageaddr, bytes 8–15). Fails
 * if the log has moved past `current` already.
 */
function removeUnusedWalSegmentsAfter(dir: string, current: string): void {
  const walDir = path.join(dir, "pgdata", "pg_wal");
  for (const name of walSegments(dir)) {
    if (name <= current) continue;
    const file = path.join(walDir, name);
    const head = Buffer.alloc(16);
    const fd = fs.openSync(file, "r");
    try {
      fs.readSync(fd, head, 0, head.length, 0);
    } finally {
      fs.closeSync(fd);
    }
    const start = BigInt(parseInt(name.slice(8, 16), 16)) * 2n ** 32n + BigInt(parseInt(name.slice(16), 16) * WAL_SEGMENT_BYTES);
    if (head.readBigUInt64LE(8) === start) throw new Error(`the bot's WAL reached segment ${name} before the disk was filled (the machine was slower than this test assumes)`);
    fs.rmSync(file);
  }
}
