import type { Logger } from "@candlekeep/core";
import ccxt from "ccxt";
import { TEST_API_KEY, binanceOrderEndpoint, failingThen, fullMarketOrderResponse, recorded, stubbedBinance, type Route } from "./fixtures/binance";
import { LiveBroker } from "./live";
import { ExchangeCallError } from "./retry";
import { OrderLookupUnavailableError, OrderRefusedError, type OrderQuery, type OrderRequest } from "./types";

const recordedOrder = recorded.marketOrderFilled.httpResponse;
const SENT_AT = 1679571174000;

function recordingLogger(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  return { error: () => undefined, info: () => undefined, debug: () => undefined, warn: (message) => warnings.push(message), warnings };
}

function liveBroker() {
  const stub = stubbedBinance({ withKeys: true });
  const logger = recordingLogger();
  const broker = new LiveBroker({ exchange: stub.exchange, logger, retryDelaysMs: [10, 20], sleep: async () => undefined, now: () => SENT_AT });
  const orderPosts = () => stub.calls.filter((call) => call.method === "POST" && call.path === "/api/v3/order");
  const callsTo = (method: string, path: string) => stub.calls.filter((call) => call.method === method && call.path === path);
  return { ...stub, broker, logger, orderPosts, callsTo };
}

/** An LTC/USDT market order, sized at the recorded fill's price. */
function ltc(side: OrderRequest["side"], amount: number, clientOrderId: string): OrderRequest {
  return { symbol: "LTC/USDT", side, amount, clientOrderId, price: 90.8 };
}

function lookup(request: OrderRequest, exchangeOrderId: string | null): OrderQuery {
  return { symbol: request.symbol, side: request.side, clientOrderId: request.clientOrderId, exchangeOrderId, amount: request.amount, sentSince: SENT_AT };
}

/** The recorded exchangeInfo with one more spot market, BNB/USDT (copied from LTC/USDT's rules). */
function exchangeInfoWithBnbUsdt() {
  const ltcusdt = recorded.exchangeInfo.symbols.find((market) => market.symbol === "LTCUSDT");
  if (!ltcusdt) throw new Error("fixture has no LTCUSDT market");
  return { ...recorded.exchangeInfo, symbols: [...recorded.exchangeInfo.symbols, { ...ltcusdt, symbol: "BNBUSDT", baseAsset: "BNB" }] };
}

/** The recorded 24h ticker, as if for `symbol` at `lastPrice`. */
function tickerOf(symbol: string, lastPrice: string) {
  return { ...recorded.fetchTicker.httpResponse, symbol, lastPrice };
}

