import { TIMEFRAMES, silentLogger } from "@candlekeep/core";
import { saveCandles } from "@candlekeep/db";
import { startPrivateServer, startStandby, until, type PrivateServer, type Standby, type TestDatabase } from "@candlekeep/db/testing";
import type { CheckResult } from "./check";
import { renderTable } from "./report";
import { runVerify, type VerifyReport } from "./run";
import { configFor, createMigratedDatabase, fillLikeTheBot, freshCandles, healthyStorageStatus, openExisting, rowCounts, withDatabase } from "./test-helpers";

/**
 * verify with DATABASE_READ_URL, against two real databases holding different
 * data: the "primary" (DATABASE_URL) has only candles 50 periods old of the
 * coins, the "replica" what a running bot leaves (fresh candles, traces, a
 * paper account with a filled entry). The replica refuses writes, as a hot
 * standby does (default_transaction_read_only), so a check that wrote there
 * would fail. Which database each check read shows in what it reports.
 */

const NOW = Date.now();
const COINS = ["XRP/USDT", "ADA/USDT"];
const ALL_TIMEFRAMES = [...TIMEFRAMES];
const env = { EXCHANGE: "sim", SYMBOLS: COINS.join(","), TIMEFRAMES: ALL_TIMEFRAMES.join(",") };

const run = (readUrl: string | undefined, primary: TestDatabase, argv: string[] = []) =>
  runVerify(configFor(primary, { ...env, ...(readUrl === undefined ? {} : { DATABASE_READ_URL: readUrl }) }, argv), { logger: silentLogger, now: () => NOW });

function check(report: VerifyReport, name: CheckResult["name"]): CheckResult {
  const result = report.checks.find((c) => c.name === name);
  if (!result) throw new Error(`no ${name} check in the report: ${renderTable(report)}`);
  return result;
}

const statuses = (report: VerifyReport) => Object.fromEntries(report.checks.map((c) => [c.name, c.status]));
const seriesAudited = (testDb: TestDatabase) => withDatabase(testDb, async (db) => Number((await db.sql.query<{ n: string }>("SELECT count(*) AS n FROM series_audit")).rows[0]?.n));
const databaseName = (testDb: TestDatabase) => new URL(testDb.url ?? "").pathname.slice(1);

