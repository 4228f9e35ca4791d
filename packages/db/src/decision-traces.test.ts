import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { silentLogger } from "@candlekeep/core";
import { openDatabase } from "./connect";
import { latestDecisionTracePerSymbol, latestDecisionTraces, newestDecisionTraceTime, recordDecisionTraces, type DecisionTraceInput } from "./decision-traces";
import { latestEvents, recordEvents } from "./events";
import { applyMigrations, DEFAULT_MIGRATIONS_DIR } from "./migrate";
import { useTestDatabase, type SuiteDatabase } from "./test-database-hooks";
import { captureLogger, createTestDatabase, DATABASE_KINDS, NO_RETRY } from "./testing";

const T0 = Date.UTC(2026, 5, 1);
const MIN = 60_000;
const at = (minutes: number) => new Date(T0 + minutes * MIN);
const trace = (symbol: string, minutes: number, payload: unknown = { action: "NO_SIGNAL", n: minutes }, exchange = "sim"): DecisionTraceInput => ({ exchange, symbol, time: at(minutes), payload });
const ns = (traces: readonly { payload: unknown }[]) => traces.map((t) => (t.payload as { n: number }).n);

describe.each(DATABASE_KINDS)("decision traces on the %s engine", (kind) => {
  const logger = captureLogger();
  let db: SuiteDatabase;
  useTestDatabase(kind, { logger, tables: "decision_traces, system_events", opened: (opened) => (db = opened) });

  it("stores a coin's trace once per tick: a replayed tick, deciding otherwise, changes nothing", async () => {
    expect(await recordDecisionTraces(db, [trace("BTC/USDT", 1, { action: "BUY", n: 1 }), trace("ETH/USDT", 1)])).toBe(0);
    // The same batch may hold a replayed trace too.
    expect(await recordDecisionTraces(db, [trace("BTC/USDT", 1, { action: "NO_SIGNAL", n: 99 }), trace("BTC/USDT", 2), trace("BTC/USDT", 2, { n: 98 })])).toBe(0);
    const btc = await latestDecisionTraces(db, { exchange: "sim", symbol: "BTC/USDT" });
    expect(btc.map((t) => [t.time.getTime(), t.payload])).toEqual([
      [at(2).getTime(), { action: "NO_SIGNAL", n: 2 }],
      [at(1).getTime(), { action: "BUY", n: 1 }],
    ]);
    expect(btc[0]).toEqual({ exchange: "sim", symbol: "BTC/USDT", time: at(2), level: "info", payload: { action: "NO_SIGNAL", n: 2 } });
    // The same coin and time on another exchange is another trace.
    expect(await recordDecisionTraces(db, [trace("BTC/USDT", 1, { n: 7 }, "binance")])).toBe(0);
    expect(ns(await latestDecisionTraces(db, { exchange: "binance", symbol: "BTC/USDT" }))).toEqual([7]);
    expect(await latestEvents(db)).toEqual([]);
  });

  it("reads each coin's newest trace of one exchange in the coins' order, and the exchange's newest of all", async () => {
    await recordDecisionTraces(db, [trace("BTC/USDT", 1), trace("BTC/USDT", 9), trace("ETH/USDT", 3), trace("SOL/USDT", 20, { n: 20 }, "binance")]);
    const newest = await latestDecisionTracePerSymbol(db, { exchange: "sim", symbols: ["SOL/USDT", "ETH/USDT", "NONE/USDT", "BTC/USDT"] });
    expect(newest.map((t) => [t.symbol, ns([t])[0]])).toEqual([
      ["ETH/USDT", 3],
      ["BTC/USDT", 9],
    ]);
    expect(await latestDecisionTracePerSymbol(db, { exchange: "sim", symbols: [] })).toEqual([]);
    expect(ns(await latestDecisionTraces(db, { exchange: "sim", symbol: "BTC/USDT", limit: 1 }))).toEqual([9]);
    expect(await newestDecisionTraceTime(db, "sim")).toEqual(at(9));
    expect(await newestDecisionTraceTime(db, "binance")).toEqual(at(20));
    expect(await newestDecisionTraceTime(db, "kraken")).toBeUndefined();
  });

  it("stores what it is given as the events do: hostile payloads described, over-long texts cut, a bad time made now", async () => {
    const cycle: Record<string, unknown> = { big: 10n };
    cycle.self = cycle;
    const before = Date.now();
    expect(
      await recordDecisionTraces(db, [
        { exchange: "sim", symbol: "NUL\0/USDT", time: at(1), payload: { text: "a\u0000b", cycle } },
        { exchange: "sim", symbol: "X".repeat(500), time: new Date(Number.NaN), payload: { n: 2 } },
      ]),
    ).toBe(0);
    const [first] = await latestDecisionTraces(db, { exchange: "sim", symbol: "NUL/USDT" });
    expect(first?.payload).toEqual({ text: "ab", cycle: { big: "10", self: "[Circular]" } });
    const [long] = await latestDecisionTracePerSymbol(db, { exchange: "sim", symbols: [`${"X".repeat(199)}…`] });
    expect(long?.time.getTime()).toBeGreaterThanOrEqual(before);
  });

  it("logs and drops a batch it cannot write, and says how many", async () => {
    await db.sql.exec("ALTER TABLE decision_traces RENAME TO decision_traces_away");
    try {
      expect(await recordDecisionTraces(db, [trace("BTC/USDT", 1), trace("ETH/USDT", 1)])).toBe(2);
      expect(logger.lines.map((line) => [line.level, line.message, line.meta?.dropped])).toEqual([["warn", "decision traces not recorded", 2]]);
      expect(String(logger.lines[0]?.meta?.error)).toMatch(/decision_traces/);
    } finally {
      await db.sql.exec("ALTER TABLE decision_traces_away RENAME TO decision_traces");
    }
  });
});

