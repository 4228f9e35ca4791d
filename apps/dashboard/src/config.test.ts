import { InvalidSettingsError } from "@candlekeep/core";
import { loadDashboardConfig } from "./config";

describe("the standalone dashboard's settings", () => {
  it("listens on 127.0.0.1:8081 without a token by default, with verify's thresholds", () => {
    const config = loadDashboardConfig({}, false);
    expect(config.server).toEqual({ host: "127.0.0.1", port: 8081, token: undefined });
    expect(config).toMatchObject({ exchange: "sim", staleAfterPeriods: 2, gapWindowCandles: 96, timeframes: ["15m", "1h", "4h", "1d"] });
  });

  it("rejects a short token without echoing it", () => {
    const attempt = () => loadDashboardConfig({ DASHBOARD_TOKEN: "hunter2", DASHBOARD_PORT: "99999" }, false);
    expect(attempt).toThrow(InvalidSettingsError);
    expect(attempt).toThrow(/DASHBOARD_TOKEN must be at least 16 characters/);
    expect(attempt).toThrow(/DASHBOARD_PORT must be at most 65535/);
    expect(attempt).not.toThrow(/hunter2/);
  });

  it("refuses a GAP_WINDOW_CANDLES above 5000, saying that the history audit covers older gaps", () => {
    expect(loadDashboardConfig({ GAP_WINDOW_CANDLES: "5000" }, false).gapWindowCandles).toBe(5000);
    const attempt = () => loadDashboardConfig({ GAP_WINDOW_CANDLES: "100000" }, false);
    expect(attempt).toThrow(InvalidSettingsError);
    expect(attempt).toThrow(
      "GAP_WINDOW_CANDLES must be at most 5000: every refresh counts that many candles of every series. Gaps older than that are found by the history audit (verify's history check) and shown when you hover a cell",
    );
  });

  it("reads DATABASE_STORAGE_BUDGET as a size, as verify does, and names a malformed one", () => {
    expect(loadDashboardConfig({}, false).storageBudgetBytes).toBeUndefined();
    expect(loadDashboardConfig({ DATABASE_STORAGE_BUDGET: "500MB" }, false).storageBudgetBytes).toBe(500 * 1024 ** 2);
    const attempt = () => loadDashboardConfig({ DATABASE_STORAGE_BUDGET: "500" }, false);
    expect(attempt).toThrow(InvalidSettingsError);
    expect(attempt).toThrow("DATABASE_STORAGE_BUDGET needs a unit, such as 10GB or 500MB, not a bare number (B, kB, MB, GB, TB; 1 GB = 1024 MB)");
  });

  it("resolves CANDLEKEEP_DATA_DIR from where the command was run, as the bot and verify do", () => {
    expect(loadDashboardConfig({ INIT_CWD: "/home/me/candlekeep" }, false).database.dataDir).toBe("/home/me/candlekeep/.candlekeep");
    expect(loadDashboardConfig({ INIT_CWD: "/home/me/candlekeep", CANDLEKEEP_DATA_DIR: "/var/lib/ck" }, false).database.dataDir).toBe("/var/lib/ck");
  });

  it("calls a malformed DATABASE_URL a settings problem, without the password", () => {
    const attempt = () => loadDashboardConfig({ DATABASE_URL: "postgresql://ck:p@ss@db/ck" }, false);
    expect(attempt).toThrow(InvalidSettingsError);
    expect(attempt).toThrow(/Invalid DATABASE_URL: the password contains an unencoded '@'/);
    expect(attempt).not.toThrow(/p@ss/);
  });

  it("takes DATABASE_READ_URL as the read replica to read, validated as DATABASE_URL is and never echoed", () => {
    const primary = "postgresql://ck:pw@db:5432/ck";
    expect(loadDashboardConfig({ DATABASE_URL: primary, DATABASE_READ_URL: "postgresql://ck:pw@replica:5432/ck" }, false).database).toMatchObject({ url: primary, readUrl: "postgresql://ck:pw@replica:5432/ck" });
    expect(loadDashboardConfig({ DATABASE_URL: primary, DATABASE_READ_URL: "" }, false).database.readUrl).toBeUndefined();
    const malformed = () => loadDashboardConfig({ DATABASE_URL: primary, DATABASE_READ_URL: "postgresql://ck:r3@d@replica/ck" }, false);
    expect(malformed).toThrow(/Invalid DATABASE_READ_URL: the password contains an unencoded '@'/);
    expect(malformed).not.toThrow(/r3@d/);
  });

  it("refuses DATABASE_READ_URL without DATABASE_URL: the embedded database has no replica", () => {
    const attempt = () => loadDashboardConfig({ DATABASE_READ_URL: "postgresql://ck:pw@replica:5432/ck" }, false);
    expect(attempt).toThrow(InvalidSettingsError);
    expect(attempt).toThrow(/DATABASE_READ_URL is set but DATABASE_URL is not: a read replica belongs to the bot's PostgreSQL server/);
  });
});