describe("verify with a read replica (DATABASE_READ_URL)", () => {
  let primary: TestDatabase;
  let replica: TestDatabase;

  beforeAll(async () => {
    primary = await createMigratedDatabase("server", (db) => saveCandles(db, freshCandles({ symbols: COINS, timeframes: ALL_TIMEFRAMES, nowMs: NOW, candlesAgo: 50 }), NOW).then(() => undefined));
    replica = await createMigratedDatabase("server", (db) => fillLikeTheBot(db, { symbols: COINS, timeframes: ALL_TIMEFRAMES, nowMs: NOW }));
    // From here on every transaction on the replica is read only, as on a standby: a write there fails.
    await withDatabase(primary, (db) => db.sql.exec(`ALTER DATABASE "${databaseName(replica)}" SET default_transaction_read_only = on`));
  });
  afterAll(async () => {
    await primary?.drop();
    await replica?.drop();
  });

  it("reads the bot's data from the replica and writes (round trip, history audit) to DATABASE_URL", async () => {
    const replicaBefore = await withDatabase(replica, rowCounts);
    const primaryBefore = await withDatabase(primary, rowCounts);
    const report = await run(replica.url, primary);
    const storage = await healthyStorageStatus("server", primary);
    expect(statuses(report)).toEqual({ connection: "pass", migrations: "pass", schema: "pass", roundtrip: "pass", coverage: "pass", history: "pass", activity: "pass", books: "pass", storage });

    const connection = check(report, "connection");
    expect(connection.summary).toMatch(
      new RegExp(`^PostgreSQL 15\\.\\d+ at postgresql://postgres@127\\.0\\.0\\.1:5432/${databaseName(primary)}; round trip [\\d.]+ ms; read-only checks read the replica, PostgreSQL 15\\.\\d+ at postgresql://postgres@127\\.0\\.0\\.1:5432/${databaseName(replica)}, not a standby \\(`),
    );
    expect(connection.data).toMatchObject({ target: expect.stringContaining(databaseName(primary)), replica: { target: expect.stringContaining(databaseName(replica)), standby: false, replayLagMs: null } });
    // The primary's candles are 50 periods old: fresh coverage and the bot's activity and books are the replica's.
    expect(check(report, "coverage").summary).toBe("2 coins × 4 timeframes on sim: all 8 series fresh (≤ 2 candles behind), no gaps in the last 96 candles");
    expect(check(report, "activity").summary).toMatch(/^2\/2 coins with a decision trace in the last 15 min; 1 open position; last account snapshot \S+ \(just now\)$/);
    expect(check(report, "books").summary).toBe("sim paper: cash 9949.4495 USDT matches the ledger (10000 start −50.5505 from fills); 1 open position backed by its orders; every order settled");
    // The history audit ran where it can write: the primary's series are audited, the replica is as it was.
    expect(await seriesAudited(primary)).toBe(8);
    expect(await seriesAudited(replica)).toBe(0);
    expect(await withDatabase(replica, rowCounts)).toEqual(replicaBefore);
    expect(await withDatabase(primary, rowCounts)).toEqual(primaryBefore);
  });

  it("reads DATABASE_URL's database when DATABASE_READ_URL is unset: the same settings then find the primary's stale candles", async () => {
    const report = await run(undefined, primary, ["--only", "coverage,activity"]);
    expect(check(report, "connection").summary).not.toContain("replica");
    expect(check(report, "coverage").summary).toBe("2 coins × 4 timeframes on sim: 8 stale of 8 series — stale: ADA/USDT (all timeframes); XRP/USDT (all timeframes)");
    expect(check(report, "activity").details).toContain("never a decision trace: XRP/USDT, ADA/USDT");
  });

  it("fails the connection check naming DATABASE_READ_URL when the replica cannot be opened, and runs nothing on the primary alone", async () => {
    const missing = new URL(replica.url ?? "");
    missing.pathname = "/candlekeep_no_such_replica";
    missing.password = "hunter2-replica";
    const report = await run(missing.toString(), primary);
    const connection = check(report, "connection");
    expect(connection.status).toBe("fail");
    expect(connection.summary).toBe(
      'read replica (DATABASE_READ_URL): Database "candlekeep_no_such_replica" does not exist on 127.0.0.1:5432. Create it (CREATE DATABASE "candlekeep_no_such_replica") or fix the name in DATABASE_READ_URL.',
    );
    expect(report.checks.filter((c) => c.name !== "connection").map((c) => c.status)).toEqual(["skip", "skip", "skip", "skip", "skip", "skip", "skip", "skip"]);
    expect(renderTable(report)).not.toContain("hunter2");
    expect(report.exitCode).toBe(1);
  });
});

describe("verify with a streaming hot standby of DATABASE_URL's server as DATABASE_READ_URL", () => {
  let server: PrivateServer;
  let standby: Standby;
  let primary: TestDatabase;

  beforeAll(async () => {
    server = startPrivateServer({});
    standby = startStandby(server);
    // Created, migrated and filled on the primary after the standby started: all of it reaches the standby by replication.
    primary = await server.createDatabase();
    const db = await openExisting(primary, { autoMigrate: true });
    try {
      await fillLikeTheBot(db, { symbols: COINS, timeframes: ALL_TIMEFRAMES, nowMs: NOW });
    } finally {
      await db.close();
    }
  }, 60_000);
  afterAll(async () => {
    await primary?.drop();
    standby?.stop();
    server?.stop();
  });

  it("passes every check, the read-only ones on the standby (which refuses any write) and says it is caught up", async () => {
    const readUrl = standby.urlOf(primary);
    const report = await until(
      "the standby to hold the bot's data",
      async () => {
        const attempt = await run(readUrl, primary);
        return check(attempt, "connection").summary.includes("a standby, caught up") && check(attempt, "coverage").status === "pass" ? attempt : undefined;
      },
      20_000,
    );
    expect(statuses(report)).toEqual({ connection: "pass", migrations: "pass", schema: "pass", roundtrip: "pass", coverage: "pass", history: "pass", activity: "pass", books: "pass", storage: await healthyStorageStatus("server", primary) });
    expect(check(report, "connection").data).toMatchObject({ replica: { standby: true, replayLagMs: 0 } });
    expect(check(report, "books").summary).toBe("sim paper: cash 9949.4495 USDT matches the ledger (10000 start −50.5505 from fills); 1 open position backed by its orders; every order settled");
  });
});
