import { UserFacingError, type Logger } from "@candlekeep/core";
import ccxt from "ccxt";
import { CcxtMarketData, UnknownExchangeError, UnsupportedTimeframeError, createCcxtExchange, createCcxtMarketData, toCandles } from "./ccxt";
import { TEST_API_KEY, TEST_SECRET, exchangeInfoWith, failingThen, recorded, spotMarketLike, stubbedBinance, tickerLike } from "./fixtures/binance";
import { answerError } from "./fixtures/stub";
import { ExchangeCallError, SymbolNotListedError } from "./retry";

const HOUR = 3_600_000;
const [firstKline, secondKline, thirdKline] = recorded.fetchOHLCV.httpResponse;

function recordingLogger(): Logger & { warnings: { message: string; meta: Record<string, unknown> | undefined }[] } {
  const warnings: { message: string; meta: Record<string, unknown> | undefined }[] = [];
  return { error: () => undefined, info: () => undefined, debug: () => undefined, warn: (message, meta) => warnings.push({ message, meta }), warnings };
}

function marketData(options: { withKeys?: boolean; now?: number } = {}) {
  const stub = stubbedBinance({ withKeys: options.withKeys });
  const logger = recordingLogger();
  const waits: number[] = [];
  const market = new CcxtMarketData(stub.exchange, {
    logger,
    retryDelaysMs: [100, 200, 400],
    sleep: async (ms) => {
      waits.push(ms);
    },
    now: () => options.now ?? Date.UTC(2030, 0, 1),
    secrets: options.withKeys ? [TEST_API_KEY, TEST_SECRET] : [],
  });
  return { ...stub, market, logger, waits };
}

describe("createCcxtMarketData", () => {
  it("names an unknown exchange and points to ccxt's list", async () => {
    const attempt = createCcxtMarketData({ exchangeId: "notanexchange", logger: recordingLogger() });
    await expect(attempt).rejects.toBeInstanceOf(UnknownExchangeError);
    await expect(attempt).rejects.toBeInstanceOf(UserFacingError);
    await expect(attempt).rejects.toThrow(/"notanexchange" is not an exchange ccxt supports.*docs\.ccxt\.com/);
  });

  it("creates the exchange with ccxt's rate limiter on and the keys set", async () => {
    const exchange = await createCcxtExchange({ exchangeId: "kraken", apiKey: "k-123456", secret: "s-654321" });
    expect(exchange.id).toBe("kraken");
    expect(exchange.enableRateLimit).toBe(true);
    expect(exchange.apiKey).toBe("k-123456");
    const market = await createCcxtMarketData({ exchangeId: "binance", logger: recordingLogger() });
    expect(market.id).toBe("binance");
  });
});

