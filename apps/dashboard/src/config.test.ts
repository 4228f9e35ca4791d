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
});
