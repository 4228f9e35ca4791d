import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { TIMEFRAMES, silentLogger } from "@candlekeep/core";
import { recordDecisionTraces, saveCandles } from "@candlekeep/db";
import { DATABASE_KINDS, type TestDatabase } from "@candlekeep/db/testing";
import type { CheckResult } from "./check";
import type { VerifyConfig } from "./config";
import { renderTable } from "./report";
import { runVerify, type VerifyReport } from "./run";
import ccxt from "ccxt";
import { ccxtAccount } from "./exchange";
import { TEST_API_KEY, TEST_SECRET, stubbedBinance } from "./fixtures/binance";
import { configFor, copyMigrations, createMigratedDatabase, fillLikeTheBot, freshCandles, healthyStorageStatus, openLivePosition, rowCounts, withDatabase } from "./test-helpers";

const NOW = Date.now();
const COINS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"];
const ALL_TIMEFRAMES = [...TIMEFRAMES];

const run = (config: VerifyConfig) => runVerify(config, { logger: silentLogger, now: () => NOW });

function check(report: VerifyReport, name: CheckResult["name"]): CheckResult {
  const result = report.checks.find((c) => c.name === name);
  if (!result) throw new Error(`no ${name} check in the report: ${renderTable(report)}`);
  return result;
}

const statuses = (report: VerifyReport) => Object.fromEntries(report.checks.map((c) => [c.name, c.status]));