describe("CcxtMarketData over recorded binance responses", () => {
  it("parses a real klines response into candles, all closed once their hour has passed", async () => {
    const { market, calls } = marketData({ now: Date.UTC(2030, 0, 1) });
    const candles = await market.fetchCandles("BTC/USDT", "1h", 1706628191000, 3);
    expect(candles).toEqual(
      recorded.fetchOHLCV.parsedResponse.map(([openTime, open, high, low, close, volume]) => ({ openTime, open, high, low, close, volume, isClosed: true })),
    );
    const klines = calls.find((call) => call.path === "/api/v3/klines");
    expect(klines?.query.get("symbol")).toBe("BTCUSDT");
    expect(klines?.query.get("interval")).toBe("1h");
    expect(klines?.query.get("startTime")).toBe("1706628191000");
  });

  it("marks the candle whose hour contains the exchange time as forming", async () => {
    const { market } = marketData({ now: 1706637600000 + HOUR / 2 });
    const candles = await market.fetchCandles("BTC/USDT", "1h", undefined, 3);
    expect(candles.map((c) => c.isClosed)).toEqual([true, true, false]);
  });

  it("parses a real ticker", async () => {
    const { market } = marketData();
    const expected = recorded.fetchTicker.parsedResponse;
    await expect(market.fetchTicker("BTC/USDT")).resolves.toEqual({
      symbol: "BTC/USDT",
      last: expected.last,
      bid: expected.bid,
      ask: expected.ask,
      quoteVolume: expected.quoteVolume,
      timestamp: expected.timestamp,
    });
  });

  it("ranks listed spot markets by 24h quote volume", async () => {
    const { market } = marketData();
    await expect(market.topSymbols(2, "USDT")).resolves.toEqual(["ETH/USDT", "BTC/USDT"]);
    await expect(market.topSymbols(1, "USDT")).resolves.toEqual(["ETH/USDT"]);
  });

  it("ranks only active spot pairs quoted in the account's currency: pairs in lira, FDUSD or BTC, and a delisted pair, are left out", async () => {
    const { market, route } = marketData();
    route("GET /api/v3/exchangeInfo", () =>
      exchangeInfoWith([
        spotMarketLike({ base: "USDT", quote: "TRY" }),
        spotMarketLike({ base: "BTC", quote: "FDUSD" }),
        spotMarketLike({ base: "ETH", quote: "BTC" }),
        spotMarketLike({ base: "LUNA", quote: "USDT", status: "BREAK" }),
      ]),
    );
    // Volumes in their own quote currency: the lira pair's dwarfs every USDT pair's.
    route("GET /api/v3/ticker/24hr", () => [
      ...recorded.fetchTickers.httpResponse,
      tickerLike("USDTTRY", { lastPrice: 41.2, quoteVolume: 95_000_000_000 }),
      tickerLike("BTCFDUSD", { lastPrice: 118_400, quoteVolume: 3_100_000_000 }),
      tickerLike("ETHBTC", { lastPrice: 0.0323, quoteVolume: 4_800 }),
      tickerLike("LUNAUSDT", { lastPrice: 0.0001, quoteVolume: 9_000_000_000 }),
    ]);
    await expect(market.topSymbols(10, "USDT")).resolves.toEqual(["ETH/USDT", "BTC/USDT"]);
    await expect(market.topSymbols(10, "FDUSD")).resolves.toEqual(["BTC/FDUSD"]);
    await expect(market.topSymbols(10, "EUR")).resolves.toEqual([]);
  });

  it("reports symbols the exchange does not list", async () => {
    const { market } = marketData();
    await expect(market.unknownSymbols(["BTC/USDT", "FOO/USDT", "LTC/USDT", "BTC/EUR"])).resolves.toEqual(["FOO/USDT", "BTC/EUR"]);
  });

  it("reports a pair the exchange still lists but no longer trades (delisted) as not listed", async () => {
    const { market, route } = marketData();
    route("GET /api/v3/exchangeInfo", () => exchangeInfoWith([spotMarketLike({ base: "LUNA", quote: "USDT", status: "BREAK" })]));
    await expect(market.unknownSymbols(["BTC/USDT", "LUNA/USDT"])).resolves.toEqual(["LUNA/USDT"]);
  });
});

