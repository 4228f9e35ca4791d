import { createServerTestDatabase, type TestDatabase } from "@candlekeep/db/testing";
import { runBotToExit } from "../testing/process";

/**
 * Reliability, bad input 8: configuration errors at start-up of the real bot
 * process. Each is one clear line and exit code 2 (bad configuration), before
 * anything is traded or written.
 */

// A database that cannot be reached: a configuration error must be found without it.
const UNREACHABLE = { DATABASE_URL: "postgresql://bot@127.0.0.1:1/candlekeep" };

describe("configuration errors at start-up (real bot process)", () => {
  it.each([
    ["empty symbol list", { SYMBOLS: " , ," }, "SYMBOLS is empty; list coins like BTC/USDT,ETH/USDT or use top:20"],
    ["SYMBOLS set to nothing", { SYMBOLS: "" }, "SYMBOLS is empty; list coins like BTC/USDT,ETH/USDT or use top:20"],
    ["SYMBOLS set to spaces", { SYMBOLS: "   " }, "SYMBOLS is empty; list coins like BTC/USDT,ETH/USDT or use top:20"],
    ["TIMEFRAMES set to nothing", { TIMEFRAMES: "" }, "TIMEFRAMES is empty; use a comma list of 15m, 1h, 4h, 1d"],
    ["malformed symbol", { SYMBOLS: "BTC/USDT,btc-usdt" }, "SYMBOLS has invalid symbol(s) BTC-USDT; use BASE/QUOTE like BTC/USDT"],
    ["invalid timeframe", { TIMEFRAMES: "15m,7m" }, "TIMEFRAMES has unknown 7m; use a comma list of 15m, 1h, 4h, 1d"],
    ["empty timeframe list", { TIMEFRAMES: "," }, "TIMEFRAMES is empty; use a comma list of 15m, 1h, 4h, 1d"],
    ["negative risk", { RISK_PER_TRADE: "-0.01" }, "RISK_PER_TRADE must be greater than 0"],
    ["non-numeric risk", { RISK_PER_TRADE: "one percent" }, "RISK_PER_TRADE must be a number"],
    ["exchange id that cannot be one", { EXCHANGE: "binance; rm -rf /" }, "EXCHANGE must be sim or a ccxt exchange id such as binance"],
  ])("%s: one clear line, exit code 2", async (_name, env, expected) => {
    const result = await runBotToExit({ ...UNREACHABLE, ...env });
    expect(result.code).toBe(2);
    expect(result.problems).toEqual([`  - ${expected}`]);
    expect(result.output).not.toMatch(/\n\s+at /);
  });

  it("unknown exchange id: one clear line pointing to ccxt's list, exit code 2, before the database is touched", async () => {
    const result = await runBotToExit({ ...UNREACHABLE, EXCHANGE: "notanexchange" });
    expect(result.code).toBe(2);
    expect(result.errors).toEqual([
      'EXCHANGE "notanexchange" is not an exchange ccxt supports. Use "sim" or an id from https://docs.ccxt.com/#/Exchange-Markets (e.g. binance, kraken, coinbase).',
    ]);
    expect(result.output).not.toContain("Cannot reach PostgreSQL");
  });

  it("LOG_FORMAT=pretty into a pipe: readable lines without colour codes", async () => {
    const result = await runBotToExit({ ...UNREACHABLE, LOG_FORMAT: "pretty" });
    expect(result.output).toMatch(/^\d\d:\d\d:\d\d\.\d{3} error \[bot\] Cannot reach PostgreSQL at 127\.0\.0\.1:1/m);
    expect(result.output).not.toContain("\u001b[");
  });

  describe("with a database", () => {
    let testDb: TestDatabase;
    beforeAll(async () => {
      testDb = await createServerTestDatabase();
    });
    afterAll(async () => {
      await testDb.drop();
    });

    const SIM_LISTS = "the simulated exchange lists BTC, ETH, SOL, BNB, XRP, ADA, DOGE, AVAX, DOT, LINK, MATIC, LTC, TRX, ATOM, UNI, XLM, NEAR, APT, ARB, OP and S021 … S5000, each quoted in USDT (QUOTE_CURRENCY)";

    it.each([
      ["a contract symbol", "BTC/USDT,BTC/USDT:USDT", "BTC/USDT:USDT"],
      ["a coin the sim does not have", "FOO/BAR", "FOO/BAR"],
      ["the same in lowercase", "foo/bar,btc/usdt", "FOO/BAR"],
      ["a listed coin in another quote currency than the account's", "ETH/USDT,BTC/USDC", "BTC/USDC"],
      ["a synthetic coin beyond the listing", "S5001/USDT", "S5001/USDT"],
    ])("symbols the sim does not list (%s): one line naming them and what it lists, exit code 2, nothing traded", async (_name, symbols, unlisted) => {
      const result = await runBotToExit({ DATABASE_URL: testDb.url ?? "", CANDLEKEEP_DATA_DIR: testDb.dataDir, SYMBOLS: symbols });
      expect(result.code).toBe(2);
      expect(result.errors).toEqual([`sim does not list ${unlisted}. Fix SYMBOLS: ${SIM_LISTS}.`]);
      expect(result.output).not.toContain('"message":"tick"');
      expect(result.output).not.toMatch(/\n\s+at /);
    });
  });
});