describe.each(DATABASE_KINDS)("verify on the %s engine", (kind) => {
  let healthy: TestDatabase;
  const env = { EXCHANGE: "sim", SYMBOLS: COINS.join(","), TIMEFRAMES: ALL_TIMEFRAMES.join(",") };

  beforeAll(async () => {
    healthy = await createMigratedDatabase(kind, (db) => fillLikeTheBot(db, { symbols: COINS, timeframes: ALL_TIMEFRAMES, nowMs: NOW }));
  });
  afterAll(async () => {
    await healthy.drop();
  });

  it("passes every check on a migrated database the bot has filled, and the round trip leaves no rows behind", async () => {
    const before = await withDatabase(healthy, rowCounts);
    const storage = await healthyStorageStatus(kind, healthy);
    const report = await run(configFor(healthy, env));
    expect(statuses(report)).toEqual({ connection: "pass", migrations: "pass", schema: "pass", roundtrip: "pass", coverage: "pass", history: "pass", activity: "pass", books: "pass", storage });
    expect(report).toMatchObject({ status: storage === "warn" ? "warn" : "pass", exitCode: 0 });
    expect(check(report, "connection").summary).toMatch(kind === "server" ? /^PostgreSQL 15\.\d+ at postgresql:\/\/postgres@127\.0\.0\.1:5432\/candlekeep_test_\w+; round trip/ : /^PostgreSQL [\d.]+ \(PGlite [\d.]+\), embedded database in .*pgdata; round trip/);
    expect(check(report, "migrations").summary).toBe("6 of 6 migrations applied; none pending, failed or changed");
    expect(check(report, "schema").summary).toBe("9 tables, 99 columns match schema.prisma");
    expect(check(report, "coverage").summary).toBe("3 coins × 4 timeframes on sim: all 12 series fresh (≤ 2 candles behind), no gaps in the last 96 candles");
    expect(check(report, "history").summary).toBe("3 coins × 4 timeframes on sim: no gaps older than the last 96 candles in the 12 series audited");
    expect(check(report, "activity").summary).toMatch(/^3\/3 coins with a decision trace in the last 15 min; 1 open position; last account snapshot \S+ \(just now\)$/);
    expect(check(report, "books").summary).toBe("sim paper: cash 9949.4495 USDT matches the ledger (10000 start −50.5505 from fills); 1 open position backed by its orders; every order settled");
    expect(await withDatabase(healthy, rowCounts)).toEqual(before);
  });

  it("fails coverage naming a coin with no candles, and only coverage and activity notice; another exchange's trace of the coin is no activity", async () => {
    // A trace of NEW/USDT a minute ago on binance: verify checks sim's bot.
    expect(await withDatabase(healthy, (db) => recordDecisionTraces(db, [{ exchange: "binance", symbol: "NEW/USDT", time: new Date(NOW - 60_000), payload: { action: "NO_SIGNAL", reasons: ["another exchange"] } }]))).toBe(0);
    const report = await run(configFor(healthy, env, ["--symbols", "BTC/USDT,NEW/USDT", "--only", "coverage,activity"]));
    expect(statuses(report)).toEqual({ connection: "pass", coverage: "fail", activity: "warn" });
    expect(report.exitCode).toBe(1);
    const coverage = check(report, "coverage");
    expect(coverage.summary).toBe("2 coins × 4 timeframes on sim: 4 with no candles of 8 series — no candles: NEW/USDT (all timeframes)");
    expect(coverage.details).toContain("no candles (4 series): NEW/USDT (all timeframes)");
    expect(check(report, "activity").details).toContain("never a decision trace: NEW/USDT");
    expect(check(report, "activity").data).toMatchObject({ exchange: "sim", quietCoins: ["NEW/USDT"], latestDecisionTrace: { "NEW/USDT": null } });
  });

  it("fails coverage naming a stale coin, by the documented rule: more than --stale-after candles behind the forming one", async () => {
    await withDatabase(healthy, (db) => saveCandles(db, freshCandles({ symbols: ["OLD/USDT"], timeframes: ["15m"], nowMs: NOW, candlesAgo: 5 }), NOW));
    const argv = ["--symbols", "BTC/USDT,OLD/USDT", "--only", "coverage"];
    const report = await run(configFor(healthy, { ...env, TIMEFRAMES: "15m" }, argv));
    const coverage = check(report, "coverage");
    expect(coverage.status).toBe("fail");
    expect(coverage.summary).toBe("2 coins × 1 timeframe on sim: 1 stale of 2 series — stale: OLD/USDT 15m");
    expect(coverage.details.find((d) => d.startsWith("stale"))).toMatch(/^stale, more than 2 candles behind \(1 series\): OLD\/USDT 15m \(last \S+Z, 5 behind\)$/);

    expect(check(await run(configFor(healthy, { ...env, TIMEFRAMES: "15m" }, [...argv, "--stale-after", "5"])), "coverage").status).toBe("pass");
    expect(check(await run(configFor(healthy, { ...env, TIMEFRAMES: "15m" }, [...argv, "--stale-after", "4"])), "coverage").status).toBe("fail");
  });

  it("warns about gaps in the recent window without failing", async () => {
    await withDatabase(healthy, (db) => saveCandles(db, freshCandles({ symbols: ["GAP/USDT"], timeframes: ["1h"], nowMs: NOW, skip: [3, 4] }), NOW));
    const report = await run(configFor(healthy, { ...env, TIMEFRAMES: "1h" }, ["--symbols", "GAP/USDT", "--only", "coverage"]));
    const coverage = check(report, "coverage");
    expect(coverage.status).toBe("warn");
    expect(coverage.details).toContain("gaps in the last 96 candles (1 series): GAP/USDT 1h (2 missing)");
    expect(report.exitCode).toBe(0);
    // Outside a 3-candle window the hole no longer counts.
    expect(check(await run(configFor(healthy, { ...env, TIMEFRAMES: "1h" }, ["--symbols", "GAP/USDT", "--only", "coverage", "--gap-window", "3"])), "coverage").status).toBe("pass");
  });

  it("fails the migrations check naming a pending migration, without applying it", async () => {
    const migrations = copyMigrations();
    try {
      fs.mkdirSync(path.join(migrations.dir, "20991231000000_add_notes"));
      fs.writeFileSync(path.join(migrations.dir, "20991231000000_add_notes", "migration.sql"), "ALTER TABLE positions ADD COLUMN notes TEXT;\n");
      const config = configFor(healthy, env, ["--only", "migrations"]);
      const report = await run({ ...config, database: { ...config.database, migrationsDir: migrations.dir } });
      const result = check(report, "migrations");
      expect(result.status).toBe("fail");
      expect(result.summary).toBe("1 pending migration: 20991231000000_add_notes");
      expect(report.exitCode).toBe(1);
      const again = await run({ ...config, database: { ...config.database, migrationsDir: migrations.dir } });
      expect(check(again, "migrations").summary).toBe("1 pending migration: 20991231000000_add_notes");
    } finally {
      migrations.remove();
    }
  });

  it("fails the migrations check naming a migration edited after it was applied", async () => {
    const migrations = copyMigrations();
    try {
      const file = path.join(migrations.dir, "20261125000000_init", "migration.sql");
      fs.appendFileSync(file, "\n-- an edit after deploy\n");
      const config = configFor(healthy, env, ["--only", "migrations"]);
      const report = await run({ ...config, database: { ...config.database, migrationsDir: migrations.dir } });
      expect(check(report, "migrations")).toMatchObject({ status: "fail", summary: "changed after being applied (checksum differs): 20261125000000_init" });
    } finally {
      migrations.remove();
    }
  });

  it("fails the schema and round-trip checks on a dropped column, naming it", async () => {
    const broken = await createMigratedDatabase(kind, (db) => db.sql.exec("ALTER TABLE positions DROP COLUMN stop_loss"));
    try {
      const report = await run(configFor(broken, env, ["--only", "schema,roundtrip"]));
      expect(check(report, "schema")).toMatchObject({ status: "fail", summary: "1 difference from schema.prisma: column positions.stop_loss (Position.stopLoss) does not exist" });
      const roundtrip = check(report, "roundtrip");
      expect(roundtrip.status).toBe("fail");
      expect(roundtrip.summary).toMatch(/^position did not round-trip: position: column "stop_loss" of relation "positions" does not exist/);
    } finally {
      await broken.drop();
    }
  });

  it("fails the schema check on a missing table, and the checks that need it say why", async () => {
    const broken = await createMigratedDatabase(kind, (db) => db.sql.exec("DROP TABLE candles"));
    try {
      const report = await run(configFor(broken, env));
      expect(check(report, "schema")).toMatchObject({ status: "fail", summary: '1 difference from schema.prisma: table "candles" (model Candle) does not exist' });
      expect(check(report, "roundtrip").details).toEqual(['candle: relation "candles" does not exist']);
      expect(check(report, "coverage")).toMatchObject({ status: "fail", summary: 'coverage check could not run: relation "candles" does not exist' });
      expect(check(report, "migrations").status).toBe("pass");
      expect(report.exitCode).toBe(1);
    } finally {
      await broken.drop();
    }
  });

  it("reports every migration pending on an empty database instead of migrating it", async () => {
    const empty = await createMigratedDatabase(kind);
    try {
      await withDatabase(empty, (db) => db.sql.exec(`DROP TABLE candles, decision_traces, trades, positions, orders, system_events, account_state, series_audit, candle_gaps, "_prisma_migrations"; DROP TYPE position_side, exit_reason, order_status, order_side, order_purpose, trading_mode`));
      const report = await run(configFor(empty, env, ["--only", "migrations"]));
      expect(check(report, "migrations")).toMatchObject({ status: "fail", summary: "6 pending migrations: 20261125000000_init, 20261125150000_candles_fillfactor, 20261203100000_trades_exit_time_index, 20261205000000_order_ledger, 20261205100000_history_audit, 20261205200000_decision_traces" });
      const after = await run(configFor(empty, env, ["--only", "migrations"]));
      expect(check(after, "migrations").status).toBe("fail");
    } finally {
      await empty.drop();
    }
  });
});