describe("CcxtMarketData on an exchange without some timeframes", () => {
  const FOUR_HOURS = 4 * HOUR;
  /** 2024-01-30 16:00 UTC, the first recorded kline: a 4h boundary. */
  const bucket = 1706630400000;
  /** The hour after the recorded three, continuing them (the recording has three hours only). */
  const fourthKline = [bucket + 3 * HOUR, "43361.11000000", "43520.00000000", "43250.50000000", "43402.09000000", "17.04120000", bucket + 4 * HOUR - 1, "739731.62447310", 3311, "8.50022000", "369036.14130660", "0"];

  /** binance offering only gemini's timeframes (ccxt's `timeframes`): no 4h, nor 2h; 1h and 6h. */
  function withoutFourHours(options: { now: number; hours: readonly unknown[][] }) {
    const setup = marketData({ now: options.now });
    const gemini = Object.keys(new ccxt.gemini().timeframes);
    setup.exchange.timeframes = Object.fromEntries(Object.entries(setup.exchange.timeframes).filter(([timeframe]) => gemini.includes(timeframe)));
    setup.route("GET /api/v3/klines", (call) => (call.query.get("interval") === "1h" ? options.hours : []));
    return setup;
  }

  it("builds closed 4h candles from the exchange's 1h candles, through ccxt's own request and parsing", async () => {
    const { market, calls } = withoutFourHours({ now: bucket + FOUR_HOURS + HOUR, hours: [...recorded.fetchOHLCV.httpResponse, fourthKline] });
    expect(market.builtTimeframes(["15m", "1h", "4h", "1d"])).toEqual([{ timeframe: "4h", from: "1h" }]);
    const hours = [...recorded.fetchOHLCV.parsedResponse, [bucket + 3 * HOUR, 43361.11, 43520, 43250.5, 43402.09, 17.0412]];
    await expect(market.fetchCandles("BTC/USDT", "4h", bucket, 1)).resolves.toEqual([
      {
        openTime: bucket,
        open: 43519.34,
        high: Math.max(...hours.map((h) => h[2] ?? 0)),
        low: Math.min(...hours.map((h) => h[3] ?? Infinity)),
        close: 43402.09,
        volume: hours.reduce((sum, h) => sum + (h[5] ?? 0), 0),
        isClosed: true,
      },
    ]);
    const klines = calls.filter((call) => call.path === "/api/v3/klines");
    expect(klines.map((call) => [call.query.get("interval"), call.query.get("startTime"), call.query.get("limit")])).toEqual([["1h", String(bucket), "4"]]);
  });

  it("keeps a built candle forming until its period ends, and leaves it out once ended with an hour missing", async () => {
    const recordedHours = recorded.fetchOHLCV.httpResponse;
    const forming = withoutFourHours({ now: bucket + 3 * HOUR - 1, hours: recordedHours });
    await expect(forming.market.fetchCandles("BTC/USDT", "4h", undefined, 1)).resolves.toEqual([expect.objectContaining({ openTime: bucket, close: 43361.11, isClosed: false })]);
    const ended = withoutFourHours({ now: bucket + FOUR_HOURS + HOUR, hours: recordedHours });
    await expect(ended.market.fetchCandles("BTC/USDT", "4h", bucket, 1)).resolves.toEqual([]);
  });

  it("refuses a timeframe the exchange neither has nor can build, in one line naming it and what to change", () => {
    const { market, exchange } = marketData();
    exchange.timeframes = { "10m": "10m", "1h": "1h", "1d": "1d" };
    expect(() => market.builtTimeframes(["15m", "1h"])).toThrow(UnsupportedTimeframeError);
    expect(() => market.builtTimeframes(["15m", "1h"])).toThrow(
      /^binance has no 15m candles, nor a shorter timeframe that divides 15m to build them from \(it has 10m, 1h, 1d\); remove 15m from TIMEFRAMES\.$/,
    );
  });
});

