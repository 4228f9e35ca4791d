import { TIMEFRAME_MS, type Logger } from "@candlekeep/core";
import ccxt, { type Exchange, type Order } from "ccxt";
import { toCandles } from "./ccxt";
import { LiveBroker, feesOf, toBalances } from "./live";
import { fullMarketOrderResponse, recorded as binance, stubbedBinance } from "./fixtures/binance";
import bybit from "./fixtures/bybit.json";
import coinbase from "./fixtures/coinbase.json";
import gate from "./fixtures/gate.json";
import kraken from "./fixtures/kraken.json";
import okx from "./fixtures/okx.json";
import { answer, answerError, stubbedExchange, type RecordedCall } from "./fixtures/stub";
import { marketBuyTakesCost } from "./order-params";
import { OrderRefusedError, type OrderQuery, type OrderRequest, type OrderSide } from "./types";

/**
 * Conformance over recorded real responses (ccxt's own static test data, see
 * fixtures/README.md): the real ccxt 4.5.84 class of each exchange parses
 * them, with only HTTP replaced. Every expected value below is a value of the
 * recording, so a ccxt upgrade that parses differently fails here first.
 */

/** A clock after every recorded candle, so all of them count as closed. */
const NOW = Date.UTC(2026, 0, 1);

/** A client order id in the format ORDER-RULES.md recommends. */
const CLIENT_ORDER_ID = "ck0a1b2c3d4e5f6a7b";

/** The order fields the order path relies on. */
function facts(order: Order) {
  // ccxt fills `fees` at run time though its Order type only declares `fee`.
  const listed: unknown = Reflect.get(order, "fees");
  const fees = Array.isArray(listed) ? listed.map((fee: unknown) => ({ cost: Reflect.get(Object(fee), "cost"), currency: Reflect.get(Object(fee), "currency") })) : listed;
  return { id: order.id, clientOrderId: order.clientOrderId, status: order.status, filled: order.filled, average: order.average, fees };
}

function only<T>(items: readonly T[]): T {
  expect(items).toHaveLength(1);
  const [item] = items;
  if (item === undefined) throw new Error("no item");
  return item;
}

function sent(calls: readonly RecordedCall[], method: string, path: string): RecordedCall {
  const call = calls.find((candidate) => candidate.method === method && candidate.path === path);
  if (!call) throw new Error(`${method} ${path} was not sent; sent: ${calls.map((c) => `${c.method} ${c.path}`).join(", ")}`);
  return call;
}

function jsonBody(call: RecordedCall): unknown {
  return JSON.parse(call.body ?? "null");
}

/** When the LiveBroker sections send (epoch ms): searches for a lost order start a minute before. */
const SENT_AT = Date.UTC(2025, 0, 1);

/** A LiveBroker over a stubbed exchange: no retry waits, a fixed clock, warnings kept for the test to read. */
function liveBroker(exchange: Exchange) {
  const warnings: string[] = [];
  const logger: Logger = { error: () => undefined, info: () => undefined, debug: () => undefined, warn: (message) => warnings.push(message) };
  return { broker: new LiveBroker({ exchange, logger, retryDelaysMs: [], sleep: async () => undefined, now: () => SENT_AT }), warnings };
}

function marketOrder(symbol: string, side: OrderSide, amount: number, price: number, clientOrderId = CLIENT_ORDER_ID): OrderRequest {
  return { symbol, side, amount, clientOrderId, price };
}

/** Where to look for `request`, sent at `sentSince`: ccxt drops listed orders older than the search start. */
function lookupOf(request: OrderRequest, exchangeOrderId: string | null, sentSince = SENT_AT): OrderQuery {
  return { symbol: request.symbol, side: request.side, clientOrderId: request.clientOrderId, exchangeOrderId, amount: request.amount, sentSince };
}

function callsTo(calls: readonly RecordedCall[], method: string, path: string): RecordedCall[] {
  return calls.filter((call) => call.method === method && call.path === path);
}

describe("market buys by cost (ccxt's createMarketBuyOrderRequiresPrice, as ccxt reads it)", () => {
  it("gate, coinbase, bitget and htx take the quote to spend, so the broker passes the price; the others take the base amount", () => {
    const byCost = ["binance", "bybit", "okx", "kraken", "gate", "coinbase", "bitget", "htx"].filter((id) => {
      const exchange: unknown = Reflect.construct(Reflect.get(ccxt, id), []);
      if (!(exchange instanceof ccxt.Exchange)) throw new Error(`no ccxt class ${id}`);
      return marketBuyTakesCost(exchange);
    });
    // bitget keeps the option under options.createOrder, the other three at the top of options.
    expect(byCost).toEqual(["gate", "coinbase", "bitget", "htx"]);
  });
});