describe("a live verify run against binance's recorded account (ccxt's binance class, HTTP answered from the recording)", () => {
  let matching: TestDatabase;
  let holdsMore: TestDatabase;
  const openedAt = new Date(NOW - 3_600_000);
  const env = { EXCHANGE: "binance", TRADING_MODE: "live", EXCHANGE_API_KEY: TEST_API_KEY, EXCHANGE_API_SECRET: TEST_SECRET, SYMBOLS: "LTC/USDT,ETH/USDT", TIMEFRAMES: "15m" };
  const books = ["--only", "books"];

  beforeAll(async () => {
    // The recording holds LTC 0.919741 and ETH 0.02229833.
    matching = await createMigratedDatabase("server", async (db) => {
      await openLivePosition(db, { exchange: "binance", symbol: "LTC/USDT", amount: 0.919741, price: 70, time: openedAt });
      await openLivePosition(db, { exchange: "binance", symbol: "ETH/USDT", amount: 0.02229833, price: 2200, time: openedAt });
    });
    holdsMore = await createMigratedDatabase("server", (db) => openLivePosition(db, { exchange: "binance", symbol: "LTC/USDT", amount: 1.25, price: 70, time: openedAt }));
  });
  afterAll(async () => {
    await matching.drop();
    await holdsMore.drop();
  });

  const liveRun = (testDb: TestDatabase, stub = stubbedBinance()) => runVerify(configFor(testDb, env, books), { logger: silentLogger, now: () => NOW, exchangeBalances: ccxtAccount(stub.exchange).balances });

  it("passes when the open positions are what the account holds", async () => {
    const report = await liveRun(matching);
    expect(statuses(report)).toEqual({ connection: "pass", books: "pass" });
    expect(report.exitCode).toBe(0);
    expect(check(report, "books").summary).toBe("binance live: 2/2 coins held match the exchange's balances; 2 open positions backed by their orders; every order settled");
  });

  it("fails naming the coin and both amounts when the positions hold more than the account", async () => {
    const report = await liveRun(holdsMore);
    expect(report.exitCode).toBe(1);
    const result = check(report, "books");
    expect(result.status).toBe("fail");
    expect(result.summary).toBe("binance live: LTC: open positions hold 1.25 (LTC/USDT), the exchange has 0.919741: 0.330259 short");
  });

  it("fails the comparison in one line naming binance and the reason when the key is refused, never showing the key", async () => {
    const refused = stubbedBinance(() => {
      throw new ccxt.AuthenticationError(`binance {"code":-2015,"msg":"Invalid API-key, IP, or permissions for action."} (key ${TEST_API_KEY})`);
    });
    const report = await liveRun(matching, refused);
    expect(report.exitCode).toBe(1);
    const result = check(report, "books");
    expect(result.status).toBe("fail");
    expect(result.summary).toBe(
      'binance live: exchange balances not compared: binance fetchBalance failed: AuthenticationError: binance {"code":-2015,"msg":"Invalid API-key, IP, or permissions for action."} (key ***) (check EXCHANGE_API_KEY and EXCHANGE_API_SECRET: a key with read permission is enough)',
    );
    expect(result.details).toEqual([result.summary.replace(/^binance live: /, "")]);
    const everything = JSON.stringify(report);
    expect(everything).not.toContain(TEST_API_KEY);
    expect(everything).not.toContain(TEST_SECRET);
  });

  it("warns, naming the settings, when live without keys", async () => {
    const report = await runVerify(configFor(matching, { ...env, EXCHANGE_API_KEY: "", EXCHANGE_API_SECRET: "" }, books), { logger: silentLogger, now: () => NOW });
    expect(statuses(report)).toEqual({ connection: "pass", books: "warn" });
    expect(report.exitCode).toBe(0);
    expect(check(report, "books").summary).toMatch(/^binance live: exchange balances not compared: verify needs EXCHANGE_API_KEY and EXCHANGE_API_SECRET /);
  });
});