describe("CcxtMarketData fault handling", () => {
  it("retries network errors and rate limits with backoff, then returns the data", async () => {
    const { market, route, waits, logger } = marketData();
    route(
      "GET /api/v3/klines",
      failingThen([new ccxt.NetworkError("binance GET https://api.binance.com/api/v3/klines ECONNRESET"), new ccxt.RateLimitExceeded("binance 429 Too Many Requests")], () => recorded.fetchOHLCV.httpResponse),
    );
    const candles = await market.fetchCandles("BTC/USDT", "1h", 1706628191000, 3);
    expect(candles).toHaveLength(3);
    expect(waits).toEqual([100, 200]);
    expect(logger.warnings.map((w) => w.meta?.attempt)).toEqual([1, 2]);
  });

  it("gives up after the last retry with an error naming the exchange, call, symbol and reason", async () => {
    const { market, route, waits } = marketData();
    route("GET /api/v3/klines", () => {
      throw new ccxt.RequestTimeout("binance GET https://api.binance.com/api/v3/klines request timed out (10000 ms)");
    });
    const attempt = market.fetchCandles("BTC/USDT", "15m", undefined, 10);
    await expect(attempt).rejects.toBeInstanceOf(ExchangeCallError);
    await expect(attempt).rejects.toThrow(/^binance fetchOHLCV BTC\/USDT 15m failed after 4 attempts: RequestTimeout: .*timed out/);
    expect(waits).toEqual([100, 200, 400]);
  });

  it("does not retry an error that will not go away", async () => {
    const { market, route, waits } = marketData();
    route("GET /api/v3/ticker/24hr", () => {
      throw new ccxt.BadSymbol("binance does not have market symbol BTC/USDT");
    });
    await expect(market.fetchTicker("BTC/USDT")).rejects.toThrow(/^binance fetchTicker BTC\/USDT failed: BadSymbol: /);
    expect(waits).toEqual([]);
  });

  it("takes binance's answer for a pair it no longer lists (-1121 Invalid symbol.) as a delisting, asked once; a timeout is no delisting", async () => {
    const { market, route, calls, waits } = marketData();
    // binance's documented error body; ccxt's binance maps code -1121 to BadSymbol (its exceptions' exact map).
    route("GET /api/v3/klines", answerError(400, { code: -1121, msg: "Invalid symbol." }));
    const attempt = market.fetchCandles("BTC/USDT", "15m", undefined, 10);
    await expect(attempt).rejects.toBeInstanceOf(SymbolNotListedError);
    await expect(attempt).rejects.toMatchObject({ exchange: "binance", operation: "fetchOHLCV", symbol: "BTC/USDT", transient: false });
    await expect(attempt).rejects.toThrow(/^binance fetchOHLCV BTC\/USDT 15m failed: BadSymbol: binance .*Invalid symbol/);
    expect(calls.filter((call) => call.path === "/api/v3/klines")).toHaveLength(1);
    expect(waits).toEqual([]);

    route("GET /api/v3/klines", () => {
      throw new ccxt.RequestTimeout("binance GET https://api.binance.com/api/v3/klines request timed out (10000 ms)");
    });
    const timedOut: unknown = await market.fetchCandles("BTC/USDT", "15m", undefined, 10).catch((error: unknown) => error);
    expect(timedOut).toBeInstanceOf(ExchangeCallError);
    expect(timedOut).not.toBeInstanceOf(SymbolNotListedError);
  });

  it("never puts the API key or secret, or a request signature, in an error or a log line", async () => {
    const { market, route, logger } = marketData({ withKeys: true });
    const echo = `binance GET https://api.binance.com/api/v3/account?timestamp=1&signature=9f86d081884c7d65&apiKey=${TEST_API_KEY} secret=${TEST_SECRET} timed out`;
    route("GET /api/v3/klines", () => {
      throw new ccxt.RequestTimeout(echo);
    });
    const error: unknown = await market.fetchCandles("BTC/USDT", "1h", undefined, 3).catch((e: unknown) => e);
    const text = `${error instanceof Error ? error.message : String(error)} ${JSON.stringify(logger.warnings)}`;
    expect(text).toContain("binance fetchOHLCV");
    expect(text).not.toContain(TEST_API_KEY);
    expect(text).not.toContain(TEST_SECRET);
    expect(text).not.toContain("9f86d081884c7d65");
  });

  it("sorts out-of-order rows and keeps the latest copy of a repeated candle", async () => {
    const { market, route } = marketData({ now: Date.UTC(2030, 0, 1) });
    const updatedThird = [...(thirdKline ?? [])];
    updatedThird[4] = "43400.00000000";
    route("GET /api/v3/klines", () => [thirdKline, firstKline, secondKline, firstKline, updatedThird]);
    const candles = await market.fetchCandles("BTC/USDT", "1h", undefined, 10);
    expect(candles.map((c) => c.openTime)).toEqual([1706630400000, 1706634000000, 1706637600000]);
    expect(candles[2]?.close).toBe(43400);
  });

  it("returns no candles for an empty response", async () => {
    const { market, route } = marketData();
    route("GET /api/v3/klines", () => []);
    await expect(market.fetchCandles("BTC/USDT", "4h", undefined, 5)).resolves.toEqual([]);
  });
});

describe("toCandles", () => {
  const rows: [number, number, number, number, number, number][] = [0, 1, 2, 3].map((i) => [i * HOUR, 10 + i, 12 + i, 9 + i, 11 + i, 100]);

  it("keeps candles at or after `since`, the first `limit` of them", () => {
    expect(toCandles(rows, HOUR, HOUR + 1, 5, 10 * HOUR).map((c) => c.openTime)).toEqual([2 * HOUR, 3 * HOUR]);
    expect(toCandles(rows, HOUR, HOUR, 2, 10 * HOUR).map((c) => c.openTime)).toEqual([HOUR, 2 * HOUR]);
  });

  it("keeps the latest `limit` candles without `since`", () => {
    expect(toCandles(rows, HOUR, undefined, 2, 10 * HOUR).map((c) => c.openTime)).toEqual([2 * HOUR, 3 * HOUR]);
  });

  it("drops rows with missing prices", () => {
    const broken: [number | undefined, number | undefined, number, number, number, number][] = [
      [0, undefined, 1, 1, 1, 1],
      [undefined, 1, 1, 1, 1, 1],
    ];
    expect(toCandles([...broken, ...rows.slice(1, 2)], HOUR, undefined, 5, 10 * HOUR).map((c) => c.openTime)).toEqual([HOUR]);
  });
});
