import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { TIMEFRAME_MS, alignToTimeframe, type Timeframe } from "@candlekeep/core";
import {
  DEFAULT_MIGRATIONS_DIR,
  PAPER_ACCOUNT_EVENT,
  applyEntryProgress,
  paperAccountEventKey,
  recordEvent,
  recordDecisionTraces,
  recordOrderIntent,
  saveAccountState,
  saveCandles,
  type CandleInput,
  type Database,
  type DatabaseKind,
} from "@candlekeep/db";
import { createTestDatabase, NO_RETRY, openOnTestDatabase, type TestDatabase } from "@candlekeep/db/testing";
import { loadConfig, type VerifyConfig } from "./config";

/**
 * Test support for verify: real databases filled the way the bot fills them
 * (through the db package's writers), and configurations pointing at them.
 * Not part of the CLI bundle.
 */

/** Opens `testDb` without touching migrations; the caller closes. */
export function openExisting(testDb: TestDatabase, options: { autoMigrate?: boolean } = {}): Promise<Database> {
  return openOnTestDatabase(testDb, { autoMigrate: options.autoMigrate ?? false, checkMigrations: false });
}

/**
 * Runs `fn` on the database and closes it again. The embedded engine is one
 * process's files: the test must let go of it before verify opens it.
 */