/** A local port with nothing listening: bind, note the port, close. */
async function unusedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

describe("verify when it cannot connect", () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "candlekeep-verify-"));
  afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  it("fails the connection on an unreachable server after the given retries and skips the other checks", async () => {
    const port = await unusedPort();
    const config = configFor({ url: `postgresql://candlekeep:s3cret@127.0.0.1:${port}/candlekeep`, dataDir });
    const report = await runVerify({ ...config, database: { ...config.database, retry: { retries: 2, initialDelayMs: 5 } } }, { logger: silentLogger });
    expect(report).toMatchObject({ status: "fail", exitCode: 1, database: undefined });
    const connection = check(report, "connection");
    expect(connection.status).toBe("fail");
    expect(connection.summary).toMatch(new RegExp(`^Cannot reach PostgreSQL at 127\\.0\\.0\\.1:${port} \\(database "candlekeep"\\) after 3 attempts: .*ECONNREFUSED`));
    expect(connection.summary).not.toContain("s3cret");
    expect(report.checks.filter((c) => c.name !== "connection").map((c) => [c.name, c.status, c.summary])).toEqual(
      ["migrations", "schema", "roundtrip", "coverage", "history", "activity", "books", "storage"].map((name) => [name, "skip", "skipped: no database connection"]),
    );
  });

  it("fails the connection with the URL validator's one line for a malformed DATABASE_URL", async () => {
    const report = await run(configFor({ url: "postgresql://candlekeep:p@ss@db.example.com/candlekeep", dataDir }));
    expect(check(report, "connection")).toMatchObject({
      status: "fail",
      summary: "Invalid DATABASE_URL: the password contains an unencoded '@'; percent-encode special characters in the user or password (@ → %40, : → %3A, / → %2F, # → %23, ? → %3F, % → %25).",
    });
    expect(report.exitCode).toBe(1);
  });

  it("fails without creating anything when DATABASE_URL is unset and the data directory holds no database", async () => {
    const report = await run(configFor({ url: undefined, dataDir }));
    expect(check(report, "connection").summary).toBe(
      `DATABASE_URL is unset and there is no embedded database in ${path.join(dataDir, "pgdata")}. Set DATABASE_URL to the bot's PostgreSQL server, or CANDLEKEEP_DATA_DIR to the bot's data directory.`,
    );
    expect(fs.readdirSync(dataDir)).toEqual([]);
  });
});