describe("LiveBroker over recorded binance responses", () => {
  it("places a market order with our clientOrderId and reports the recorded fill", async () => {
    const { broker, route, orderPosts, logger } = liveBroker();
    route("POST /api/v3/order", () => recordedOrder);
    const report = await broker.placeOrder(ltc("sell", 0.1, recordedOrder.clientOrderId));
    expect(report).toEqual({
      status: "filled",
      exchangeOrderId: "3397148653",
      filledAmount: 0.1,
      averagePrice: 90.8,
      filledCost: 9.08,
      feeQuote: 0,
      feeBase: 0,
      fees: [],
      error: null,
      time: new Date(1679571174472),
    });
    const sent = new URLSearchParams(orderPosts()[0]?.body);
    expect(sent.get("symbol")).toBe("LTCUSDT");
    expect(sent.get("type")).toBe("MARKET");
    expect(sent.get("side")).toBe("SELL");
    expect(sent.get("quantity")).toBe("0.1");
    expect(sent.get("newClientOrderId")).toBe(recordedOrder.clientOrderId);
    // This response carries no fills, hence no fee: that is said, not hidden.
    expect(logger.warnings).toEqual(["the exchange reported no fee for the order; recording 0"]);
  });

  it("takes the fees of an answer that carries none from the order's trades on the account", async () => {
    const { broker, route } = liveBroker();
    const { fills, ...withoutFills } = fullMarketOrderResponse({ clientOrderId: "ck00000000000000ab" });
    route("GET /api/v3/order", binanceOrderEndpoint([withoutFills]));
    const report = await broker.lookupOrder({ symbol: "LTC/USDT", side: "sell", clientOrderId: "ck00000000000000ab", exchangeOrderId: withoutFills.orderId, amount: 0.2, sentSince: 1698138900000 });
    const [recordedTrade] = recorded.fetchMyTrades.httpResponse;
    expect(report?.fees).toEqual([{ currency: recordedTrade?.commissionAsset, cost: Number(recordedTrade?.commission), quoteValue: Number(recordedTrade?.commission) }]);
    expect(report?.feeQuote).toBe(Number(fills[0]?.commission));
  });

  it("takes the fee from the order's fills", async () => {
    const { broker, route } = liveBroker();
    route("POST /api/v3/order", () => fullMarketOrderResponse());
    const report = await broker.placeOrder({ ...ltc("sell", 0.2, "ck-LTC/USDT-1698138900000-sell"), price: 69.63 });
    expect(report).toMatchObject({ status: "filled", exchangeOrderId: "3784695242", filledAmount: 0.2, averagePrice: 69.63, feeBase: 0 });
    expect(report.time.getTime()).toBe(1698138992358);
    expect(report.feeQuote).toBeCloseTo(0.013926, 10);
    expect(report.fees).toEqual([{ currency: "USDT", cost: 0.013926, quoteValue: 0.013926 }]);
  });

  it("values a fee paid in the base coin in the quote currency and counts it as taken off the amount bought", async () => {
    const { broker, route, orderPosts } = liveBroker();
    route("POST /api/v3/order", () => fullMarketOrderResponse({ side: "BUY", commission: "0.00020000", commissionAsset: "LTC" }));
    const report = await broker.placeOrder({ ...ltc("buy", 0.2, "ck-LTC/USDT-1698138900000-buy"), price: 69.63 });
    expect(report.filledAmount).toBe(0.2);
    expect(report.feeBase).toBeCloseTo(0.0002, 12);
    expect(report.filledAmount - report.feeBase).toBeCloseTo(0.1998, 10);
    expect(report.feeQuote).toBeCloseTo(0.0002 * 69.63, 10);
    expect(report.fees).toEqual([{ currency: "LTC", cost: 0.0002, quoteValue: expect.closeTo(0.0002 * 69.63, 10) }]);
    // binance takes a market buy by its base amount, not by the quote to spend.
    const sent = new URLSearchParams(orderPosts()[0]?.body);
    expect(sent.get("quantity")).toBe("0.2");
    expect(sent.has("quoteOrderQty")).toBe(false);
  });

  it("values a fee paid in BNB at the BNB/USDT ticker when that market exists", async () => {
    const { broker, route, callsTo, logger } = liveBroker();
    route("GET /api/v3/exchangeInfo", () => exchangeInfoWithBnbUsdt());
    route("GET /api/v3/ticker/24hr", (call) => (call.query.get("symbol") === "BNBUSDT" ? tickerOf("BNBUSDT", "250.00000000") : recorded.fetchTicker.httpResponse));
    route("POST /api/v3/order", () => fullMarketOrderResponse({ commission: "0.00004000", commissionAsset: "BNB" }));
    const report = await broker.placeOrder({ ...ltc("sell", 0.2, "ck-bnb-fee"), price: 69.63 });
    expect(report.fees).toEqual([{ currency: "BNB", cost: 0.00004, quoteValue: expect.closeTo(0.01, 12) }]);
    expect(report.feeQuote).toBeCloseTo(0.01, 12);
    expect(report.feeBase).toBe(0);
    expect(callsTo("GET", "/api/v3/ticker/24hr").map((call) => call.query.get("symbol"))).toEqual(["BNBUSDT"]);
    expect(logger.warnings).toEqual([]);
  });

  it("records a fee paid in BNB unvalued, with a warning, when the exchange lists no BNB/USDT market", async () => {
    const { broker, route, callsTo, logger } = liveBroker();
    expect(recorded.exchangeInfo.symbols.map((market) => market.symbol)).not.toContain("BNBUSDT");
    route("POST /api/v3/order", () => fullMarketOrderResponse({ side: "BUY", commission: "0.00004000", commissionAsset: "BNB" }));
    const report = await broker.placeOrder({ ...ltc("buy", 0.2, "ck-bnb-unpriced"), price: 69.63 });
    expect(report.fees).toEqual([{ currency: "BNB", cost: 0.00004, quoteValue: null }]);
    expect(report.feeQuote).toBe(0);
    // BNB is neither the base nor the quote: nothing is taken off the LTC bought.
    expect(report.feeBase).toBe(0);
    expect(callsTo("GET", "/api/v3/ticker/24hr")).toHaveLength(0);
    expect(logger.warnings).toEqual(["a fee paid in a third currency has no market to price it in the quote currency; recorded with its currency, not counted in PnL"]);
  });

  it("completes an answer that carries only the order's id by looking the order up", async () => {
    const { broker, route, callsTo } = liveBroker();
    // binance's ACK answer: the ids and nothing about the fill.
    route("POST /api/v3/order", () => ({ symbol: "LTCUSDT", orderId: recordedOrder.orderId, orderListId: "-1", clientOrderId: recordedOrder.clientOrderId, transactTime: "1679571174472" }));
    route("GET /api/v3/order", () => recordedOrder);
    const report = await broker.placeOrder(ltc("sell", 0.1, recordedOrder.clientOrderId));
    expect(report).toMatchObject({ status: "filled", exchangeOrderId: "3397148653", filledAmount: 0.1, averagePrice: 90.8, filledCost: 9.08 });
    const fetched = callsTo("GET", "/api/v3/order");
    expect(fetched).toHaveLength(1);
    expect(fetched[0]?.query.get("orderId")).toBe("3397148653");
    expect(fetched[0]?.query.get("symbol")).toBe("LTCUSDT");
  });

  it("returns the first report for a repeated clientOrderId without ordering again", async () => {
    const { broker, route, orderPosts } = liveBroker();
    route("POST /api/v3/order", () => recordedOrder);
    const request = ltc("sell", 0.1, recordedOrder.clientOrderId);
    const [first, concurrent] = await Promise.all([broker.placeOrder(request), broker.placeOrder(request)]);
    const later = await broker.placeOrder(request);
    expect(concurrent).toEqual(first);
    expect(later).toEqual(first);
    expect(orderPosts()).toHaveLength(1);
  });

  it("after a lost response finds the order that did arrive by its client id instead of sending it twice", async () => {
    const { broker, route, orderPosts, callsTo } = liveBroker();
    route("POST /api/v3/order", () => {
      throw new ccxt.RequestTimeout("binance POST https://api.binance.com/api/v3/order request timed out");
    });
    route("GET /api/v3/order", binanceOrderEndpoint([recordedOrder]));
    const report = await broker.placeOrder(ltc("sell", 0.1, recordedOrder.clientOrderId));
    expect(report).toMatchObject({ status: "filled", exchangeOrderId: "3397148653", filledAmount: 0.1, averagePrice: 90.8 });
    expect(orderPosts()).toHaveLength(1);
    expect(callsTo("GET", "/api/v3/order").map((call) => [call.query.get("symbol"), call.query.get("origClientOrderId")])).toEqual([["LTCUSDT", recordedOrder.clientOrderId]]);
  });

  it("after a lost response finds the order among all recent orders when asking by client id does not answer", async () => {
    const { broker, route, orderPosts, calls } = liveBroker();
    route("POST /api/v3/order", () => {
      throw new ccxt.RequestTimeout("binance POST https://api.binance.com/api/v3/order request timed out");
    });
    route("GET /api/v3/order", binanceOrderEndpoint([]));
    route("GET /api/v3/allOrders", () => [recordedOrder]);
    const report = await broker.placeOrder(ltc("sell", 0.1, recordedOrder.clientOrderId));
    expect(report).toMatchObject({ status: "filled", exchangeOrderId: "3397148653", filledAmount: 0.1, averagePrice: 90.8 });
    expect(orderPosts()).toHaveLength(1);
    expect(calls.find((call) => call.path === "/api/v3/allOrders")?.query.get("symbol")).toBe("LTCUSDT");
  });

  it("resends an order that never reached the exchange", async () => {
    const { broker, route, orderPosts } = liveBroker();
    route("POST /api/v3/order", failingThen([new ccxt.NetworkError("binance POST https://api.binance.com/api/v3/order ECONNRESET")], () => recordedOrder));
    route("GET /api/v3/order", binanceOrderEndpoint([]));
    route("GET /api/v3/allOrders", () => []);
    const report = await broker.placeOrder(ltc("sell", 0.1, recordedOrder.clientOrderId));
    expect(report.exchangeOrderId).toBe("3397148653");
    expect(orderPosts()).toHaveLength(2);
  });

  it("gives up when sending keeps failing and the order never shows up, saying so", async () => {
    const { broker, route, orderPosts } = liveBroker();
    route("POST /api/v3/order", () => {
      throw new ccxt.ExchangeNotAvailable("binance POST https://api.binance.com/api/v3/order 503 Service Unavailable");
    });
    route("GET /api/v3/order", binanceOrderEndpoint([]));
    route("GET /api/v3/allOrders", () => []);
    const attempt = broker.placeOrder(ltc("buy", 0.1, "ck-2"));
    await expect(attempt).rejects.toBeInstanceOf(ExchangeCallError);
    await expect(attempt).rejects.not.toBeInstanceOf(OrderRefusedError);
    await expect(attempt).rejects.toThrow(/^binance createOrder market buy LTC\/USDT clientOrderId ck-2 \(not found among recent orders\) failed after 3 attempts: ExchangeNotAvailable: /);
    expect(orderPosts()).toHaveLength(3);
  });

  it("fails a refused order as OrderRefusedError with a clear message and no credentials, without looking for it", async () => {
    const { broker, route, orderPosts, callsTo } = liveBroker();
    route("POST /api/v3/order", () => {
      throw new ccxt.InsufficientFunds(`binance {"code":-2010,"msg":"Account has insufficient balance for requested action."} key=${TEST_API_KEY}`);
    });
    const attempt = broker.placeOrder(ltc("buy", 1000, "ck-1"));
    await expect(attempt).rejects.toBeInstanceOf(OrderRefusedError);
    await expect(attempt).rejects.toThrow(/^binance createOrder market buy LTC\/USDT clientOrderId ck-1 failed: InsufficientFunds: .*insufficient balance/);
    await expect(attempt).rejects.not.toThrow(TEST_API_KEY);
    expect(orderPosts()).toHaveLength(1);
    expect(callsTo("GET", "/api/v3/allOrders")).toHaveLength(0);
    expect(callsTo("GET", "/api/v3/order")).toHaveLength(0);
  });

  it("looks up an order by its exchange id", async () => {
    const { broker, route, orderPosts, callsTo } = liveBroker();
    route("GET /api/v3/order", () => recordedOrder);
    const report = await broker.lookupOrder(lookup(ltc("sell", 0.1, recordedOrder.clientOrderId), "3397148653"));
    expect(report).toMatchObject({ status: "filled", exchangeOrderId: "3397148653", filledAmount: 0.1, averagePrice: 90.8 });
    expect(callsTo("GET", "/api/v3/order")[0]?.query.get("orderId")).toBe("3397148653");
    expect(orderPosts()).toHaveLength(0);
  });

  it("looks up an order the exchange never got as undefined, sending nothing", async () => {
    const { broker, route, orderPosts, callsTo } = liveBroker();
    route("GET /api/v3/order", binanceOrderEndpoint([recordedOrder]));
    route("GET /api/v3/allOrders", () => [recordedOrder]);
    await expect(broker.lookupOrder(lookup(ltc("buy", 0.1, "ck-never-sent"), null))).resolves.toBeUndefined();
    expect(callsTo("GET", "/api/v3/order").map((call) => call.query.get("origClientOrderId"))).toEqual(["ck-never-sent"]);
    expect(callsTo("GET", "/api/v3/allOrders")).toHaveLength(1);
    expect(orderPosts()).toHaveLength(0);
  });

  it("throws OrderLookupUnavailableError when the exchange offers no way to look an order up", async () => {
    const { broker, exchange, calls } = liveBroker();
    for (const method of ["fetchOrder", "fetchOpenOrder", "fetchClosedOrder", "fetchOrders", "fetchOpenOrders", "fetchClosedOrders", "fetchCanceledAndClosedOrders", "fetchMyTrades"]) exchange.has[method] = false;
    const attempt = broker.lookupOrder(lookup(ltc("sell", 0.1, recordedOrder.clientOrderId), "3397148653"));
    await expect(attempt).rejects.toBeInstanceOf(OrderLookupUnavailableError);
    await expect(attempt).rejects.toThrow(/^binance offers no way to look up order x-R4BD3S825806ed40c861260428a48c \(id 3397148653\) on LTC\/USDT/);
    expect(calls).toHaveLength(0);
  });

  it("reports the account's non-zero balances", async () => {
    const { broker } = liveBroker();
    await expect(broker.balances()).resolves.toEqual([
      { currency: "LTC", free: 0.919741, used: 0, total: 0.919741 },
      { currency: "ETH", free: 0.02229833, used: 0, total: 0.02229833 },
    ]);
  });
});