describe("binance (recorded spot responses)", () => {
  function stub() {
    const stubbed = stubbedBinance({ withKeys: true });
    stubbed.route("GET /api/v3/order", answer(binance.marketOrderFilled.httpResponse));
    stubbed.route("GET /api/v3/openOrders", answer(binance.fetchOpenOrders.httpResponse));
    stubbed.route("GET /api/v3/myTrades", answer(binance.fetchMyTrades.httpResponse));
    stubbed.route("POST /api/v3/order", answer(fullMarketOrderResponse({ clientOrderId: CLIENT_ORDER_ID })));
    return stubbed;
  }

  it("parses recorded 1h klines into closed candles", async () => {
    const { exchange } = stub();
    const rows = await exchange.fetchOHLCV("BTC/USDT", "1h", 1706628191000, 3);
    expect(toCandles(rows, TIMEFRAME_MS["1h"], 1706628191000, 3, NOW)).toEqual([
      { openTime: 1706630400000, open: 43519.34, high: 43936, low: 43171, close: 43488.71, volume: 20.55495, isClosed: true },
      { openTime: 1706634000000, open: 43488.71, high: 43832.08, low: 43084, close: 43374.8, volume: 21.80865, isClosed: true },
      { openTime: 1706637600000, open: 43374.81, high: 44048, low: 43062, close: 43361.11, volume: 23.66547, isClosed: true },
    ]);
  });

  it("parses the recorded spot balance, leaving out empty currencies", async () => {
    const { exchange } = stub();
    expect(toBalances(await exchange.fetchBalance())).toEqual([
      { currency: "LTC", free: 0.919741, used: 0, total: 0.919741 },
      { currency: "ETH", free: 0.02229833, used: 0, total: 0.02229833 },
    ]);
  });

  it("fetchOrder by id gives the filled market sell, with no fee (binance's order endpoint has no commissions)", async () => {
    const { exchange, calls } = stub();
    const order = await exchange.fetchOrder("3397148653", "LTC/USDT");
    expect(facts(order)).toEqual({ id: "3397148653", clientOrderId: "x-R4BD3S825806ed40c861260428a48c", status: "closed", filled: 0.1, average: 90.8, fees: [] });
    expect(sent(calls, "GET", "/api/v3/order").query.get("orderId")).toBe("3397148653");
  });

  it("fetchOrder by client order id sends origClientOrderId", async () => {
    const { exchange, calls } = stub();
    await exchange.fetchOrder("", "LTC/USDT", { clientOrderId: CLIENT_ORDER_ID });
    const query = sent(calls, "GET", "/api/v3/order").query;
    expect(query.get("origClientOrderId")).toBe(CLIENT_ORDER_ID);
    expect(query.has("orderId")).toBe(false);
  });

  it("createOrder sends our clientOrderId as newClientOrderId and takes the fee from the FULL answer's fills", async () => {
    const { exchange, calls } = stub();
    const order = await exchange.createOrder("LTC/USDT", "market", "sell", 0.2, undefined, { clientOrderId: CLIENT_ORDER_ID });
    expect(new URLSearchParams(sent(calls, "POST", "/api/v3/order").body).get("newClientOrderId")).toBe(CLIENT_ORDER_ID);
    // Values of the recorded trade of order 3784695242 (the FULL answer is rebuilt from it).
    expect(facts(order)).toEqual({ id: "3784695242", clientOrderId: CLIENT_ORDER_ID, status: "closed", filled: 0.2, average: 69.63, fees: [{ cost: 0.013926, currency: "USDT" }] });
  });

  it("parses recorded open orders and private trades", async () => {
    const { exchange } = stub();
    expect(facts(only(await exchange.fetchOpenOrders("LTC/USDT", undefined, 1)))).toEqual({
      id: "3811057334",
      clientOrderId: "x-R4BD3S82102a551f8c1642bba06728",
      status: "open",
      filled: 0,
      average: undefined,
      fees: [],
    });
    const trade = only(await exchange.fetchMyTrades("LTC/USDT", undefined, 1));
    expect([trade.id, trade.order, trade.amount, trade.price, trade.fee]).toEqual(["309520010", "3784695242", 0.2, 69.63, { cost: 0.013926, currency: "USDT" }]);
  });

  describe("LiveBroker", () => {
    const filledSell = binance.marketOrderFilled.httpResponse;

    /** GET /api/v3/order: the recorded order when asked by its id or client id, else binance's -2013 "Order does not exist." */
    function orderEndpoint(known: readonly (typeof filledSell)[]) {
      return (call: RecordedCall) => {
        const asked = call.query.get("origClientOrderId") ?? call.query.get("orderId");
        return known.find((order) => order.clientOrderId === asked || order.orderId === asked) ?? answerError(400, { code: -2013, msg: "Order does not exist." })(call);
      };
    }

    it("places a market sell under newClientOrderId and reports the FULL answer's fill and fee", async () => {
      const { exchange, calls } = stub();
      const report = await liveBroker(exchange).broker.placeOrder(marketOrder("LTC/USDT", "sell", 0.2, 69.63));
      const form = new URLSearchParams(sent(calls, "POST", "/api/v3/order").body);
      expect([form.get("side"), form.get("type"), form.get("quantity"), form.get("newClientOrderId")]).toEqual(["SELL", "MARKET", "0.2", CLIENT_ORDER_ID]);
      // Values of the recorded trade of order 3784695242 (the FULL answer is rebuilt from it).
      expect(report).toEqual({
        status: "filled",
        exchangeOrderId: "3784695242",
        filledAmount: 0.2,
        averagePrice: 69.63,
        filledCost: 13.926,
        feeQuote: 0.013926,
        feeBase: 0,
        fees: [{ currency: "USDT", cost: 0.013926, quoteValue: 0.013926 }],
        error: null,
        time: new Date(1698138992358),
      });
    });

    it("places a market buy by its base amount (binance needs no price)", async () => {
      const { exchange, calls, route } = stub();
      route("POST /api/v3/order", answer(fullMarketOrderResponse({ side: "BUY", clientOrderId: CLIENT_ORDER_ID })));
      const report = await liveBroker(exchange).broker.placeOrder(marketOrder("LTC/USDT", "buy", 0.2, 69.63));
      const form = new URLSearchParams(sent(calls, "POST", "/api/v3/order").body);
      expect([form.get("side"), form.get("quantity"), form.get("newClientOrderId"), form.has("quoteOrderQty"), form.has("price")]).toEqual(["BUY", "0.2", CLIENT_ORDER_ID, false, false]);
      expect(report).toMatchObject({ status: "filled", filledAmount: 0.2, averagePrice: 69.63, feeQuote: 0.013926 });
    });

    it("an IOC order that filled in part ends expired, with what it filled", async () => {
      const { exchange, route } = stub();
      // binance's answer for a market order of 0.2 that filled 0.1 and expired: the recorded order with origQty and status changed.
      route("POST /api/v3/order", answer({ ...filledSell, origQty: "0.20000000", status: "EXPIRED" }));
      const report = await liveBroker(exchange).broker.placeOrder(marketOrder("LTC/USDT", "sell", 0.2, 90.8, filledSell.clientOrderId));
      expect(report).toMatchObject({ status: "expired", exchangeOrderId: "3397148653", filledAmount: 0.1, averagePrice: 90.8, filledCost: 9.08 });
    });

    it("looks a lost order up by origClientOrderId; one binance does not know is undefined", async () => {
      const { exchange, calls, route } = stub();
      route("GET /api/v3/order", orderEndpoint([filledSell]));
      route("GET /api/v3/allOrders", answer([]));
      const { broker } = liveBroker(exchange);
      const found = await broker.lookupOrder(lookupOf(marketOrder("LTC/USDT", "sell", 0.1, 90.8, filledSell.clientOrderId), null));
      expect(found).toMatchObject({ status: "filled", exchangeOrderId: "3397148653", filledAmount: 0.1, averagePrice: 90.8, filledCost: 9.08, fees: [] });
      await expect(broker.lookupOrder(lookupOf(marketOrder("LTC/USDT", "sell", 0.1, 90.8), null))).resolves.toBeUndefined();
      expect(callsTo(calls, "GET", "/api/v3/order").map((call) => call.query.get("origClientOrderId"))).toEqual([filledSell.clientOrderId, CLIENT_ORDER_ID]);
      expect(callsTo(calls, "GET", "/api/v3/allOrders")).toHaveLength(1);
    });

    it("an order refused for its balance (-2010) is an OrderRefusedError", async () => {
      const { exchange, route } = stub();
      route("POST /api/v3/order", answerError(400, { code: -2010, msg: "Account has insufficient balance for requested action." }));
      const attempt = liveBroker(exchange).broker.placeOrder(marketOrder("LTC/USDT", "buy", 1000, 69.63));
      await expect(attempt).rejects.toBeInstanceOf(OrderRefusedError);
      await expect(attempt).rejects.toThrow(/InsufficientFunds: .*insufficient balance/);
    });
  });
});

