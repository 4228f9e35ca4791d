import { DiskFullError } from "@candlekeep/db";
import { captureLogger } from "@candlekeep/db/testing";
import { DatabaseOutage } from "./outage";
import { newStatus } from "./runtime";

describe("DatabaseOutage", () => {
  function setup() {
    let now = Date.UTC(2026, 0, 1);
    const logger = captureLogger();
    const status = newStatus();
    const outage = new DatabaseOutage(logger, status, { intervalMs: 30_000, clock: () => now });
    return { outage, logger, status, advance: (ms: number) => (now += ms) };
  }
  const messages = (logger: ReturnType<typeof captureLogger>) => logger.lines.map((l) => `${l.level} ${l.message}`);

  it("logs a failing candle write at once, then once per interval, and the recovery with what was dropped", () => {
    const { outage, logger, status, advance } = setup();
    for (let tick = 0; tick < 70; tick += 1) {
      outage.candleWriteFailed(new Error("connect ECONNREFUSED"), 100 + tick);
      outage.eventsDropped({ events: [{ type: "ORDER" }], traces: 2 }, "connect ECONNREFUSED");
      outage.writeFailed("account snapshot", new Error("connect ECONNREFUSED"));
      advance(1000);
    }
    expect(status.dbDownSince).toBeDefined();
    expect(messages(logger)).toEqual([
      "error writing candles failed; keeping them pending and retrying",
      "error writing candles failed; keeping them pending and retrying",
      "error writing candles failed; keeping them pending and retrying",
    ]);
    expect(logger.lines[1]?.meta).toMatchObject({ pendingCandles: 130, failedWrites: 31, eventsDropped: 90, decisionTracesDropped: 60, error: "connect ECONNREFUSED" });
    outage.candleWriteSucceeded(500);
    expect(logger.lines.at(-1)).toMatchObject({ level: "info", message: "database is back; pending candles written", meta: { written: 500, failedWrites: 70, eventsDropped: 210, decisionTracesDropped: 140, downForMs: 70_000 } });
    expect(status.dbDownSince).toBeUndefined();
    outage.candleWriteSucceeded(10);
    expect(logger.lines).toHaveLength(4);
  });

  it("tells a read the work waits for (a backfill's plan) in the same story: one line when it starts, one per interval, one when it ends", () => {
    const { outage, logger, status, advance } = setup();
    for (let attempt = 0; attempt < 40; attempt += 1) {
      outage.readFailed("reading the stored candles' coverage", new Error("read ECONNRESET"));
      advance(1000);
    }
    outage.candleWriteFailed(new Error("connect ECONNREFUSED"), 20);
    expect(messages(logger)).toEqual([
      "error reading the stored candles' coverage failed; waiting for the database and retrying",
      "error reading the stored candles' coverage failed; waiting for the database and retrying",
    ]);
    expect(logger.lines[1]?.meta).toMatchObject({ failedWrites: 0, failedReads: 31, downForMs: 30_000, error: "read ECONNRESET" });
    outage.readSucceeded();
    expect(logger.lines.at(-1)).toMatchObject({ level: "info", message: "database is back", meta: { failedWrites: 1, failedReads: 40, downForMs: 40_000 } });
    expect(status.dbDownSince).toBeUndefined();
    outage.readSucceeded();
    expect(logger.lines).toHaveLength(3);
  });

  it("on a full disk, where reads work while writes fail, a read's success does not end the outage: a write's does", () => {
    const { outage, logger, status } = setup();
    outage.candleWriteFailed(new DiskFullError("No space left for the embedded database."), 50);
    outage.readFailed("auditing the stored history", new DiskFullError("No space left for the embedded database."));
    outage.readSucceeded();
    expect(status.dbDownSince).toBeDefined();
    expect(messages(logger)).toEqual(["error writing candles failed; keeping them pending and retrying"]);
    outage.candleWriteSucceeded(50);
    expect(messages(logger).at(-1)).toBe("info database is back; pending candles written");
    expect(status.dbDownSince).toBeUndefined();
    // The next outage, of another kind, ends with a read again.
    outage.readFailed("reading the stored candles' coverage", new Error("read ECONNRESET"));
    outage.readSucceeded();
    expect(messages(logger).at(-1)).toBe("info database is back");
  });

  it("when candles are written fine, logs other failing writes at most once per interval each", () => {
    const { outage, logger, advance } = setup();
    for (let tick = 0; tick < 40; tick += 1) {
      outage.eventsDropped({ events: [], traces: 1 }, "value too long");
      outage.writeFailed("account snapshot", new Error("numeric field overflow"));
      advance(1000);
    }
    expect(messages(logger)).toEqual([
      "warn events not recorded (non-critical, dropped)",
      "warn account snapshot failed; retrying next tick",
      "warn events not recorded (non-critical, dropped)",
      "warn account snapshot failed; retrying next tick",
    ]);
    expect(logger.lines[2]?.meta).toMatchObject({ eventsDropped: 30, decisionTracesDropped: 30 });
  });

  it("summarises coins failing on a full disk: one line per interval, none while the candle outage is reported, counted in its lines", () => {
    const { outage, logger, advance } = setup();
    const full = new DiskFullError("No space left for the embedded database.");
    const coins = ["BTC/USDT", "ETH/USDT", "SOL/USDT"];
    // The first tick's coins fail before its candle write does: one line, then the outage's.
    for (const coin of coins) outage.coinWriteFailed(coin, full);
    for (let tick = 0; tick < 40; tick += 1) {
      outage.candleWriteFailed(full, 100);
      advance(1000);
      for (const coin of coins) outage.coinWriteFailed(coin, full);
    }
    expect(messages(logger)).toEqual([
      "warn coin updates failing: the database cannot write; retrying next tick",
      "error writing candles failed; keeping them pending and retrying",
      "error writing candles failed; keeping them pending and retrying",
    ]);
    expect(logger.lines[0]?.meta).toMatchObject({ coinWritesFailed: 1, coinsFailing: 1 });
    expect(logger.lines[2]?.meta).toMatchObject({ coinWritesFailed: 92, coinsFailing: 3, error: "No space left for the embedded database." });
    outage.candleWriteSucceeded(10);
    expect(logger.lines.at(-1)?.meta).toMatchObject({ coinWritesFailed: 122, coinsFailing: 3 });
  });
});
