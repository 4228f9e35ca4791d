import { UserFacingError, type Logger } from "@candlekeep/core";
import ccxt from "ccxt";
import { TEST_API_KEY, TEST_SECRET, failingThen, fullMarketOrderResponse, recorded, stubbedBinance } from "./fixtures/binance";
import { LiveBroker, MissingApiKeysError } from "./live";
import { ExchangeCallError } from "./retry";

const recordedOrder = recorded.marketOrderFilled.httpResponse;
function recordingLogger(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  return { error: () => undefined, info: () => undefined, debug: () => undefined, warn: (message) => warnings.push(message), warnings };
}

function liveBroker() {
  const stub = stubbedBinance({ withKeys: true });
  const logger = recordingLogger();
  const broker = new LiveBroker({ exchange: stub.exchange, logger, retryDelaysMs: [10, 20], sleep: async () => undefined, now: () => 1679571174000 });
  const orderPosts = () => stub.calls.filter((call) => call.method === "POST" && call.path === "/api/v3/order");
  return { ...stub, broker, logger, orderPosts };
}

describe("LiveBroker over recorded binance responses", () => {
  it("places a market order with our clientOrderId and reports the recorded fill", async () => {
    const { broker, route, orderPosts, logger } = liveBroker();
    route("POST /api/v3/order", () => recordedOrder);
    const fill = await broker.marketOrder({ symbol: "LTC/USDT", side: "sell", amount: 0.1, clientOrderId: recordedOrder.clientOrderId });
    expect(fill).toEqual({ orderId: "3397148653", symbol: "LTC/USDT", side: "sell", amount: 0.1, price: 90.8, fee: 0, timestamp: 1679571174472 });
    const sent = new URLSearchParams(orderPosts()[0]?.body);
    expect(sent.get("symbol")).toBe("LTCUSDT");
    expect(sent.get("type")).toBe("MARKET");
    expect(sent.get("side")).toBe("SELL");
    expect(sent.get("quantity")).toBe("0.1");
    expect(sent.get("newClientOrderId")).toBe(recordedOrder.clientOrderId);
    // This response carries no fills, hence no fee: that is said, not hidden.
    expect(logger.warnings).toEqual(["the exchange reported no fee for the order; recording 0"]);
  });

  it("takes the fee from the order's fills", async () => {
    const { broker, route } = liveBroker();
    route("POST /api/v3/order", () => fullMarketOrderResponse());
    const fill = await broker.marketOrder({ symbol: "LTC/USDT", side: "sell", amount: 0.2, clientOrderId: "ck-LTC/USDT-1698138900000-sell" });
    expect(fill).toMatchObject({ orderId: "3784695242", amount: 0.2, price: 69.63, timestamp: 1698138992358 });
    expect(fill.fee).toBeCloseTo(0.013926, 10);
  });

  it("converts a fee paid in the base coin to the quote currency and takes it off the amount bought", async () => {
    const { broker, route } = liveBroker();
    route("POST /api/v3/order", () => fullMarketOrderResponse({ side: "BUY", commission: "0.00020000", commissionAsset: "LTC" }));
    const fill = await broker.marketOrder({ symbol: "LTC/USDT", side: "buy", amount: 0.2, clientOrderId: "ck-LTC/USDT-1698138900000-buy" });
    expect(fill.amount).toBeCloseTo(0.1998, 10);
    expect(fill.fee).toBeCloseTo(0.0002 * 69.63, 10);
  });

  it("returns the first fill for a repeated clientOrderId without ordering again", async () => {
    const { broker, route, orderPosts } = liveBroker();
    route("POST /api/v3/order", () => recordedOrder);
    const request = { symbol: "LTC/USDT", side: "sell" as const, amount: 0.1, clientOrderId: recordedOrder.clientOrderId };
    const [first, concurrent] = await Promise.all([broker.marketOrder(request), broker.marketOrder(request)]);
    const later = await broker.marketOrder(request);
    expect(concurrent).toEqual(first);
    expect(later).toEqual(first);
    expect(orderPosts()).toHaveLength(1);
  });

  it("after a lost response finds the order that did arrive instead of sending it twice", async () => {
    const { broker, route, orderPosts, calls } = liveBroker();
    route("POST /api/v3/order", () => {
      throw new ccxt.RequestTimeout("binance POST https://api.binance.com/api/v3/order request timed out");
    });
    route("GET /api/v3/allOrders", () => [recordedOrder]);
    const fill = await broker.marketOrder({ symbol: "LTC/USDT", side: "sell", amount: 0.1, clientOrderId: recordedOrder.clientOrderId });
    expect(fill).toMatchObject({ orderId: "3397148653", amount: 0.1, price: 90.8 });
    expect(orderPosts()).toHaveLength(1);
    expect(calls.find((call) => call.path === "/api/v3/allOrders")?.query.get("symbol")).toBe("LTCUSDT");
  });

  it("resends an order that never reached the exchange", async () => {
    const { broker, route, orderPosts } = liveBroker();
    route("POST /api/v3/order", failingThen([new ccxt.NetworkError("binance POST https://api.binance.com/api/v3/order ECONNRESET")], () => recordedOrder));
    route("GET /api/v3/allOrders", () => []);
    const fill = await broker.marketOrder({ symbol: "LTC/USDT", side: "sell", amount: 0.1, clientOrderId: recordedOrder.clientOrderId });
    expect(fill.orderId).toBe("3397148653");
    expect(orderPosts()).toHaveLength(2);
  });

  it("gives up when sending keeps failing and the order never shows up, saying so", async () => {
    const { broker, route, orderPosts } = liveBroker();
    route("POST /api/v3/order", () => {
      throw new ccxt.ExchangeNotAvailable("binance POST https://api.binance.com/api/v3/order 503 Service Unavailable");
    });
    route("GET /api/v3/allOrders", () => []);
    await expect(broker.marketOrder({ symbol: "LTC/USDT", side: "buy", amount: 0.1, clientOrderId: "ck-2" })).rejects.toThrow(
      /^binance createOrder market buy LTC\/USDT clientOrderId ck-2 \(not found among recent orders\) failed after 3 attempts: ExchangeNotAvailable: /,
    );
    expect(orderPosts()).toHaveLength(3);
  });

  it("fails a rejected order with a clear message and no credentials", async () => {
    const { broker, route, orderPosts } = liveBroker();
    route("POST /api/v3/order", () => {
      throw new ccxt.InsufficientFunds(`binance {"code":-2010,"msg":"Account has insufficient balance for requested action."} key=${TEST_API_KEY}`);
    });
    const attempt = broker.marketOrder({ symbol: "LTC/USDT", side: "buy", amount: 1000, clientOrderId: "ck-1" });
    await expect(attempt).rejects.toBeInstanceOf(ExchangeCallError);
    await expect(attempt).rejects.toThrow(/^binance createOrder market buy LTC\/USDT clientOrderId ck-1 failed: InsufficientFunds: .*insufficient balance/);
    await expect(attempt).rejects.not.toThrow(TEST_API_KEY);
    expect(orderPosts()).toHaveLength(1);
  });

  it("reports the account's non-zero balances", async () => {
    const { broker } = liveBroker();
    await expect(broker.balances()).resolves.toEqual([
      { currency: "LTC", free: 0.919741, used: 0, total: 0.919741 },
      { currency: "ETH", free: 0.02229833, used: 0, total: 0.02229833 },
    ]);
  });

  it("refuses to start live trading without keys", () => {
    const create = () => new LiveBroker({ exchangeId: "binance", apiKey: "", secret: TEST_SECRET, logger: recordingLogger() });
    expect(create).toThrow(MissingApiKeysError);
    expect(create).toThrow(UserFacingError);
    expect(create).toThrow(/EXCHANGE_API_KEY and EXCHANGE_API_SECRET/);
  });
});