describe("bybit (recorded UTA responses)", () => {
  function stub() {
    return stubbedExchange("bybit", {
      markets: bybit.markets,
      withKeys: true,
      // A unified trading account; without these ccxt first asks /v5/user/query-api and /v5/account/info.
      options: { enableUnifiedAccount: true, enableUnifiedMargin: false },
      routes: [
        ["GET /v5/market/kline", answer(bybit.fetchOHLCV.httpResponse)],
        ["GET /v5/market/tickers", answer(bybit.fetchTicker.httpResponse)],
        ["GET /v5/account/wallet-balance", answer(bybit.fetchBalance.httpResponse)],
        ["POST /v5/order/create", answer(bybit.createOrder.httpResponse)],
        ["GET /v5/execution/list", answer(bybit.fetchMyTrades.httpResponse)],
        ["GET /v5/order/history", (call) => (call.query.get("orderId") === "1609604284784580096" ? bybit.fetchClosedOrderSell.httpResponse : call.query.get("category") === "linear" ? bybit.fetchClosedOrderSwap.httpResponse : bybit.fetchClosedOrder.httpResponse)],
      ],
    });
  }

  it("parses recorded 1h klines (newest first on the wire) into ascending candles", async () => {
    const { exchange } = stub();
    const rows = await exchange.fetchOHLCV("BTC/USDT:USDT", "1h", 1706628191000, 3);
    expect(toCandles(rows, TIMEFRAME_MS["1h"], 1706628191000, 3, NOW)).toEqual([
      { openTime: 1706630400000, open: 43350.7, high: 43492.5, low: 43204.5, close: 43488, volume: 1341.261, isClosed: true },
      { openTime: 1706634000000, open: 43488, high: 43579.5, low: 43286.8, close: 43376.1, volume: 3199.431, isClosed: true },
      { openTime: 1706637600000, open: 43376.1, high: 43474.1, low: 43264.8, close: 43352.8, volume: 1575.305, isClosed: true },
    ]);
  });

  it("parses the recorded unified-account balance (locked and position margin count as used)", async () => {
    const { exchange, calls } = stub();
    expect(toBalances(await exchange.fetchBalance())).toEqual([
      { currency: "USDC", free: 5845.01472906, used: 3.18541012, total: 5848.20013918 },
      { currency: "BTC", free: 0.85581394, used: 0, total: 0.85581394 },
      { currency: "USDT", free: 3229.64065465, used: 92.61831144, total: 3322.25896609 },
      { currency: "LTC", free: 0.02101953, used: 0, total: 0.02101953 },
    ]);
    expect(sent(calls, "GET", "/v5/account/wallet-balance").query.get("accountType")).toBe("UNIFIED");
  });

  it("createOrder sends our clientOrderId as orderLinkId and gets back only the ids", async () => {
    const { exchange, calls } = stub();
    const order = await exchange.createOrder("LTC/USDT", "market", "sell", 0.2, undefined, { clientOrderId: CLIENT_ORDER_ID });
    expect(jsonBody(sent(calls, "POST", "/v5/order/create"))).toMatchObject({ orderLinkId: CLIENT_ORDER_ID, side: "Sell", orderType: "Market", category: "spot", qty: "0.2" });
    // The recorded answer carries the ids only: status, filled and fees must come from a later query.
    expect(facts(order)).toEqual({ id: "1992319485461489920", clientOrderId: "1992319485469878528", status: undefined, filled: undefined, average: undefined, fees: [] });
  });

  it("a market buy by amount is sent in base units (marketUnit baseCoin); with a price it is sent as quote cost", async () => {
    const { exchange, calls } = stub();
    await exchange.createOrder("LTC/USDT", "market", "buy", 0.2);
    await exchange.createOrder("LTC/USDT", "market", "buy", 0.2, 70);
    const [byAmount, byCost] = calls.filter((call) => call.path === "/v5/order/create").map(jsonBody);
    expect(byAmount).toMatchObject({ side: "Buy", marketUnit: "baseCoin", qty: "0.2" });
    expect(byCost).toMatchObject({ side: "Buy", qty: "14" });
    expect(byCost).not.toHaveProperty("marketUnit");
  });

  it("an IOC market buy partly filled then cancelled (PartiallyFilledCanceled) parses as closed with its filled amount", async () => {
    const { exchange } = stub();
    const order = await exchange.fetchClosedOrder("1609602210852247040", "BTC/USDT");
    // The 2024 recording has no cumFeeDetail, and ccxt 4.5.84 reads order fees only from there.
    expect(facts(order)).toEqual({ id: "1609602210852247040", clientOrderId: "1609602210852247041", status: "closed", filled: 0.001614, average: 30966.41, fees: [] });
  });

  it("fetchClosedOrder asks for orderStatus=Filled only; fetchCanceledAndClosedOrders asks for any final status", async () => {
    const { exchange, calls } = stub();
    await exchange.fetchClosedOrder("1609602210852247040", "BTC/USDT");
    await exchange.fetchCanceledAndClosedOrders("BTC/USDT", undefined, undefined, { orderLinkId: "1609602210852247041" });
    const [closed, anyFinal] = calls.filter((call) => call.path === "/v5/order/history").map((call) => call.query);
    expect(closed?.get("orderStatus")).toBe("Filled");
    expect(anyFinal?.has("orderStatus")).toBe(false);
    // bybit's own field passes through: ccxt maps no unified clientOrderId here.
    expect(anyFinal?.get("orderLinkId")).toBe("1609602210852247041");
  });

  it("a filled market sell parses; a current-shape order takes its fee from cumFeeDetail", async () => {
    const { exchange } = stub();
    expect(facts(await exchange.fetchClosedOrder("1609604284784580096", "XRP/USDT"))).toEqual({
      id: "1609604284784580096",
      clientOrderId: "1609604284784580097",
      status: "closed",
      filled: 123,
      average: 0.5351,
      fees: [],
    });
    expect(facts(await exchange.fetchClosedOrder("aee7453a-a100-465f-857a-3db780e9329a", "BTC/USDT:USDT"))).toEqual({
      id: "aee7453a-a100-465f-857a-3db780e9329a",
      clientOrderId: undefined,
      status: "closed",
      filled: 0.001,
      average: 123498,
      fees: [{ cost: 0.0679239, currency: "USDT" }],
    });
  });

  it("fetchOrder on a unified account needs the acknowledged param", async () => {
    const { exchange } = stub();
    await expect(exchange.fetchOrder("1609602210852247040", "BTC/USDT")).rejects.toThrow(/acknowledged/);
  });

  it("parses a recorded spot trade with its fee in the base currency", async () => {
    const { exchange } = stub();
    const trade = only(await exchange.fetchMyTrades("BTC/USDT", undefined, 1));
    expect([trade.id, trade.order, trade.amount, trade.price, trade.fee]).toEqual(["2100000000047087120", "1550857400238740992", 0.000336, 29708.7, { cost: 3.36e-7, currency: "BTC", rate: 0.001 }]);
  });

  describe("LiveBroker", () => {
    const [partlyFilledBuy] = bybit.fetchClosedOrder.httpResponse.result.list;
    const [filledSell] = bybit.fetchClosedOrderSell.httpResponse.result.list;
    if (!partlyFilledBuy || !filledSell) throw new Error("fixture has no bybit orders");
    type BybitOrder = typeof partlyFilledBuy;

    /** bybit's order-list envelope (realtime and history answer alike) around `list`. */
    function listOf(list: readonly BybitOrder[]) {
      return { ...bybit.fetchClosedOrder.httpResponse, result: { ...bybit.fetchClosedOrder.httpResponse.result, list } };
    }

    /** An endpoint that lists the `known` orders matching the query's orderId or orderLinkId. */
    function listing(known: readonly BybitOrder[]) {
      return (call: RecordedCall) => {
        const orderId = call.query.get("orderId");
        const orderLinkId = call.query.get("orderLinkId");
        return listOf(known.filter((order) => (orderId === null || order.orderId === orderId) && (orderLinkId === null || order.orderLinkId === orderLinkId)));
      };
    }

    /** The recorded create answer (ids only), naming the order whose fill is recorded: the two recordings are of different orders. */
    function createdAs(order: BybitOrder) {
      return { ...bybit.createOrder.httpResponse, result: { orderId: order.orderId, orderLinkId: CLIENT_ORDER_ID } };
    }

    it("places a market sell under orderLinkId and completes the ids-only answer with fetchOrder (acknowledged)", async () => {
      const { exchange, calls, route } = stub();
      route("POST /v5/order/create", answer(createdAs(filledSell)));
      route("GET /v5/order/realtime", listing([filledSell]));
      const { broker, warnings } = liveBroker(exchange);
      const report = await broker.placeOrder(marketOrder("XRP/USDT", "sell", 123, 0.5351));
      expect(jsonBody(sent(calls, "POST", "/v5/order/create"))).toMatchObject({ category: "spot", side: "Sell", orderType: "Market", qty: "123", orderLinkId: CLIENT_ORDER_ID });
      const fetched = sent(calls, "GET", "/v5/order/realtime").query;
      // ccxt takes `acknowledged` for itself (without it, it refuses fetchOrder on a unified account); bybit never sees it.
      expect([fetched.get("orderId"), fetched.has("acknowledged")]).toEqual([filledSell.orderId, false]);
      // The 2024 recording has no cumFeeDetail, the only place ccxt 4.5.84 reads a bybit order's fee from: none is reported, and that is said.
      expect(report).toEqual({
        status: "filled",
        exchangeOrderId: "1609604284784580096",
        filledAmount: 123,
        averagePrice: 0.5351,
        filledCost: 65.8173,
        feeQuote: 0,
        feeBase: 0,
        fees: [],
        error: null,
        time: new Date(1706615783251),
      });
      expect(warnings).toEqual(["the exchange reported no fee for the order; recording 0"]);
    });

    it("places a market buy by base amount; an IOC buy that filled in part (PartiallyFilledCanceled, ccxt `closed`) is reported canceled with its fill", async () => {
      const { exchange, calls, route } = stub();
      route("POST /v5/order/create", answer(createdAs(partlyFilledBuy)));
      route("GET /v5/order/realtime", listing([partlyFilledBuy]));
      const report = await liveBroker(exchange).broker.placeOrder(marketOrder("BTC/USDT", "buy", 0.002, 30966.41));
      const body = jsonBody(sent(calls, "POST", "/v5/order/create"));
      expect(body).toMatchObject({ side: "Buy", orderType: "Market", marketUnit: "baseCoin", qty: "0.002", orderLinkId: CLIENT_ORDER_ID });
      expect(body).not.toHaveProperty("price");
      expect(report).toMatchObject({ status: "canceled", exchangeOrderId: "1609602210852247040", filledAmount: 0.001614, averagePrice: 30966.41, filledCost: 49.97980168 });
      expect(report.filledAmount).toBeLessThan(0.002);
    });

    it("finds a partly filled order fetchOrder no longer reaches among the cancelled and closed ones, by orderLinkId", async () => {
      const { exchange, calls, route } = stub();
      // Older than bybit's last 500 orders: realtime does not list it, and the closed list (Filled only) never had it.
      route("GET /v5/order/realtime", answer(listOf([])));
      route("GET /v5/order/history", (call) => (call.query.get("orderStatus") === "Filled" ? listOf([]) : listing([partlyFilledBuy])(call)));
      const request = marketOrder("BTC/USDT", "buy", 0.002, 30966.41, partlyFilledBuy.orderLinkId);
      const report = await liveBroker(exchange).broker.lookupOrder(lookupOf(request, partlyFilledBuy.orderId, Number(partlyFilledBuy.createdTime)));
      expect(report).toMatchObject({ status: "canceled", exchangeOrderId: "1609602210852247040", filledAmount: 0.001614, averagePrice: 30966.41 });
      const history = callsTo(calls, "GET", "/v5/order/history").map((call) => [call.query.get("orderStatus"), call.query.get("orderId"), call.query.get("orderLinkId")]);
      expect(history).toEqual([
        ["Filled", partlyFilledBuy.orderId, null],
        [null, null, partlyFilledBuy.orderLinkId],
      ]);
    });

    it("looks a lost order up by orderLinkId; one bybit does not know is undefined", async () => {
      const { exchange, calls, route } = stub();
      route("GET /v5/order/realtime", listing([]));
      route("GET /v5/order/history", listing([filledSell]));
      const { broker } = liveBroker(exchange);
      const found = await broker.lookupOrder(lookupOf(marketOrder("XRP/USDT", "sell", 123, 0.5351, filledSell.orderLinkId), null, Number(filledSell.createdTime)));
      expect(found).toMatchObject({ status: "filled", exchangeOrderId: "1609604284784580096", filledAmount: 123, averagePrice: 0.5351 });
      await expect(broker.lookupOrder(lookupOf(marketOrder("XRP/USDT", "sell", 123, 0.5351), null))).resolves.toBeUndefined();
      expect(callsTo(calls, "GET", "/v5/order/history").map((call) => call.query.get("orderLinkId"))).toEqual([filledSell.orderLinkId, CLIENT_ORDER_ID]);
      expect(callsTo(calls, "GET", "/v5/order/realtime").map((call) => call.query.get("orderLinkId"))).toEqual([CLIENT_ORDER_ID]);
    });

    it("an order refused for its balance (retCode 170131, sent with HTTP 200) is an OrderRefusedError", async () => {
      const { exchange, route } = stub();
      route("POST /v5/order/create", answer({ retCode: 170131, retMsg: "Insufficient balance.", result: {}, retExtInfo: {}, time: 1706615840224 }));
      const attempt = liveBroker(exchange).broker.placeOrder(marketOrder("BTC/USDT", "buy", 10, 30966.41));
      await expect(attempt).rejects.toBeInstanceOf(OrderRefusedError);
      await expect(attempt).rejects.toThrow(/InsufficientFunds: .*Insufficient balance/);
    });
  });
});

