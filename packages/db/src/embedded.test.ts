import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { silentLogger } from "@candlekeep/core";
import { captureLogger, mountTmpfs, tmpfsUnavailable, type TmpfsMount } from "./testing";
import { openDatabase, type Database } from "./connect";
import { recentCandles, saveCandles, type CandleInput } from "./candles";
import { EmbeddedEngine } from "./embedded";
import { DiskFullError, EmbeddedEngineStoppedError, isWriteOutage } from "./errors";

/**
 * The embedded engine on a full disk: a small tmpfs mounted for each test,
 * filled and freed. PostgreSQL meets a real ENOSPC, as in production.
 */

const unavailable = tmpfsUnavailable();
const onTmpfs = unavailable === undefined ? it : (name: string, fn: () => Promise<void>) => it.skip(`${name} (skipped: ${unavailable})`, fn);

const MIB = 1024 * 1024;
const HOUR = 3_600_000;
const START = Date.UTC(2024, 0, 1);

function candles(symbol: string, from: number, count: number): CandleInput[] {
  return Array.from({ length: count }, (_, i) => ({ exchange: "sim", symbol, timeframe: "1h" as const, openTime: from + i * HOUR, open: 1, high: 2, low: 0.5, close: 1.5, volume: 10 + i, isClosed: true }));
}

/** CPU seconds this process has used (user + system). */
function cpuSeconds(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
}

