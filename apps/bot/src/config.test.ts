import { InvalidSettingsError } from "@candlekeep/core";
import { loadConfig } from "./config";

function problemsOf(env: Record<string, string>, argv: string[] = []): string[] {
  try {
    loadConfig(env, argv, false);
  } catch (error) {
    if (error instanceof InvalidSettingsError) return error.problems;
    throw error;
  }
  throw new Error("expected the configuration to be rejected");
}

describe("loadConfig", () => {
  it("runs on the embedded database and the simulated exchange with no settings", () => {
    const config = loadConfig({}, [], false);
    expect(config.database.url).toBeUndefined();
    expect(config.database.dataDir).toBe(`${process.cwd()}/.candlekeep`);
    expect(config.exchange).toMatchObject({ id: "sim", timeframes: ["15m", "1h", "4h", "1d"] });
    expect(config.trading.mode).toBe("paper");
    expect(config.tick.intervalMs).toBe(1000);
    expect(config.command).toEqual({ kind: "run", ticks: undefined });
    expect(config.log.format).toBe("json");
  });

  it("uses a 60 s tick on a real exchange and pretty logs on a terminal", () => {
    const config = loadConfig({ EXCHANGE: "binance" }, [], true);
    expect(config.tick.intervalMs).toBe(60_000);
    expect(config.log.format).toBe("pretty");
    expect(loadConfig({ EXCHANGE: "binance", NODE_ENV: "production" }, [], true).log.format).toBe("json");
  });

  it("lets flags override the environment", () => {
    const config = loadConfig({ SYMBOLS: "BTC/USDT", EXCHANGE: "sim" }, ["--", "--ticks", "50", "--symbols=ETH/USDT,SOL/USDT", "--tick-interval", "0"], false);
    expect(config.command).toEqual({ kind: "run", ticks: 50 });
    expect(config.exchange.symbols).toEqual({ kind: "list", symbols: ["ETH/USDT", "SOL/USDT"] });
    expect(config.tick.intervalMs).toBe(0);
  });

  it("parses the backfill command", () => {
    expect(loadConfig({}, ["backfill", "--days", "30"], false).command).toEqual({ kind: "backfill", days: 30, json: false });
    expect(loadConfig({}, ["backfill", "--days", "30", "--json"], false).command).toEqual({ kind: "backfill", days: 30, json: true });
    expect(problemsOf({}, ["backfill"])).toEqual(["backfill needs --days N (how many days of history to load)"]);
    expect(problemsOf({}, ["--json"])).toEqual(["--json applies only to the backfill command"]);
  });

  it("gives one line per problem, naming the setting", () => {
    expect(problemsOf({ TIMEFRAMES: "15m,2h", RISK_PER_TRADE: "-0.5", SYMBOLS: ",", CONCURRENCY: "zero" }, ["--ticks", "x", "--bogus"])).toEqual([
      'unknown argument "--bogus"',
      "--ticks must be a whole number ≥ 1",
      "SYMBOLS is empty; list coins like BTC/USDT,ETH/USDT or use top:20",
      "TIMEFRAMES has unknown 2h; use a comma list of 15m, 1h, 4h, 1d",
      "RISK_PER_TRADE must be greater than 0",
      "CONCURRENCY must be a number",
    ]);
  });

  it("names an empty SYMBOLS or TIMEFRAMES (set to nothing, as env or flag) instead of running the defaults", () => {
    const empty = "SYMBOLS is empty; list coins like BTC/USDT,ETH/USDT or use top:20";
    expect(problemsOf({ SYMBOLS: "" })).toEqual([empty]);
    expect(problemsOf({ SYMBOLS: "  " })).toEqual([empty]);
    expect(problemsOf({ SYMBOLS: "BTC/USDT" }, ["--symbols="])).toEqual([empty]);
    expect(problemsOf({ TIMEFRAMES: "" })).toEqual(["TIMEFRAMES is empty; use a comma list of 15m, 1h, 4h, 1d"]);
    // Other empty settings still mean unset, as deploy dashboards create empty variables.
    expect(loadConfig({ DATABASE_URL: "", EXCHANGE: "", CONCURRENCY: "" }, [], false)).toMatchObject({ database: { url: undefined }, exchange: { id: "sim" }, tick: { concurrency: 8 } });
  });

  it("takes a symbol list case- and space-insensitively, once per coin", () => {
    expect(loadConfig({ SYMBOLS: " btc/usdt , ETH/USDT,BTC/USDT,, " }, [], false).exchange.symbols).toEqual({ kind: "list", symbols: ["BTC/USDT", "ETH/USDT"] });
  });

  it("asks for SYMBOLS on the simulated exchange with an account in another currency than its default coins' USDT", () => {
    expect(problemsOf({ QUOTE_CURRENCY: "EUR" })).toEqual([
      "SYMBOLS is unset, and the simulated exchange's default coins are quoted in USDT, not QUOTE_CURRENCY EUR; set SYMBOLS to top:20 (or a list like BTC/EUR)",
    ]);
    expect(loadConfig({ QUOTE_CURRENCY: "EUR", SYMBOLS: "top:20" }, [], false).exchange.symbols).toEqual({ kind: "top", count: 20 });
  });

  it("requires keys and a real exchange for live trading, without echoing secrets", () => {
    expect(problemsOf({ TRADING_MODE: "live" })).toEqual([
      "TRADING_MODE=live needs a real exchange; set EXCHANGE to a ccxt exchange id",
      "TRADING_MODE=live needs EXCHANGE_API_KEY and EXCHANGE_API_SECRET",
    ]);
    const problems = problemsOf({ TRADING_MODE: "live", EXCHANGE: "binance", EXCHANGE_API_KEY: "key-123", EXCHANGE_API_SECRET: "s3cret", RISK_PER_TRADE: "5" });
    expect(problems).toEqual(["RISK_PER_TRADE must be at most 0.2"]);
    expect(problems.join("\n")).not.toMatch(/key-123|s3cret/);
  });

  it("audits the stored history hourly unless HISTORY_AUDIT_INTERVAL_MS says otherwise, within bounds", () => {
    expect(loadConfig({}, [], false).history).toEqual({ auditIntervalMs: 3_600_000 });
    expect(loadConfig({ HISTORY_AUDIT_INTERVAL_MS: "60000" }, [], false).history).toEqual({ auditIntervalMs: 60_000 });
    expect(problemsOf({ HISTORY_AUDIT_INTERVAL_MS: "10" })).toEqual(["HISTORY_AUDIT_INTERVAL_MS must be at least 1000"]);
    expect(problemsOf({ HISTORY_AUDIT_INTERVAL_MS: "hourly" })).toEqual(["HISTORY_AUDIT_INTERVAL_MS must be a number"]);
  });

  it("reads DATABASE_STORAGE_BUDGET as a size, as verify and the standalone dashboard do, and names a malformed one", () => {
    expect(loadConfig({}, [], false).server.dashboard.storageBudgetBytes).toBeUndefined();
    expect(loadConfig({ DATABASE_STORAGE_BUDGET: "" }, [], false).server.dashboard.storageBudgetBytes).toBeUndefined();
    expect(loadConfig({ DATABASE_STORAGE_BUDGET: "10GB" }, [], false).server.dashboard.storageBudgetBytes).toBe(10 * 1024 ** 3);
    expect(problemsOf({ DATABASE_STORAGE_BUDGET: "10" })).toEqual(["DATABASE_STORAGE_BUDGET needs a unit, such as 10GB or 500MB, not a bare number (B, kB, MB, GB, TB; 1 GB = 1024 MB)"]);
    expect(problemsOf({ DATABASE_STORAGE_BUDGET: "ten gigabytes" })).toEqual(["DATABASE_STORAGE_BUDGET must be a size such as 10GB or 500MB (B, kB, MB, GB, TB; 1 GB = 1024 MB)"]);
  });

  it("rejects a strategy timeframe that is not tracked", () => {
    expect(problemsOf({ TIMEFRAMES: "1h,4h" })).toContain("STRATEGY_TIMEFRAME 15m must be one of the tracked TIMEFRAMES (1h, 4h)");
  });

  it("keeps 90 days of decision traces and every candle unless told otherwise; 0 keeps everything", () => {
    expect(loadConfig({}, [], false).retention).toEqual({ traceDays: 90, candleDays: {} });
    expect(loadConfig({ EVENT_RETENTION_DAYS: "0", CANDLE_RETENTION_DAYS: " 15m:365, 1h : 1095,4h:0 " }, [], false).retention).toEqual({ traceDays: 0, candleDays: { "15m": 365, "1h": 1095 } });
    // A timeframe the bot does not track may be named: its stored candles age out too.
    expect(loadConfig({ TIMEFRAMES: "15m", CANDLE_RETENTION_DAYS: "1d:30" }, [], false).retention.candleDays).toEqual({ "1d": 30 });
  });

  it("refuses retention settings it cannot follow, saying how to write them", () => {
    expect(problemsOf({ EVENT_RETENTION_DAYS: "-1" })).toEqual(["EVENT_RETENTION_DAYS must be at least 0 (0 keeps everything)"]);
    expect(problemsOf({ EVENT_RETENTION_DAYS: "ninety" })).toEqual(["EVENT_RETENTION_DAYS must be a whole number of days (0 keeps everything)"]);
    expect(problemsOf({ EVENT_RETENTION_DAYS: "1.5" })).toEqual(["EVENT_RETENTION_DAYS must be a whole number of days (0 keeps everything)"]);
    expect(problemsOf({ CANDLE_RETENTION_DAYS: "15m,5m:30,1h:30,1h:60,4h:-2,1d:x" })).toEqual([
      'CANDLE_RETENTION_DAYS has "15m", not timeframe:days; write pairs like 15m:365,1h:1095 (a timeframe left out is kept whole)',
      'CANDLE_RETENTION_DAYS names unknown timeframe "5m"; use 15m, 1h, 4h, 1d',
      "CANDLE_RETENTION_DAYS names 1h twice; give each timeframe once",
      'CANDLE_RETENTION_DAYS gives 4h "-2" days; use a whole number from 0 (keep every 4h candle) to 36500',
      'CANDLE_RETENTION_DAYS gives 1d "x" days; use a whole number from 0 (keep every 1d candle) to 36500',
    ]);
    expect(problemsOf({ CANDLE_RETENTION_DAYS: " , " })).toEqual(["CANDLE_RETENTION_DAYS is blank; unset it to keep every candle, or write timeframe:days pairs like 15m:365,1h:1095"]);
  });

  it("refuses a candle retention shorter than the HISTORY_CANDLES the bot loads at start of a tracked timeframe", () => {
    expect(problemsOf({ CANDLE_RETENTION_DAYS: "1d:200" })).toEqual([
      "CANDLE_RETENTION_DAYS keeps 1d candles 200 days, fewer than the 300 HISTORY_CANDLES the bot loads (300 days of 1d); keep 1d:300 or more, or lower HISTORY_CANDLES",
    ]);
    expect(loadConfig({ CANDLE_RETENTION_DAYS: "1d:200", HISTORY_CANDLES: "200" }, [], false).retention.candleDays).toEqual({ "1d": 200 });
  });
});