describe("okx (recorded responses)", () => {
  function stub() {
    return stubbedExchange("okx", {
      markets: okx.markets,
      withKeys: true,
      routes: [
        ["GET /api/v5/market/history-candles", answer(okx.fetchOHLCV.httpResponse)],
        ["GET /api/v5/market/ticker", answer(okx.fetchTicker.httpResponse)],
        ["GET /api/v5/account/balance", answer(okx.fetchBalance.httpResponse)],
        ["POST /api/v5/trade/batch-orders", answer(okx.createOrder.httpResponse)],
        ["GET /api/v5/trade/order", answer(okx.fetchOrder.httpResponse)],
        ["GET /api/v5/trade/fills-history", answer(okx.fetchMyTrades.httpResponse)],
      ],
    });
  }

  it("parses recorded 1h candles (newest first on the wire) into ascending candles", async () => {
    const { exchange } = stub();
    const rows = await exchange.fetchOHLCV("BTC/USDT", "1h", 1706628191000, 3);
    expect(toCandles(rows, TIMEFRAME_MS["1h"], 1706628191000, 3, NOW)).toEqual([
      { openTime: 1706630400000, open: 43377.1, high: 43500, low: 43220.9, close: 43495.9, volume: 7137.30786672, isClosed: true },
      { openTime: 1706634000000, open: 43495.9, high: 43591.7, low: 43300, close: 43398.6, volume: 4492.95408114, isClosed: true },
      { openTime: 1706637600000, open: 43398.6, high: 43493.9, low: 43279.9, close: 43373.9, volume: 5070.79611732, isClosed: true },
    ]);
  });

  it("parses the recorded trading-account balance", async () => {
    const { exchange } = stub();
    expect(toBalances(await exchange.fetchBalance())).toEqual([
      { currency: "TUSD", free: 3000, used: 0, total: 3000 },
      { currency: "BTC", free: 0.6612664522199999, used: 0.4000000000000001, total: 1.06126645222 },
      { currency: "USDC", free: 2973.521, used: 0, total: 2973.521 },
    ]);
  });

  it("createOrder sends our clientOrderId as clOrdId (no broker tag) and gets back only the ids", async () => {
    const { exchange, calls } = stub();
    // okx answers a spot and a swap order alike (ordId, clOrdId, sCode); the recorded answer is a swap order's.
    const order = await exchange.createOrder("BTC/USDT", "market", "sell", 0.001, undefined, { clientOrderId: CLIENT_ORDER_ID });
    const [request] = [jsonBody(sent(calls, "POST", "/api/v5/trade/batch-orders"))].flat();
    expect(request).toMatchObject({ instId: "BTC-USDT", side: "sell", ordType: "market", sz: "0.001", tdMode: "cash", clOrdId: CLIENT_ORDER_ID });
    expect(request).not.toHaveProperty("tag");
    expect(facts(order)).toEqual({ id: "2896576259728695296", clientOrderId: "6b9ad766b55dBCDE63969a1144bfb943", status: undefined, filled: undefined, average: undefined, fees: [] });
  });

  it("fetchOrder gives the filled market buy with its fee in the base currency, as a positive cost", async () => {
    const { exchange, calls } = stub();
    const order = await exchange.fetchOrder("1339107111507525632", "LTC/USDT");
    expect(facts(order)).toEqual({ id: "1339107111507525632", clientOrderId: "e847386590ce4dBC6f7ae74854f6a617", status: "closed", filled: 0.1, average: 101.58, fees: [{ cost: 0.0001, currency: "LTC" }] });
    expect(sent(calls, "GET", "/api/v5/trade/order").query.get("ordId")).toBe("1339107111507525632");
  });

  it("fetchOrder by client order id sends clOrdId instead of ordId", async () => {
    const { exchange, calls } = stub();
    await exchange.fetchOrder("", "LTC/USDT", { clientOrderId: CLIENT_ORDER_ID });
    const query = sent(calls, "GET", "/api/v5/trade/order").query;
    expect(query.get("clOrdId")).toBe(CLIENT_ORDER_ID);
    expect(query.has("ordId")).toBe(false);
  });

  it("parses a recorded spot trade (okx's negative fee becomes a positive cost)", async () => {
    const { exchange } = stub();
    const trade = only(await exchange.fetchMyTrades(undefined, undefined, 1));
    expect([trade.id, trade.order, trade.symbol, trade.amount, trade.price, trade.fee]).toEqual(["56181695", "639895991331667968", "LTC/USDT", 0.1, 67.84, { cost: 0.0001, currency: "LTC" }]);
  });

  describe("LiveBroker", () => {
    const [filledBuy] = okx.fetchOrder.httpResponse.data;
    if (!filledBuy) throw new Error("fixture has no okx order");
    type OkxOrder = typeof filledBuy;
    const envelope = (data: readonly OkxOrder[]) => ({ ...okx.fetchOrder.httpResponse, data });

    /** GET /api/v5/trade/order: the `known` order asked for by ordId or clOrdId, else okx's 51603 "Order does not exist". */
    function orderEndpoint(known: readonly OkxOrder[]) {
      return (call: RecordedCall) => {
        const order = known.find((candidate) => candidate.ordId === call.query.get("ordId") || candidate.clOrdId === call.query.get("clOrdId"));
        return order ? envelope([order]) : { code: "51603", data: [], msg: "Order does not exist" };
      };
    }

    /** The recorded create answer (ids only, of a swap order; okx answers spot alike) naming the order whose fill is recorded. */
    const created = { ...okx.createOrder.httpResponse, data: okx.createOrder.httpResponse.data.map((ids) => ({ ...ids, ordId: filledBuy.ordId, clOrdId: CLIENT_ORDER_ID })) };

    it("places a market buy by base amount under clOrdId and completes the ids-only answer with fetchOrder; the negative fee is a positive cost in the base coin", async () => {
      const { exchange, calls, route } = stub();
      route("POST /api/v5/trade/batch-orders", answer(created));
      route("GET /api/v5/trade/order", orderEndpoint([filledBuy]));
      const report = await liveBroker(exchange).broker.placeOrder(marketOrder("LTC/USDT", "buy", 0.1, 101.58));
      const [request] = [jsonBody(sent(calls, "POST", "/api/v5/trade/batch-orders"))].flat();
      expect(request).toMatchObject({ instId: "LTC-USDT", side: "buy", ordType: "market", tgtCcy: "base_ccy", sz: "0.1", clOrdId: CLIENT_ORDER_ID });
      expect(request).not.toHaveProperty("px");
      expect(sent(calls, "GET", "/api/v5/trade/order").query.get("ordId")).toBe("1339107111507525632");
      expect(report).toEqual({
        status: "filled",
        exchangeOrderId: "1339107111507525632",
        filledAmount: 0.1,
        averagePrice: 101.58,
        filledCost: 10.158,
        feeQuote: expect.closeTo(0.0001 * 101.58, 12),
        feeBase: 0.0001,
        fees: [{ currency: "LTC", cost: 0.0001, quoteValue: expect.closeTo(0.0001 * 101.58, 12) }],
        error: null,
        time: new Date(1712410901850),
      });
    });

    it("an IOC order that filled in part ends canceled, with what it filled", async () => {
      const { exchange, route } = stub();
      route("POST /api/v5/trade/batch-orders", answer(created));
      // okx's state for a market order of 0.2 that filled 0.1: the recorded order with sz and state changed.
      route("GET /api/v5/trade/order", orderEndpoint([{ ...filledBuy, sz: "0.2", state: "canceled" }]));
      const report = await liveBroker(exchange).broker.placeOrder(marketOrder("LTC/USDT", "buy", 0.2, 101.58));
      expect(report).toMatchObject({ status: "canceled", filledAmount: 0.1, averagePrice: 101.58, feeBase: 0.0001 });
    });

    it("looks a lost order up by clOrdId; one okx does not know is undefined", async () => {
      const { exchange, calls, route } = stub();
      route("GET /api/v5/trade/order", orderEndpoint([filledBuy]));
      route("GET /api/v5/trade/orders-history", answer(envelope([])));
      route("GET /api/v5/trade/orders-pending", answer(envelope([])));
      const { broker } = liveBroker(exchange);
      const found = await broker.lookupOrder(lookupOf(marketOrder("LTC/USDT", "buy", 0.1, 101.58, filledBuy.clOrdId), null));
      expect(found).toMatchObject({ status: "filled", exchangeOrderId: "1339107111507525632", filledAmount: 0.1, averagePrice: 101.58, feeBase: 0.0001 });
      await expect(broker.lookupOrder(lookupOf(marketOrder("LTC/USDT", "buy", 0.1, 101.58), null))).resolves.toBeUndefined();
      expect(callsTo(calls, "GET", "/api/v5/trade/order").map((call) => [call.query.get("clOrdId"), call.query.has("ordId")])).toEqual([
        [filledBuy.clOrdId, false],
        [CLIENT_ORDER_ID, false],
      ]);
      expect(callsTo(calls, "GET", "/api/v5/trade/orders-history")).toHaveLength(1);
      expect(callsTo(calls, "GET", "/api/v5/trade/orders-pending")).toHaveLength(1);
    });

    it("an order refused for its balance (sCode 51008, sent with HTTP 200) is an OrderRefusedError", async () => {
      const { exchange, route } = stub();
      route(
        "POST /api/v5/trade/batch-orders",
        answer({ code: "1", data: [{ clOrdId: CLIENT_ORDER_ID, ordId: "", sCode: "51008", sMsg: "Order failed. Insufficient USDT balance in account.", tag: "" }], msg: "All operations failed" }),
      );
      const attempt = liveBroker(exchange).broker.placeOrder(marketOrder("LTC/USDT", "buy", 1000, 101.58));
      await expect(attempt).rejects.toBeInstanceOf(OrderRefusedError);
      await expect(attempt).rejects.toThrow(/InsufficientFunds: .*Insufficient USDT balance/);
    });
  });
});

