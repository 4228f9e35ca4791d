import { InvalidSettingsError, parseSettings, presentSettings, resolveUserPath, sharedSettingsSchema } from "./settings";

function problems(env: Record<string, string>): string[] {
  try {
    parseSettings(sharedSettingsSchema, env);
  } catch (error) {
    if (error instanceof InvalidSettingsError) return error.problems;
    throw error;
  }
  return [];
}

describe("shared settings", () => {
  it("uses the documented defaults when nothing is set", () => {
    const settings = parseSettings(sharedSettingsSchema, {});
    expect(settings).toMatchObject({
      DATABASE_POOL_MAX: 30,
      CANDLEKEEP_DATA_DIR: "./.candlekeep",
      AUTO_MIGRATE: true,
      EXCHANGE: "sim",
      TIMEFRAMES: ["15m", "1h", "4h", "1d"],
      TRADING_MODE: "paper",
      QUOTE_CURRENCY: "USDT",
      LOG_LEVEL: "info",
    });
    expect(settings.DATABASE_URL).toBeUndefined();
    expect(settings.SYMBOLS).toBeUndefined();
  });

  it("parses symbol lists and top:N", () => {
    expect(parseSettings(sharedSettingsSchema, { SYMBOLS: "btc/usdt, ETH/USDT,BTC/USDT" }).SYMBOLS).toEqual({ kind: "list", symbols: ["BTC/USDT", "ETH/USDT"] });
    expect(parseSettings(sharedSettingsSchema, { SYMBOLS: "top:50" }).SYMBOLS).toEqual({ kind: "top", count: 50 });
  });

  it("names every bad setting on its own line", () => {
    expect(problems({ SYMBOLS: " , ", TIMEFRAMES: "15m,5m", DATABASE_POOL_MAX: "lots", AUTO_MIGRATE: "maybe", EXCHANGE: "Bin ance!" })).toEqual([
      "DATABASE_POOL_MAX must be a number",
      "AUTO_MIGRATE must be true or false",
      "EXCHANGE must be sim or a ccxt exchange id such as binance",
      "SYMBOLS is empty; list coins like BTC/USDT,ETH/USDT or use top:20",
      "TIMEFRAMES has unknown 5m; use a comma list of 15m, 1h, 4h, 1d",
    ]);
  });

  it("names SYMBOLS or TIMEFRAMES set to nothing, while other empty settings mean unset", () => {
    expect(problems({ SYMBOLS: "", TIMEFRAMES: "" })).toEqual(["SYMBOLS is empty; list coins like BTC/USDT,ETH/USDT or use top:20", "TIMEFRAMES is empty; use a comma list of 15m, 1h, 4h, 1d"]);
    const settings = parseSettings(sharedSettingsSchema, { DATABASE_URL: "", EXCHANGE: "", LOG_FORMAT: "" });
    expect([settings.DATABASE_URL, settings.EXCHANGE, settings.LOG_FORMAT]).toEqual([undefined, "sim", undefined]);
    expect(presentSettings({ SYMBOLS: "", EXCHANGE: "", QUOTE_CURRENCY: undefined, TIMEFRAMES: "1h" })).toEqual({ SYMBOLS: "", TIMEFRAMES: "1h" });
  });

  it("rejects malformed symbols", () => {
    expect(problems({ SYMBOLS: "BTCUSDT,ETH/USDT" })).toEqual(["SYMBOLS has invalid symbol(s) BTCUSDT; use BASE/QUOTE like BTC/USDT"]);
  });
});

describe("resolveUserPath", () => {
  it("resolves relative paths against the directory the command was run from", () => {
    expect(resolveUserPath("./.candlekeep", { INIT_CWD: "/home/me/candlekeep" })).toBe("/home/me/candlekeep/.candlekeep");
    expect(resolveUserPath("/var/lib/ck", { INIT_CWD: "/home/me" })).toBe("/var/lib/ck");
    expect(resolveUserPath("data", {})).toBe(`${process.cwd()}/data`);
  });
});
