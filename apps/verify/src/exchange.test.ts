import ccxt from "ccxt";
import { UserFacingError } from "@candlekeep/core";
import { ExchangeBalancesError, ccxtAccount, connectExchange, openExchangeAccount, UnknownExchangeError } from "./exchange";
import { CHECK_NAMES, type CheckName } from "./config";
import { TEST_API_KEY, TEST_SECRET, stubbedBinance } from "./fixtures/binance";

const KEYS = { apiKey: TEST_API_KEY, secret: TEST_SECRET };

async function failureOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof Error) return error;
    throw new Error(`rejected with a non-error: ${String(error)}`);
  }
  throw new Error("expected a failure");
}

describe("reading a live account's balances through ccxt", () => {
  it("gives each currency's total from binance's recorded account, leaving out the ones it holds none of, with one signed read", async () => {
    const stub = stubbedBinance();
    expect(await ccxtAccount(stub.exchange).balances()).toEqual([
      { currency: "LTC", total: 0.919741 },
      { currency: "ETH", total: 0.02229833 },
    ]);
    expect(stub.requests).toEqual(["GET /api/v3/account"]);
    expect(stub.headers[0]?.["X-MBX-APIKEY"]).toBe(TEST_API_KEY);
  });

  it("turns an authentication error that echoes the key into one line naming the exchange and the reason, without the key or secret", async () => {
    const stub = stubbedBinance(() => {
      throw new ccxt.AuthenticationError(`binance {"code":-2015,"msg":"Invalid API-key, IP, or permissions for action."} apiKey=${TEST_API_KEY}\nsecret=${TEST_SECRET}`);
    });
    const error = await failureOf(ccxtAccount(stub.exchange).balances());
    expect(error).toBeInstanceOf(ExchangeBalancesError);
    expect(error.message).toBe(
      'binance fetchBalance failed: AuthenticationError: binance {"code":-2015,"msg":"Invalid API-key, IP, or permissions for action."} apiKey=*** secret=*** (check EXCHANGE_API_KEY and EXCHANGE_API_SECRET: a key with read permission is enough)',
    );
    expect(error.message).not.toContain(TEST_API_KEY);
    expect(error.message).not.toContain(TEST_SECRET);
  });

  it("names a network failure by its ccxt class and masks the request's signature", async () => {
    const stub = stubbedBinance(() => {
      throw new ccxt.RequestTimeout("binance GET https://api.binance.com/api/v3/account?timestamp=1701856395927&signature=8f2d1c0b9a request timed out (10000 ms)");
    });
    const error = await failureOf(ccxtAccount(stub.exchange).balances());
    expect(error.message).toBe("binance fetchBalance failed: RequestTimeout: binance GET https://api.binance.com/api/v3/account?timestamp=1701856395927&signature=*** request timed out (10000 ms)");
  });

  it("keeps an exchange's long error page to one short line", async () => {
    const stub = stubbedBinance(() => {
      throw new ccxt.ExchangeNotAvailable(`binance 503 <html>\n${"<p>maintenance</p>\n".repeat(100)}</html>`);
    });
    const { message } = await failureOf(ccxtAccount(stub.exchange).balances());
    expect(message).not.toContain("\n");
    expect(message.length).toBeLessThan(400);
    expect(message).toMatch(/^binance fetchBalance failed: ExchangeNotAvailable: binance 503 <html> <p>maintenance<\/p> .*…$/);
  });
});

describe("when verify connects to the exchange", () => {
  const config = (overrides: Partial<{ tradingMode: "paper" | "live"; exchange: string; exchangeKeys: typeof KEYS | undefined; checks: CheckName[] }> = {}) => ({
    tradingMode: "live" as const,
    exchange: "binance",
    exchangeKeys: KEYS,
    checks: [...CHECK_NAMES],
    ...overrides,
  });

  it("connects only for a live account on a real exchange with both keys, when the books check runs", async () => {
    expect(await openExchangeAccount(config({ tradingMode: "paper" }))).toBeUndefined();
    expect(await openExchangeAccount(config({ exchange: "sim" }))).toBeUndefined();
    expect(await openExchangeAccount(config({ exchangeKeys: undefined }))).toBeUndefined();
    expect(await openExchangeAccount(config({ checks: ["connection", "coverage"] }))).toBeUndefined();
    const account = await openExchangeAccount(config());
    expect(account?.exchange).toBe("binance");
    await account?.close();
  });

  it("builds the exchange with the keys and ccxt's rate limiter, sending nothing yet", async () => {
    const exchange = await connectExchange("binance", KEYS);
    expect({ id: exchange.id, enableRateLimit: exchange.enableRateLimit, apiKey: exchange.apiKey, secret: exchange.secret }).toEqual({ id: "binance", enableRateLimit: true, ...KEYS });
    expect(exchange.markets).toBeUndefined();
    await exchange.close();
  });

  it("refuses an EXCHANGE ccxt does not know with a message saying what to set, and without the keys", async () => {
    const error = await failureOf(openExchangeAccount(config({ exchange: "notanexchange" })));
    expect(error).toBeInstanceOf(UnknownExchangeError);
    expect(error).toBeInstanceOf(UserFacingError);
    expect(error.message).toBe('EXCHANGE "notanexchange" is not an exchange ccxt supports, so verify cannot read the live account\'s balances. Set EXCHANGE to the bot\'s exchange id (e.g. binance, kraken, coinbase).');
  });
});