describe("kraken (recorded responses)", () => {
  function stub() {
    return stubbedExchange("kraken", {
      markets: kraken.markets,
      withKeys: true,
      routes: [
        ["GET /0/public/OHLC", answer(kraken.fetchOHLCV.httpResponse)],
        ["GET /0/public/Ticker", answer(kraken.fetchTicker.httpResponse)],
        ["POST /0/private/AddOrder", answer(kraken.createOrder.httpResponse)],
        ["POST /0/private/QueryOrders", answer(kraken.fetchOrder.httpResponse)],
        ["POST /0/private/OpenOrders", answer(kraken.fetchOpenOrders.httpResponse)],
        ["POST /0/private/ClosedOrders", answer(kraken.fetchClosedOrders.httpResponse)],
        ["POST /0/private/CancelOrder", answer(kraken.cancelOrder.httpResponse)],
      ],
    });
  }

  it("parses recorded 1h candles, dropping the one before `since`", async () => {
    const { exchange } = stub();
    const rows = await exchange.fetchOHLCV("BTC/USDT", "1h", 1706628191000, 3);
    expect(toCandles(rows, TIMEFRAME_MS["1h"], 1706628191000, 3, NOW)).toEqual([
      { openTime: 1706630400000, open: 43366.3, high: 43529.2, low: 43234.2, close: 43485, volume: 12.51327406, isClosed: true },
      { openTime: 1706634000000, open: 43497.5, high: 43594.6, low: 43316.4, close: 43409.5, volume: 5.03074129, isClosed: true },
      { openTime: 1706637600000, open: 43398.3, high: 43500.5, low: 42983.1, close: 43386.6, volume: 81.88339686, isClosed: true },
    ]);
  });

  it("createOrder sends our clientOrderId as cl_ord_id and gets back only the txid", async () => {
    const { exchange, calls } = stub();
    const order = await exchange.createOrder("LTC/USDT", "market", "buy", 0.1, undefined, { clientOrderId: CLIENT_ORDER_ID });
    const form = new URLSearchParams(sent(calls, "POST", "/0/private/AddOrder").body);
    expect([form.get("cl_ord_id"), form.get("type"), form.get("ordertype"), form.get("volume")]).toEqual([CLIENT_ORDER_ID, "buy", "market", "0.1"]);
    expect(facts(order)).toEqual({ id: "OL7LNO-R4SAD-6UINEU", clientOrderId: undefined, status: undefined, filled: undefined, average: undefined, fees: [] });
  });

  it("fetchOrder gives the closed market buy; its fee is a number in `fees` but a string in `fee`", async () => {
    const { exchange } = stub();
    const order = await exchange.fetchOrder("OGMZCL-KC6MC-ZRBGM6", "LTC/USDT");
    expect(facts(order)).toEqual({ id: "OGMZCL-KC6MC-ZRBGM6", clientOrderId: "0", status: "closed", filled: 0.1, average: 71.05741, fees: [{ cost: 0.018475, currency: "USDT" }] });
    expect(order.fee?.cost).toBe("0.018475");
  });

  it("open and closed orders are found by client order id (cl_ord_id)", async () => {
    const { exchange, calls } = stub();
    const open = only(await exchange.fetchOpenOrders("LTC/USDT", undefined, undefined, { clientOrderId: "123" }));
    const closed = only(await exchange.fetchClosedOrders("LTC/USDT", undefined, 1, { clientOrderId: "123" }));
    expect(facts(open)).toEqual({ id: "O2F2HY-QIPHF-4UCMSW", clientOrderId: "123", status: "open", filled: 0, average: undefined, fees: [{ cost: 0, currency: "USDT" }] });
    expect(facts(closed)).toMatchObject({ id: "O2F2HY-QIPHF-4UCMSW", clientOrderId: "123", status: "canceled", filled: 0 });
    for (const path of ["/0/private/OpenOrders", "/0/private/ClosedOrders"]) expect(new URLSearchParams(sent(calls, "POST", path).body).get("cl_ord_id")).toBe("123");
  });

  it("cancelOrder by client order id sends cl_ord_id", async () => {
    const { exchange, calls } = stub();
    await exchange.cancelOrder("O45M52-BFD55-YXKQOU", "BTC/USDT", { clientOrderId: "1234" });
    expect(new URLSearchParams(sent(calls, "POST", "/0/private/CancelOrder").body).get("cl_ord_id")).toBe("1234");
  });

  describe("LiveBroker", () => {
    const closedBuyId = "OGMZCL-KC6MC-ZRBGM6";
    const closedBuy = kraken.fetchOrder.httpResponse.result[closedBuyId];
    /** The recorded create answer (txid only) naming the order whose fill is recorded: the two recordings are of different orders. */
    const created = { ...kraken.createOrder.httpResponse, result: { ...kraken.createOrder.httpResponse.result, txid: [closedBuyId] } };
    const queried = (order: typeof closedBuy) => ({ ...kraken.fetchOrder.httpResponse, result: { [closedBuyId]: order } });
    const clientIdOf = (call: RecordedCall) => new URLSearchParams(call.body).get("cl_ord_id");

    it("places a market buy by base amount under cl_ord_id and completes the txid-only answer with fetchOrder; the fee is in the quote", async () => {
      const { exchange, calls, route } = stub();
      route("POST /0/private/AddOrder", answer(created));
      const report = await liveBroker(exchange).broker.placeOrder(marketOrder("LTC/USDT", "buy", 0.1, 71.05741));
      const form = new URLSearchParams(sent(calls, "POST", "/0/private/AddOrder").body);
      expect([form.get("type"), form.get("ordertype"), form.get("volume"), form.get("cl_ord_id"), form.has("price"), form.has("oflags")]).toEqual(["buy", "market", "0.1", CLIENT_ORDER_ID, false, false]);
      expect(new URLSearchParams(sent(calls, "POST", "/0/private/QueryOrders").body).get("txid")).toBe(closedBuyId);
      expect(report).toEqual({
        status: "filled",
        exchangeOrderId: closedBuyId,
        filledAmount: 0.1,
        averagePrice: 71.05741,
        filledCost: 7.105741,
        feeQuote: 0.018475,
        feeBase: 0,
        fees: [{ currency: "USDT", cost: 0.018475, quoteValue: 0.018475 }],
        error: null,
        time: new Date(1705260547472),
      });
    });

    it("counts the fee ccxt leaves as a string in `fee` when it is the only one", async () => {
      const { exchange } = stub();
      const order = await exchange.fetchOrder(closedBuyId, "LTC/USDT");
      expect(order.fee?.cost).toBe("0.018475");
      expect(feesOf({ fee: order.fee, trades: order.trades })).toEqual([{ cost: 0.018475, currency: "USDT" }]);
    });

    it("an IOC order that filled in part ends canceled, with what it filled", async () => {
      const { exchange, route } = stub();
      route("POST /0/private/AddOrder", answer(created));
      // kraken's record of a market order of 0.2 that filled 0.1: the recorded order with vol and status changed.
      route("POST /0/private/QueryOrders", answer(queried({ ...closedBuy, vol: "0.20000000", status: "canceled" })));
      const report = await liveBroker(exchange).broker.placeOrder(marketOrder("LTC/USDT", "buy", 0.2, 71.05741));
      expect(report).toMatchObject({ status: "canceled", filledAmount: 0.1, averagePrice: 71.05741, feeQuote: 0.018475 });
    });

    it("looks a lost order up in the lists filtered by cl_ord_id; one kraken does not know is undefined", async () => {
      const { exchange, calls, route } = stub();
      const [recordedId] = Object.keys(kraken.fetchClosedOrders.httpResponse.result.closed);
      route("POST /0/private/ClosedOrders", (call) => (clientIdOf(call) === "123" ? kraken.fetchClosedOrders.httpResponse : { error: [], result: { closed: {}, count: 0 } }));
      route("POST /0/private/OpenOrders", (call) => (clientIdOf(call) === "123" ? kraken.fetchOpenOrders.httpResponse : { error: [], result: { open: {} } }));
      const { broker } = liveBroker(exchange);
      // The recorded order with cl_ord_id 123: a limit buy of 0.2, cancelled with nothing filled, placed at 1733920032.330449.
      const found = await broker.lookupOrder(lookupOf(marketOrder("LTC/USDT", "buy", 0.2, 50, "123"), null, 1733920032330));
      expect(found).toMatchObject({ status: "canceled", exchangeOrderId: recordedId, filledAmount: 0, averagePrice: null, fees: [] });
      await expect(broker.lookupOrder(lookupOf(marketOrder("LTC/USDT", "buy", 0.2, 50), null))).resolves.toBeUndefined();
      expect(callsTo(calls, "POST", "/0/private/ClosedOrders").map(clientIdOf)).toEqual(["123", CLIENT_ORDER_ID]);
      expect(callsTo(calls, "POST", "/0/private/OpenOrders").map(clientIdOf)).toEqual([CLIENT_ORDER_ID]);
      // kraken's fetchOrder would read our id as its integer userref: it is not asked.
      expect(callsTo(calls, "POST", "/0/private/QueryOrders")).toHaveLength(0);
    });

    it("an order refused for its balance (EOrder:Insufficient funds, sent with HTTP 200) is an OrderRefusedError", async () => {
      const { exchange, route } = stub();
      route("POST /0/private/AddOrder", answer({ error: ["EOrder:Insufficient funds"] }));
      const attempt = liveBroker(exchange).broker.placeOrder(marketOrder("LTC/USDT", "buy", 1000, 71.05741));
      await expect(attempt).rejects.toBeInstanceOf(OrderRefusedError);
      await expect(attempt).rejects.toThrow(/InsufficientFunds: .*EOrder:Insufficient funds/);
    });
  });
});

