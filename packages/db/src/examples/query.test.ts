import { execFile, type ExecFileException } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { saveAccountState } from "../account";
import { saveCandles } from "../candles";
import type { Database, DatabaseKind } from "../connect";
import { savePosition, type PositionInput } from "../positions";
import { createTestDatabase, DATABASE_KINDS, openOnTestDatabase, type TestDatabase } from "../testing";

/**
 * Runs the query example (docs/query-your-data.md shows it) as a user does: the
 * built file, in its own process, on a seeded database of each kind.
 */

const PACKAGE_DIR = path.resolve(__dirname, "../..");
const EXAMPLE = "dist/examples/query.js";
const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const NOW = Date.UTC(2026, 2, 1, 12, 0);

function position(symbol: string, side: PositionInput["side"], quantity: number, entryPrice: number, openedMinutesAgo: number): PositionInput {
  return { exchange: "binance", symbol, side, quantity, entryPrice, takeProfit: null, stopLoss: null, entryOrderId: `entry-${symbol}`, openedAt: new Date(NOW - openedMinutesAgo * MINUTE_MS) };
}

function candle(symbol: string, timeframe: string, openTime: number, close: number) {
  return { exchange: "binance", symbol, timeframe, openTime, open: close, high: close, low: close, close, volume: 1, isClosed: true };
}

function equity(hoursAgo: number, amount: number) {
  return { time: new Date(NOW - hoursAgo * HOUR_MS), exchange: "binance", currency: "USDT", free: amount, used: 0, total: amount, equity: amount };
}

async function seed(db: Database): Promise<void> {
  await savePosition(db, position("BTC/USDT", "LONG", 0.5, 100, 90));
  await savePosition(db, position("ETH/USDT", "SHORT", 2, 50, 60));
  await savePosition(db, position("SOL/USDT", "LONG", 3, 20, 30));
  await saveCandles(db, [
    candle("BTC/USDT", "15m", NOW - 30 * MINUTE_MS, 90),
    candle("BTC/USDT", "15m", NOW - 15 * MINUTE_MS, 110),
    candle("ETH/USDT", "15m", NOW - HOUR_MS, 52.5),
    // Another timeframe's price is not the one read.
    candle("ETH/USDT", "1h", NOW - HOUR_MS, 999),
  ]);
  // The snapshot 30 h before the newest lies outside the day summarised.
  await saveAccountState(db, [equity(30, 500), equity(20, 1000), equity(10, 900), equity(0, 1100)]);
}

async function runExample(env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  const inherited = { ...process.env };
  delete inherited.DATABASE_URL;
  delete inherited.CANDLEKEEP_DATA_DIR;
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [EXAMPLE], { cwd: PACKAGE_DIR, env: { ...inherited, ...env } });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as ExecFileException & { stdout: string; stderr: string };
    return { code: typeof failed.code === "number" ? failed.code : -1, stdout: failed.stdout, stderr: failed.stderr };
  }
}

function exampleEnv(testDb: TestDatabase): Record<string, string> {
  return testDb.url === undefined ? { CANDLEKEEP_DATA_DIR: testDb.dataDir } : { DATABASE_URL: testDb.url };
}

beforeAll(async () => {
  // The example runs built, as a user runs it: build the package from the sources under test.
  const tsc = require.resolve("typescript/bin/tsc");
  await promisify(execFile)(process.execPath, [tsc, "-p", "tsconfig.build.json"], { cwd: PACKAGE_DIR });
}, 120_000);

describe.each(DATABASE_KINDS)("the query example on the %s engine", (kind: DatabaseKind) => {
  let testDb: TestDatabase | undefined;

  beforeAll(async () => {
    testDb = await createTestDatabase(kind);
    const db = await openOnTestDatabase(testDb);
    try {
      await seed(db);
    } finally {
      await db.close();
    }
  });

  afterAll(async () => {
    await testDb?.drop();
  });

  it("prints each open position's unrealised PnL at its newest 15m close and the equity of the day before the newest snapshot", async () => {
    if (testDb === undefined) throw new Error("the test database is created in beforeAll");
    const result = await runExample(exampleEnv(testDb));
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    const target = testDb.url ?? `embedded database in ${path.join(testDb.dataDir, "pgdata")}`;
    expect(result.stdout.split("\n")).toEqual([
      `database: ${target}`,
      "open positions: 3",
      "  BTC/USDT LONG 0.5 @ 100, now 110: unrealised 5.00 (before fees)",
      "  ETH/USDT SHORT 2 @ 50, now 52.5: unrealised -5.00 (before fees)",
      "  SOL/USDT LONG 3 @ 20: no 15m price stored",
      `equity in USDT on binance, the 24 h to ${new Date(NOW).toISOString()}: 3 snapshots`,
      "  from 1000.00 to 1100.00 (low 900.00, high 1100.00)",
      "",
    ]);
  });

  if (kind === "embedded") {
    it("exits 1 with one line saying to stop the process that holds the embedded database", async () => {
      if (testDb === undefined) throw new Error("the test database is created in beforeAll");
      const held = await openOnTestDatabase(testDb);
      try {
        const result = await runExample(exampleEnv(testDb));
        expect(result.code).toBe(1);
        expect(result.stdout).toBe("");
        expect(result.stderr.trim().split("\n")).toHaveLength(1);
        expect(result.stderr).toContain(`is in use by another process (pid ${process.pid}). Stop it first`);
      } finally {
        await held.close();
      }
    });
  }
});