describe.each(DATABASE_KINDS)("the decision_traces migration on the %s engine", (kind) => {
  it("moves the traces stored in system_events, keyed by the exchange of their event key, and leaves every other event", async () => {
    const migration = "20261205200000_decision_traces";
    const before = fs.mkdtempSync(path.join(os.tmpdir(), "candlekeep-migrations-"));
    for (const name of fs.readdirSync(DEFAULT_MIGRATIONS_DIR)) {
      if (name !== migration) fs.cpSync(path.join(DEFAULT_MIGRATIONS_DIR, name), path.join(before, name), { recursive: true });
    }
    const testDb = await createTestDatabase(kind);
    const db = await openDatabase({ databaseUrl: testDb.url, dataDir: testDb.dataDir, autoMigrate: false, checkMigrations: false, logger: silentLogger, retry: NO_RETRY });
    try {
      await applyMigrations(db, { logger: silentLogger, migrationsDir: before });
      const old = (symbol: string | null, minutes: number, key: string | undefined) => ({ type: "DECISION_TRACE", symbol, time: at(minutes), level: "debug" as const, payload: { n: minutes }, ...(key === undefined ? {} : { eventKey: key }) });
      expect(
        await recordEvents(db, [
          old("BTC/USDT", 1, `binance:decision:BTC/USDT:${at(1).getTime()}`),
          old("BTC/USDT", 2, `binance:decision:BTC/USDT:${at(2).getTime()}`),
          old("ETH/USDT", 1, `sim:decision:ETH/USDT:${at(1).getTime()}`),
          old("ETH/USDT", 3, undefined),
          old(null, 4, undefined),
          { type: "POSITION_OPENED", symbol: "BTC/USDT", time: at(2), eventKey: "binance:open:x", payload: { n: 0 } },
        ]),
      ).toBe(0);

      expect(await applyMigrations(db, { logger: silentLogger })).toEqual([migration]);
      const moved = await db.sql.query<{ exchange: string; symbol: string; minutes: number; level: string }>(
        `SELECT exchange, symbol, (extract(epoch from time - $1::timestamptz) / 60)::int AS minutes, level FROM decision_traces ORDER BY 1, 2, 3`,
        [at(0)],
      );
      expect(moved.rows).toEqual([
        { exchange: "binance", symbol: "BTC/USDT", minutes: 1, level: "debug" },
        { exchange: "binance", symbol: "BTC/USDT", minutes: 2, level: "debug" },
        { exchange: "sim", symbol: "ETH/USDT", minutes: 1, level: "debug" },
        { exchange: "unknown", symbol: "ETH/USDT", minutes: 3, level: "debug" },
      ]);
      expect(ns(await latestDecisionTraces(db, { exchange: "binance", symbol: "BTC/USDT" }))).toEqual([2, 1]);
      // A trace without a coin has no place in decision_traces: it stays where it was, with the other events.
      expect((await latestEvents(db, { limit: 10 })).map((e) => [e.type, e.symbol])).toEqual([
        ["DECISION_TRACE", null],
        ["POSITION_OPENED", "BTC/USDT"],
      ]);
    } finally {
      await db.close();
      await testDb.drop();
      fs.rmSync(before, { recursive: true, force: true });
    }
  }, 60_000);
});