describe("gate (recorded spot responses)", () => {
  // gate answers createOrder and fetchOrder with the same spot Order object it lists in
  // fetchClosedOrders, so the recorded filled market buy stands in for both.
  const [closedMarketBuy] = gate.fetchClosedOrders.httpResponse;

  function stub() {
    return stubbedExchange("gate", {
      markets: gate.markets,
      withKeys: true,
      // A classic spot account; without it ccxt first asks /api/v4/account/detail for the unified-account mode.
      options: { unifiedAccount: false },
      routes: [
        ["GET /api/v4/spot/candlesticks", answer(gate.fetchOHLCV.httpResponse)],
        ["GET /api/v4/spot/tickers", answer(gate.fetchTicker.httpResponse)],
        ["GET /api/v4/spot/orders", answer(gate.fetchClosedOrders.httpResponse)],
        ["GET /api/v4/spot/open_orders", answer(gate.fetchOpenOrders.httpResponse)],
        ["GET /api/v4/spot/my_trades", answer(gate.fetchMyTrades.httpResponse)],
        ["POST /api/v4/spot/orders", answer(closedMarketBuy)],
        ["GET /api/v4/spot/orders/497245022561", answer(closedMarketBuy)],
        [`GET /api/v4/spot/orders/t-${CLIENT_ORDER_ID}`, answer(closedMarketBuy)],
      ],
    });
  }

  it("parses a recorded 1h candle (gate sends volume before the prices)", async () => {
    const { exchange } = stub();
    const rows = await exchange.fetchOHLCV("BTC/USDT", "1h", undefined, 1);
    expect(toCandles(rows, TIMEFRAME_MS["1h"], undefined, 1, NOW)).toEqual([{ openTime: 1710327600000, open: 73236.9, high: 73435.8, low: 73236.3, close: 73408.9, volume: 13.53020576, isClosed: true }]);
  });

  it("a market buy needs a price (or a cost); the amount sent is the quote cost, and our id gets gate's t- prefix", async () => {
    const { exchange, calls } = stub();
    await expect(exchange.createOrder("LTC/USDT", "market", "buy", 0.0735)).rejects.toThrow(/createMarketBuyOrderRequiresPrice/);
    await exchange.createOrder("LTC/USDT", "market", "buy", 0.0735, 68.02);
    const order = await exchange.createOrder("LTC/USDT", "market", "buy", 0.0735, undefined, { cost: 5, clientOrderId: CLIENT_ORDER_ID });
    const [byPrice, byCost] = calls.filter((call) => call.path === "/api/v4/spot/orders").map(jsonBody);
    // amount × price = 4.99947 USDT, cut down to the market's price precision (0.01).
    expect(byPrice).toMatchObject({ currency_pair: "LTC_USDT", side: "buy", type: "market", time_in_force: "ioc", amount: "4.99" });
    expect(byCost).toMatchObject({ side: "buy", type: "market", amount: "5", text: `t-${CLIENT_ORDER_ID}` });
    expect(facts(order)).toEqual({
      id: "497245022561",
      clientOrderId: "apiv4",
      status: "closed",
      filled: 0.07349286974419289,
      average: 68.02,
      fees: [
        { cost: 0, currency: "GT" },
        { cost: 0.000147, currency: "LTC" },
        { cost: 0, currency: "USDT" },
      ],
    });
  });

  it("a client order id longer than 28 characters is refused before sending", async () => {
    const { exchange, calls } = stub();
    await expect(exchange.createOrder("LTC/USDT", "market", "sell", 0.1, undefined, { clientOrderId: "c".repeat(29) })).rejects.toThrow(/28 characters/);
    expect(calls).toEqual([]);
  });

  it("fetchOrder by id or client order id, and the closed/open order lists, parse the recorded orders", async () => {
    const { exchange } = stub();
    expect(facts(await exchange.fetchOrder("497245022561", "LTC/USDT"))).toMatchObject({ id: "497245022561", status: "closed", filled: 0.07349286974419289, average: 68.02 });
    // By client order id ccxt asks for the order named t-<id>, as gate stored it.
    expect(facts(await exchange.fetchOrder("", "LTC/USDT", { clientOrderId: CLIENT_ORDER_ID }))).toMatchObject({ id: "497245022561" });
    expect(facts(only(await exchange.fetchClosedOrders("LTC/USDT", undefined, 1)))).toMatchObject({ id: "497245022561", clientOrderId: "apiv4", status: "closed" });
    expect(facts(only(await exchange.fetchOpenOrders("BTC/USDT")))).toMatchObject({ id: "700604309511", clientOrderId: "web", status: "open", filled: 0 });
  });

  it("parses recorded trades with their fees in the bought currency", async () => {
    const { exchange } = stub();
    const trades = await exchange.fetchMyTrades("LTC/USDT");
    expect(trades.map((trade) => [trade.id, trade.order, trade.amount, trade.price, trade.fee])).toEqual([
      ["7342180136", "497245022561", 0.0485, 68.01, { cost: 0.000097, currency: "LTC" }],
      ["7342180137", "497245022561", 0.025, 68.02, { cost: 0.00005, currency: "LTC" }],
    ]);
  });

  describe("LiveBroker", () => {
    if (!closedMarketBuy) throw new Error("fixture has no gate order");
    /** The recorded buy as gate stores an order we placed: our id in `text` with its t- prefix. */
    const ours = { ...closedMarketBuy, text: `t-${CLIENT_ORDER_ID}` };
    const recordedTime = Number(closedMarketBuy.create_time_ms);

    it("places a market buy as the quote to spend (amount × price) under text t-<id>; a buy by cost that gate calls filled is filled", async () => {
      const { exchange, calls, route } = stub();
      route("POST /api/v4/spot/orders", answer(ours));
      const report = await liveBroker(exchange).broker.placeOrder(marketOrder("LTC/USDT", "buy", 0.0735, 68.02));
      // 0.0735 × 68.02 = 4.99947 USDT, cut to the market's price precision.
      expect(jsonBody(sent(calls, "POST", "/api/v4/spot/orders"))).toMatchObject({ currency_pair: "LTC_USDT", side: "buy", type: "market", time_in_force: "ioc", amount: "4.99", text: `t-${CLIENT_ORDER_ID}` });
      // The recorded answer is a 5 USDT buy: 0.07349… LTC at 68.02, a touch under the amount sized at that price, and still all of it.
      expect(report).toEqual({
        status: "filled",
        exchangeOrderId: "497245022561",
        filledAmount: 0.07349286974419289,
        averagePrice: 68.02,
        filledCost: 5,
        feeQuote: expect.closeTo(0.000147 * 68.02, 12),
        feeBase: 0.000147,
        // gate lists GT, LTC and USDT fees; the zero ones are left out.
        fees: [{ currency: "LTC", cost: 0.000147, quoteValue: expect.closeTo(0.000147 * 68.02, 12) }],
        error: null,
        time: new Date(1706382263841),
      });
    });

    it("an IOC buy that did not spend all (finish_as ioc) ends canceled, with what it filled", async () => {
      const { exchange, route } = stub();
      // gate's record of an IOC order cut short: the recorded order with finish_as changed.
      route("POST /api/v4/spot/orders", answer({ ...ours, finish_as: "ioc" }));
      const report = await liveBroker(exchange).broker.placeOrder(marketOrder("LTC/USDT", "buy", 0.0735, 68.02));
      expect(report).toMatchObject({ status: "canceled", filledAmount: 0.07349286974419289, averagePrice: 68.02, feeBase: 0.000147 });
    });

    it("looks a lost order up as the order named t-<id>; one gate does not know is undefined", async () => {
      const { exchange, calls, route } = stub();
      const unknown = "ck0000000000000000";
      route(`GET /api/v4/spot/orders/t-${CLIENT_ORDER_ID}`, answer(ours));
      route(`GET /api/v4/spot/orders/t-${unknown}`, answerError(404, { label: "ORDER_NOT_FOUND", message: "Order not found" }));
      const { broker } = liveBroker(exchange);
      const found = await broker.lookupOrder(lookupOf(marketOrder("LTC/USDT", "buy", 0.0735, 68.02), null, recordedTime));
      expect(found).toMatchObject({ status: "filled", exchangeOrderId: "497245022561", filledAmount: 0.07349286974419289, averagePrice: 68.02 });
      // Not found by name, and not among the recorded closed and open orders (text apiv4, web).
      await expect(broker.lookupOrder(lookupOf(marketOrder("LTC/USDT", "buy", 0.0735, 68.02, unknown), null, recordedTime))).resolves.toBeUndefined();
      expect(callsTo(calls, "GET", "/api/v4/spot/orders").map((call) => call.query.get("status"))).toEqual(["finished"]);
      expect(callsTo(calls, "GET", "/api/v4/spot/open_orders")).toHaveLength(1);
    });

    it("matches its order in the lists by t-<id> too (gate gives our id back prefixed)", async () => {
      const { exchange, route } = stub();
      // Only the lists to search: fetchOrder switched off.
      exchange.has.fetchOrder = false;
      route("GET /api/v4/spot/orders", answer([ours]));
      const found = await liveBroker(exchange).broker.lookupOrder(lookupOf(marketOrder("LTC/USDT", "buy", 0.0735, 68.02), null, recordedTime));
      expect(found).toMatchObject({ status: "filled", exchangeOrderId: "497245022561", filledAmount: 0.07349286974419289 });
    });

    it("an order refused for its balance (BALANCE_NOT_ENOUGH) is an OrderRefusedError", async () => {
      const { exchange, route } = stub();
      route("POST /api/v4/spot/orders", answerError(400, { label: "BALANCE_NOT_ENOUGH", message: "Not enough balance" }));
      const attempt = liveBroker(exchange).broker.placeOrder(marketOrder("LTC/USDT", "buy", 1000, 68.02));
      await expect(attempt).rejects.toBeInstanceOf(OrderRefusedError);
      await expect(attempt).rejects.toThrow(/InsufficientFunds: .*BALANCE_NOT_ENOUGH/);
    });
  });
});