export async function withDatabase<T>(testDb: TestDatabase, fn: (db: Database) => Promise<T>): Promise<T> {
  const db = await openExisting(testDb);
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

/** `count` candles of each series ending with the one forming at `nowMs` (older ones closed), shifted back by `candlesAgo`. */
export function freshCandles(options: { exchange?: string; symbols: readonly string[]; timeframes: readonly Timeframe[]; nowMs: number; count?: number; candlesAgo?: number; skip?: readonly number[] }): CandleInput[] {
  const rows: CandleInput[] = [];
  for (const symbol of options.symbols) {
    for (const timeframe of options.timeframes) {
      const step = TIMEFRAME_MS[timeframe];
      const newest = alignToTimeframe(options.nowMs, timeframe) - (options.candlesAgo ?? 0) * step;
      for (let i = 0; i < (options.count ?? 10); i += 1) {
        if (options.skip?.includes(i)) continue;
        const open = 100 + i;
        rows.push({ exchange: options.exchange ?? "sim", symbol, timeframe, openTime: newest - i * step, open, high: open + 2, low: open - 1, close: open + 1, volume: 5 + i, isClosed: i > 0 || (options.candlesAgo ?? 0) > 0 });
      }
    }
  }
  return rows;
}

/** The paper account fillLikeTheBot opens, in USDT. */
export const TEST_STARTING_BALANCE = 10_000;

/** Records the start of `exchange`'s paper account as the bot does when it opens it. */
export async function openPaperAccount(db: Database, exchange: string, time: Date, startingBalance = TEST_STARTING_BALANCE): Promise<void> {
  await recordEvent(db, { type: PAPER_ACCOUNT_EVENT, time, eventKey: paperAccountEventKey(exchange), payload: { currency: "USDT", startingBalance } });
}

/**
 * What a running paper bot leaves behind: fresh candles, a recent decision trace
 * per coin, its paper account, an entry order filled into an open position, and
 * a balance snapshot taken after it (cash = start − cost − fee).
 */
export async function fillLikeTheBot(db: Database, options: { symbols: readonly string[]; timeframes: readonly Timeframe[]; nowMs: number; exchange?: string }): Promise<void> {
  const exchange = options.exchange ?? "sim";
  const saved = await saveCandles(db, freshCandles({ ...options, exchange }), options.nowMs);
  if (saved.rejected.length > 0) throw new Error(`test candles rejected: ${saved.rejected[0]?.reason}`);
  const dropped = await recordDecisionTraces(
    db,
    options.symbols.map((symbol) => ({ exchange, symbol, time: new Date(options.nowMs - 60_000), payload: { action: "NO_SIGNAL", reasons: ["test"] } })),
  );
  if (dropped > 0) throw new Error("test decision traces were not stored");
  await openPaperAccount(db, exchange, new Date(options.nowMs - 7_200_000));
  const [first] = options.symbols;
  let cash = TEST_STARTING_BALANCE;
  let held = 0;
  if (first) {
    const openedAt = new Date(options.nowMs - 3_600_000);
    const { order } = await recordOrderIntent(db, {
      exchange,
      mode: "paper",
      symbol: first,
      side: "buy",
      purpose: "entry",
      clientOrderId: "cktestentry1",
      positionKey: "cktestentry1",
      exitReason: null,
      requestedAmount: 0.5,
      requestedCost: null,
      referencePrice: 101,
      takeProfit: 110,
      stopLoss: 95,
      createdAt: openedAt,
    });
    await applyEntryProgress(
      db,
      order,
      { status: "filled", exchangeOrderId: null, filledAmount: 0.5, averagePrice: 101, filledCost: 50.5, feeQuote: 0.0505, feeBase: 0, fees: [{ currency: "USDT", cost: 0.0505, quoteValue: 0.0505 }], error: null, time: openedAt },
      {},
    );
    cash = 9949.4495;
    held = 0.5 * 101;
  }
  await saveAccountState(db, [{ time: new Date(options.nowMs - 30_000), exchange, currency: "USDT", free: cash, used: 0, total: cash, equity: cash + held }]);
}

/** What a live bot leaves for one filled buy: its entry order in the ledger and the open position it made (fees in the quote currency). */
export async function openLivePosition(db: Database, options: { exchange: string; symbol: string; amount: number; price: number; time: Date; clientOrderId?: string }): Promise<void> {
  const clientOrderId = options.clientOrderId ?? `cklive${options.symbol.split("/")[0]?.toLowerCase() ?? ""}1`;
  const { order } = await recordOrderIntent(db, {
    exchange: options.exchange,
    mode: "live",
    symbol: options.symbol,
    side: "buy",
    purpose: "entry",
    clientOrderId,
    positionKey: clientOrderId,
    exitReason: null,
    requestedAmount: options.amount,
    requestedCost: null,
    referencePrice: options.price,
    takeProfit: null,
    stopLoss: null,
    createdAt: options.time,
  });
  const cost = options.amount * options.price;
  await applyEntryProgress(
    db,
    order,
    { status: "filled", exchangeOrderId: "1", filledAmount: options.amount, averagePrice: options.price, filledCost: cost, feeQuote: cost * 0.001, feeBase: 0, fees: [{ currency: "USDT", cost: cost * 0.001, quoteValue: cost * 0.001 }], error: null, time: options.time },
    {},
  );
}

/** A fresh migrated database of `kind` (server: its own database; embedded: its own directory), closed again. */
export async function createMigratedDatabase(kind: DatabaseKind, fill?: (db: Database) => Promise<void>): Promise<TestDatabase> {
  const testDb = await createTestDatabase(kind);
  const db = await openExisting(testDb, { autoMigrate: true });
  try {
    await fill?.(db);
  } finally {
    await db.close();
  }
  return testDb;
}

/**
 * What the storage check says of a healthy database of `kind` without a storage
 * budget: a pass on the embedded engine (growth only: it has no autovacuum to
 * check); on a server, a warning when the server runs without autovacuum (as
 * this machine's shared server does), which no database on it can change.
 */
export async function healthyStorageStatus(kind: DatabaseKind, testDb: TestDatabase): Promise<"pass" | "warn"> {
  if (kind === "embedded") return "pass";
  const setting = await withDatabase(testDb, (db) => db.sql.query<{ autovacuum: string }>("SHOW autovacuum"));
  return setting.rows[0]?.autovacuum === "on" ? "pass" : "warn";
}

/** verify's configuration for `testDb` as the CLI would build it, with retries off. */
export function configFor(testDb: Pick<TestDatabase, "url" | "dataDir">, env: Record<string, string> = {}, argv: readonly string[] = []): VerifyConfig {
  const config = loadConfig({ CANDLEKEEP_DATA_DIR: testDb.dataDir, ...(testDb.url ? { DATABASE_URL: testDb.url } : {}), ...env }, argv, false);
  return { ...config, database: { ...config.database, retry: NO_RETRY } };
}

/** A copy of the repository's migrations in a temporary directory, for tests that add or edit one. */
export function copyMigrations(): { dir: string; remove(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "candlekeep-migrations-"));
  fs.cpSync(DEFAULT_MIGRATIONS_DIR, dir, { recursive: true });
  return { dir, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** Rows in the tables the bot writes, to prove a run left them as they were. */
export async function rowCounts(db: Pick<Database, "sql">): Promise<Record<string, number>> {
  const tables = ["candles", "decision_traces", "system_events", "positions", "trades", "orders", "account_state"];
  const counts: Record<string, number> = {};
  for (const table of tables) {
    const result = await db.sql.query<{ n: string | number }>(`SELECT count(*) AS n FROM ${table}`);
    counts[table] = Number(result.rows[0]?.n);
  }
  return counts;
}