describe("embedded engine on a full disk", () => {
  let disk: TmpfsMount | undefined;
  let db: Database | undefined;
  const logger = captureLogger();
  const dataDir = () => path.join(disk?.dir ?? "", "data");
  const open = () => openDatabase({ dataDir: dataDir(), autoMigrate: true, logger });

  beforeEach(() => {
    if (unavailable === undefined) disk = mountTmpfs(96);
    logger.lines.length = 0;
  });
  afterEach(async () => {
    await db?.close();
    db = undefined;
    disk?.unmount();
    disk = undefined;
  });

  onTmpfs("a write on a full disk fails with a DiskFullError that says how much is free and where; once space is freed the same write succeeds", async () => {
    const tmpfs = disk as TmpfsMount;
    db = await open();
    await saveCandles(db, candles("BTC/USDT", START, 100), Date.now());
    tmpfs.fill();
    const batch = candles("ETH/USDT", START, 20_000);
    const error = await saveCandles(db, batch, Date.now()).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(DiskFullError);
    expect(isWriteOutage(error)).toBe(true);
    expect(String(error)).toContain(`(mounted at ${tmpfs.dir}) has 0 MB free`);
    expect(String(error)).toContain("No space left on device");

    tmpfs.free();
    await saveCandles(db, batch, Date.now());
    expect(await recentCandles(db, { exchange: "sim", symbol: "ETH/USDT", timeframe: "1h" }, 100_000)).toHaveLength(20_000);
    expect(await recentCandles(db, { exchange: "sim", symbol: "BTC/USDT", timeframe: "1h" }, 1000)).toHaveLength(100);
  });

  onTmpfs("a PANIC (no room for the next WAL segment) fails the call at once, never spins, and the engine opens again once space is freed, with every committed write", async () => {
    const tmpfs = disk as TmpfsMount;
    db = await open();
    const database = db;
    await saveCandles(database, candles("BTC/USDT", START, 500), Date.now());
    tmpfs.fill();

    // WAL and nothing else (no table grows): the log reaches the end of its segment and PostgreSQL cannot create the next.
    const cpuBefore = cpuSeconds();
    const startedAt = Date.now();
    let stopped: unknown;
    for (let i = 0; i < 64 && stopped === undefined; i += 1) {
      await database.sql.query("SELECT pg_logical_emit_message(true, 'filler', repeat('x', 1000000))").catch((error: unknown) => {
        stopped = error;
      });
    }
    expect(stopped).toBeInstanceOf(EmbeddedEngineStoppedError);
    expect(String(stopped)).toContain(`(mounted at ${tmpfs.dir}) has 0 MB free`);
    expect(Date.now() - startedAt).toBeLessThan(10_000);
    expect(cpuSeconds() - cpuBefore).toBeLessThan(10);
    expect(logger.lines.filter((line) => line.message.startsWith("embedded engine stopped"))).toHaveLength(1);

    // Closed: every call fails at once without entering the engine, and says what to free.
    const failedAt = Date.now();
    const cpuAtFailure = cpuSeconds();
    const refusals = await Promise.all(Array.from({ length: 50 }, () => saveCandles(database, candles("ETH/USDT", START, 10), Date.now()).then(() => undefined, (error: unknown) => error)));
    expect(refusals.every((error) => error instanceof DiskFullError)).toBe(true);
    expect(String(refusals[0])).toContain(`Free 32 MB or more on ${tmpfs.dir}`);
    expect(Date.now() - failedAt).toBeLessThan(1000);
    expect(cpuSeconds() - cpuAtFailure).toBeLessThan(1);

    tmpfs.free();
    await saveCandles(database, candles("ETH/USDT", START, 10), Date.now());
    expect(logger.lines.filter((line) => line.message === "embedded engine opened again after it stopped")).toHaveLength(1);
    expect(await recentCandles(database, { exchange: "sim", symbol: "BTC/USDT", timeframe: "1h" }, 1000)).toHaveLength(500);
    expect(await recentCandles(database, { exchange: "sim", symbol: "ETH/USDT", timeframe: "1h" }, 1000)).toHaveLength(10);
  });

  onTmpfs("a session begun before the engine stopped fails after it was opened again (its transaction is gone)", async () => {
    const tmpfs = disk as TmpfsMount;
    db = await open();
    const database = db;
    const session = database.session(async (connection) => {
      await connection.exec("BEGIN");
      tmpfs.fill();
      await database.sql.query("SELECT pg_logical_emit_message(true, 'filler', repeat('x', 1000000))").catch(() => undefined);
      for (let i = 0; i < 64; i += 1) {
        const failed = await database.sql.query("SELECT pg_logical_emit_message(false, 'filler', repeat('x', 1000000))").then(
          () => false,
          () => true,
        );
        if (failed) break;
      }
      tmpfs.free();
      await database.sql.query("SELECT 1"); // opens the engine again
      await connection.query("SELECT 1");
    });
    await expect(session).rejects.toThrow(EmbeddedEngineStoppedError);
    await expect(session).rejects.toThrow(/this session's transaction was lost/);
  });

  onTmpfs("refuses to open on a disk with too little room, with one line saying how much to free and where", async () => {
    const tmpfs = disk as TmpfsMount;
    db = await open();
    await db.close();
    db = undefined;
    tmpfs.fill(16 * MIB);
    const error = await open().then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(DiskFullError);
    expect(String(error)).toMatch(new RegExp(`has 1[56](\\.\\d)? MB free; the embedded engine needs 32 MB to open it\\. Free 1[67](\\.\\d)? MB or more on ${tmpfs.dir}`));
    // The data directory lock was released: once space is freed it opens.
    tmpfs.free();
    db = await open();
    expect(fs.existsSync(path.join(dataDir(), "pgdata.lock"))).toBe(true);
  });
});

describe("embedded engine WAL", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "candlekeep-wal-"));
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("stays within a few 16 MB segments: the engine checkpoints (PostgreSQL in single-user mode never does by itself)", async () => {
    const engine = await EmbeddedEngine.open(path.join(dir, "pgdata"), silentLogger, { checkpointIntervalMs: 300 });
    try {
      const segments = () => fs.readdirSync(path.join(dir, "pgdata", "pg_wal")).filter((name) => /^[0-9A-F]{24}$/.test(name)).length;
      for (let i = 0; i < 160; i += 1) await engine.run((pglite) => pglite.query("SELECT pg_logical_emit_message(false, 'filler', repeat('x', 1000000))"));
      await new Promise((resolve) => setTimeout(resolve, 1000));
      // 64 MB kept for reuse, and the segment in use.
      expect(segments()).toBeLessThanOrEqual(5);
    } finally {
      await engine.close();
    }
  });
});