describe("coinbase (recorded Advanced Trade responses)", () => {
  const [closedMarketSell] = coinbase.fetchClosedOrders.httpResponse.orders;

  function stub() {
    return stubbedExchange("coinbase", {
      markets: coinbase.markets,
      withKeys: true,
      routes: [
        ["GET /api/v3/brokerage/market/products/BTC-USDC/ticker", answer(coinbase.fetchTicker.httpResponse)],
        ["GET /v2/accounts", answer(coinbase.fetchBalance.httpResponse)],
        ["GET /api/v3/brokerage/orders/historical/batch", answer(coinbase.fetchClosedOrders.httpResponse)],
        ["GET /api/v3/brokerage/orders/historical/fills", answer(coinbase.fetchMyTrades.httpResponse)],
        // coinbase's get-order answer wraps the same order object as the list in {"order": …}.
        ["GET /api/v3/brokerage/orders/historical/01b6e467-b659-432f-9490-c7cefe949564", answer({ order: closedMarketSell })],
      ],
    });
  }

  it("parses the recorded balance, adding up two wallets of the same currency", async () => {
    const { exchange } = stub();
    expect(toBalances(await exchange.fetchBalance({ limit: 3 }))).toEqual([{ currency: "ADA", free: 27.361178, used: 0, total: 27.361178 }]);
  });

  it("parses the recorded ticker", async () => {
    const { exchange } = stub();
    const ticker = await exchange.fetchTicker("BTC/USDC");
    expect([ticker.last, ticker.bid, ticker.ask, ticker.timestamp]).toEqual([66363.03, 66367.58, 66367.59, 1713952598063]);
  });

  it("the closed market sell parses from the list and by id, its total_fees as the quote fee", async () => {
    const { exchange } = stub();
    const expected = { id: "01b6e467-b659-432f-9490-c7cefe949564", clientOrderId: "a0f970a2-05fa-4e1f-9517-f6702c33cfd1", status: "closed", filled: 10, average: 0.392, fees: [{ cost: 0.03136, currency: "USDT" }] };
    expect(facts(only(await exchange.fetchClosedOrders("ADA/USDT", undefined, 1)))).toEqual(expected);
    expect(facts(await exchange.fetchOrder("01b6e467-b659-432f-9490-c7cefe949564", "ADA/USDT"))).toEqual(expected);
  });

  it("createOrder ignores the unified clientOrderId; only client_order_id reaches coinbase", async () => {
    const { exchange } = stub();
    // No createOrder answer is recorded for coinbase, so the request is stopped once sent.
    const stop = new Error("request recorded");
    const refuse = () => {
      throw stop;
    };
    const orders = stubbedExchange("coinbase", { markets: coinbase.markets, withKeys: true, routes: [["POST /api/v3/brokerage/orders", refuse]] });
    await expect(orders.exchange.createOrder("ADA/USDT", "market", "sell", 10, undefined, { clientOrderId: CLIENT_ORDER_ID })).rejects.toThrow(stop.message);
    await expect(orders.exchange.createOrder("ADA/USDT", "market", "sell", 10, undefined, { client_order_id: CLIENT_ORDER_ID })).rejects.toThrow(stop.message);
    const [unified, raw] = orders.calls.map(jsonBody);
    expect(unified).toMatchObject({ product_id: "ADA-USDT", side: "SELL", order_configuration: { market_market_ioc: { base_size: "10" } } });
    expect(Reflect.get(Object(unified), "client_order_id")).toMatch(/^ccxt-[0-9a-f-]{36}$/);
    expect(raw).toMatchObject({ client_order_id: CLIENT_ORDER_ID });
    await expect(exchange.createOrder("ADA/USDT", "market", "buy", 10)).rejects.toThrow(/createMarketBuyOrderRequiresPrice/);
  });

  it("parses the recorded fill", async () => {
    const { exchange } = stub();
    const trade = only(await exchange.fetchMyTrades("ADA/USDT", undefined, 1));
    expect([trade.id, trade.order, trade.amount, trade.price, trade.fee]).toEqual(["19fc7eee-f4b4-40a7-8104-033da1db5311", "01b6e467-b659-432f-9490-c7cefe949564", 10, 0.392, { cost: 0.03136, currency: "USDT" }]);
  });

  describe("LiveBroker", () => {
    if (!closedMarketSell) throw new Error("fixture has no coinbase order");
    const createdAt = Date.parse(closedMarketSell.created_time);

    /** coinbase's answer to a placed order (its shape as ccxt's createOrder documents it), naming the order whose fill is recorded. */
    const created = {
      success: true,
      failure_reason: "UNKNOWN_FAILURE_REASON",
      order_id: closedMarketSell.order_id,
      success_response: { order_id: closedMarketSell.order_id, product_id: "ADA-USDT", side: "SELL", client_order_id: CLIENT_ORDER_ID },
      order_configuration: null,
    };

    it("places a market sell under client_order_id and completes the answer with fetchOrder; total_fees is the quote fee", async () => {
      const { exchange, calls, route } = stub();
      route("POST /api/v3/brokerage/orders", answer(created));
      const report = await liveBroker(exchange).broker.placeOrder(marketOrder("ADA/USDT", "sell", 10, 0.392));
      expect(jsonBody(sent(calls, "POST", "/api/v3/brokerage/orders"))).toEqual({ client_order_id: CLIENT_ORDER_ID, product_id: "ADA-USDT", side: "SELL", order_configuration: { market_market_ioc: { base_size: "10" } } });
      expect(report).toEqual({
        status: "filled",
        exchangeOrderId: "01b6e467-b659-432f-9490-c7cefe949564",
        filledAmount: 10,
        averagePrice: 0.392,
        filledCost: 3.92,
        feeQuote: 0.03136,
        feeBase: 0,
        fees: [{ currency: "USDT", cost: 0.03136, quoteValue: 0.03136 }],
        error: null,
        time: new Date(createdAt),
      });
    });

    it("places a market buy as the quote to spend (amount × price) under client_order_id; refused for its balance it is an OrderRefusedError", async () => {
      const { exchange, calls, route } = stub();
      // No coinbase buy is recorded: this one is refused, in the failed-order shape ccxt's createOrder documents.
      route(
        "POST /api/v3/brokerage/orders",
        answer({
          success: false,
          failure_reason: "UNKNOWN_FAILURE_REASON",
          order_id: "",
          error_response: { error: "INSUFFICIENT_FUND", message: "Insufficient balance in source account", error_details: "", preview_failure_reason: "PREVIEW_INSUFFICIENT_FUND" },
          order_configuration: { market_market_ioc: { quote_size: "3.92" } },
        }),
      );
      const attempt = liveBroker(exchange).broker.placeOrder(marketOrder("ADA/USDT", "buy", 10, 0.392));
      await expect(attempt).rejects.toBeInstanceOf(OrderRefusedError);
      await expect(attempt).rejects.toThrow(/InsufficientFunds: .*Insufficient balance in source account/);
      expect(jsonBody(sent(calls, "POST", "/api/v3/brokerage/orders"))).toEqual({ client_order_id: CLIENT_ORDER_ID, product_id: "ADA-USDT", side: "BUY", order_configuration: { market_market_ioc: { quote_size: "3.92" } } });
    });

    it("an IOC order that filled in part ends canceled, with what it filled", async () => {
      const { exchange, route } = stub();
      route("POST /api/v3/brokerage/orders", answer(created));
      // coinbase's record of a market sell of 20 that filled 10: the recorded order with base_size and status changed.
      const cut = { ...closedMarketSell, order_configuration: { market_market_ioc: { base_size: "20" } }, status: "CANCELLED" };
      route(`GET /api/v3/brokerage/orders/historical/${closedMarketSell.order_id}`, answer({ order: cut }));
      const report = await liveBroker(exchange).broker.placeOrder(marketOrder("ADA/USDT", "sell", 20, 0.392));
      expect(report).toMatchObject({ status: "canceled", filledAmount: 10, averagePrice: 0.392, feeQuote: 0.03136 });
    });

    it("looks a lost order up among its recent orders by client_order_id (coinbase cannot be asked for it); one not there is undefined", async () => {
      const { exchange, calls } = stub();
      const { broker } = liveBroker(exchange);
      const found = await broker.lookupOrder(lookupOf(marketOrder("ADA/USDT", "sell", 10, 0.392, closedMarketSell.client_order_id), null, createdAt));
      expect(found).toMatchObject({ status: "filled", exchangeOrderId: "01b6e467-b659-432f-9490-c7cefe949564", filledAmount: 10, averagePrice: 0.392, feeQuote: 0.03136 });
      await expect(broker.lookupOrder(lookupOf(marketOrder("ADA/USDT", "sell", 10, 0.392), null, createdAt))).resolves.toBeUndefined();
      expect(callsTo(calls, "GET", "/api/v3/brokerage/orders/historical/batch")).toHaveLength(2);
    });
  });
});
