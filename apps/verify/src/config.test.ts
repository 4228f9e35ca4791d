import { InvalidSettingsError, SIM_DEFAULT_SYMBOLS } from "@candlekeep/core";
import { DEFAULT_RETRY } from "@candlekeep/db";
import { loadConfig } from "./config";

function problems(env: Record<string, string>, argv: string[]): string[] {
  try {
    loadConfig(env, argv, false);
  } catch (error) {
    if (error instanceof InvalidSettingsError) return error.problems;
    throw error;
  }
  throw new Error("expected InvalidSettingsError");
}

describe("loadConfig", () => {
  it("defaults to the embedded database, the simulated exchange, every check and the documented thresholds", () => {
    const config = loadConfig({}, [], false);
    expect(config).toEqual({
      database: { url: undefined, readUrl: undefined, caCert: undefined, dataDir: `${process.cwd()}/.candlekeep`, retry: DEFAULT_RETRY, migrationsDir: undefined, schemaPath: undefined },
      exchange: "sim",
      exchangeKeys: undefined,
      tradingMode: "paper",
      quoteCurrency: "USDT",
      symbols: undefined,
      symbolsFromFlag: false,
      timeframes: ["15m", "1h", "4h", "1d"],
      checks: ["connection", "migrations", "schema", "roundtrip", "coverage", "history", "activity", "books", "storage"],
      staleAfterPeriods: 2,
      gapWindowCandles: 96,
      activityMinutes: 15,
      unsettledMinutes: 10,
      storageBudgetBytes: undefined,
      output: "table",
      fullAudit: false,
      log: { level: "info", format: "json" },
    });
    expect(SIM_DEFAULT_SYMBOLS).toHaveLength(20);
  });

  it("reads the bot's shared settings and lets flags override SYMBOLS", () => {
    const env = { DATABASE_URL: "postgresql://u:p@db:5432/ck", EXCHANGE: "Binance", SYMBOLS: "top:50", TIMEFRAMES: "1h,15m", LOG_FORMAT: "pretty", TRADING_MODE: "live", QUOTE_CURRENCY: "usdc" };
    const fromEnv = loadConfig(env, [], true);
    expect(fromEnv).toMatchObject({ exchange: "binance", tradingMode: "live", quoteCurrency: "USDC", symbols: { kind: "top", count: 50 }, symbolsFromFlag: false, timeframes: ["15m", "1h"], log: { format: "pretty" } });
    expect(fromEnv.database.url).toBe("postgresql://u:p@db:5432/ck");

    const argv = ["--", "--json", "--only", "coverage,schema", "--symbols", "btc/usdt, ETH/USDT", "--stale-after=3", "--gap-window", "10", "--activity-minutes", "30", "--unsettled-minutes", "60", "--retries", "0", "--full-audit"];
    expect(loadConfig(env, argv, false)).toMatchObject({
      output: "json",
      fullAudit: true,
      checks: ["connection", "schema", "coverage"],
      symbols: { kind: "list", symbols: ["BTC/USDT", "ETH/USDT"] },
      symbolsFromFlag: true,
      staleAfterPeriods: 3,
      gapWindowCandles: 10,
      activityMinutes: 30,
      unsettledMinutes: 60,
      database: { retry: { retries: 0, initialDelayMs: DEFAULT_RETRY.initialDelayMs } },
    });
  });

  it("takes the live account's keys only when both EXCHANGE_API_KEY and EXCHANGE_API_SECRET are set (empty means unset)", () => {
    const live = { EXCHANGE: "binance", TRADING_MODE: "live" };
    expect(loadConfig({ ...live, EXCHANGE_API_KEY: " key-4f9a2c ", EXCHANGE_API_SECRET: "secret-8d1e7b" }, [], false).exchangeKeys).toEqual({ apiKey: "key-4f9a2c", secret: "secret-8d1e7b" });
    expect(loadConfig({ ...live, EXCHANGE_API_KEY: "key-4f9a2c" }, [], false).exchangeKeys).toBeUndefined();
    expect(loadConfig({ ...live, EXCHANGE_API_KEY: "key-4f9a2c", EXCHANGE_API_SECRET: "" }, [], false).exchangeKeys).toBeUndefined();
  });

  it("names a key of only spaces without echoing it", () => {
    expect(problems({ EXCHANGE_API_KEY: "   ", EXCHANGE_API_SECRET: "secret-8d1e7b" }, [])).toEqual(["EXCHANGE_API_KEY is blank (only spaces); unset it or set the exchange account's API key"]);
  });

  it("leaves DATABASE_URL to the connection check, which reports a malformed one as a failed check", () => {
    expect(loadConfig({ DATABASE_URL: "mysql://nope" }, [], false).database.url).toBe("mysql://nope");
  });

  it("takes an empty DATABASE_URL as unset and names one of only spaces, as the bot does", () => {
    expect(loadConfig({ DATABASE_URL: "" }, [], false).database.url).toBeUndefined();
    expect(problems({ DATABASE_URL: "   " }, [])).toEqual([
      "DATABASE_URL is blank (only spaces); leave it empty or unset for the embedded database, or set it to postgresql://user:password@host:5432/dbname",
    ]);
  });

  it("reads DATABASE_READ_URL as the read replica's URL, an empty one as unset", () => {
    const primary = "postgresql://u:p@db:5432/ck";
    expect(loadConfig({ DATABASE_URL: primary, DATABASE_READ_URL: "postgresql://u:p@replica:5432/ck" }, [], false).database).toMatchObject({ url: primary, readUrl: "postgresql://u:p@replica:5432/ck" });
    expect(loadConfig({ DATABASE_URL: primary, DATABASE_READ_URL: "" }, [], false).database.readUrl).toBeUndefined();
  });

  it("refuses a malformed DATABASE_READ_URL with the URL validator's line naming it, never the password", () => {
    const found = problems({ DATABASE_URL: "postgresql://u:p@db:5432/ck", DATABASE_READ_URL: "postgresql://reader:s3cr@t-9f2@replica:5432/ck" }, []);
    expect(found).toEqual([expect.stringMatching(/^Invalid DATABASE_READ_URL: the password contains an unencoded '@'; percent-encode/)]);
    expect(found.join("\n")).not.toContain("s3cr");
    expect(problems({ DATABASE_URL: "postgresql://u:p@db:5432/ck", DATABASE_READ_URL: "  " }, [])).toEqual([
      "DATABASE_READ_URL is blank (only spaces); unset it to read from DATABASE_URL, or set it to the read replica's postgresql://user:password@host:5432/dbname",
    ]);
  });

  it("refuses DATABASE_READ_URL without DATABASE_URL: the embedded database has no replica", () => {
    expect(problems({ DATABASE_READ_URL: "postgresql://u:p@replica:5432/ck" }, [])).toEqual([
      "DATABASE_READ_URL is set but DATABASE_URL is not: a read replica belongs to the bot's PostgreSQL server (the embedded database has none); set DATABASE_URL to that server, or unset DATABASE_READ_URL",
    ]);
  });

  it("lists every bad setting and flag, one line each, without echoing values", () => {
    expect(problems({ LOG_LEVEL: "loud", TIMEFRAMES: "2m", TRADING_MODE: "demo" }, ["--only", "nope", "--stale-after", "x", "--gap-window", "0", "--bogus", "--symbols"])).toEqual([
      'unknown argument "--bogus"',
      "--symbols needs a value",
      "TIMEFRAMES has unknown 2m; use a comma list of 15m, 1h, 4h, 1d",
      "TRADING_MODE must be paper or live",
      "LOG_LEVEL must be one of error, warn, info, debug",
      "--only has unknown check nope; use one or more of connection, migrations, schema, roundtrip, coverage, history, activity, books, storage",
      "--stale-after must be a number",
      "--gap-window must be at least 1",
    ]);
  });

  it("reads DATABASE_STORAGE_BUDGET as a size and names a malformed one", () => {
    expect(loadConfig({ DATABASE_STORAGE_BUDGET: "10GB" }, [], false).storageBudgetBytes).toBe(10 * 1024 ** 3);
    expect(loadConfig({ DATABASE_STORAGE_BUDGET: "" }, [], false).storageBudgetBytes).toBeUndefined();
    expect(problems({ DATABASE_STORAGE_BUDGET: "10" }, [])).toEqual(["DATABASE_STORAGE_BUDGET needs a unit, such as 10GB or 500MB, not a bare number (B, kB, MB, GB, TB; 1 GB = 1024 MB)"]);
    expect(problems({ DATABASE_STORAGE_BUDGET: "ten gigabytes" }, [])).toEqual(["DATABASE_STORAGE_BUDGET must be a size such as 10GB or 500MB (B, kB, MB, GB, TB; 1 GB = 1024 MB)"]);
  });

  it("names --symbols when the flag holds a bad coin", () => {
    expect(problems({}, ["--symbols", "BTCUSDT"])).toEqual(["--symbols (SYMBOLS) has invalid symbol(s) BTCUSDT; use BASE/QUOTE like BTC/USDT"]);
  });
});
