import { TIMEFRAME_MS, alignToTimeframe, silentLogger } from "@candlekeep/core";
import { latestTradeEntries, listOpenPositions, listOrders, listTrades, listUnsettledOrders, recordOrderIntent, type EventInput } from "@candlekeep/db";
import { openTestDatabase } from "@candlekeep/db/testing";
import ccxt from "ccxt";
import { CcxtMarketData } from "../exchange/ccxt";
import { binanceOrderEndpoint, fullMarketOrderResponse, stubbedBinance } from "../exchange/fixtures/binance";
import { LiveBroker } from "../exchange/live";
import { PaperBroker } from "../exchange/paper";
import { SimExchange } from "../exchange/sim";
import type { Broker, MarketData, OrderReport, OrderRequest } from "../exchange/types";
import { entryOrderId } from "../orders/client-order-id";
import type { Decision } from "../strategy/types";
import { PositionManager, type CoinMarket, type PositionOutcome } from "./manager";

const SYMBOL = "BTC/USDT";
const M15 = TIMEFRAME_MS["15m"];
/** Seven minutes into a 15m candle, in the past so the sim's clock can step forward. */
const START = Date.UTC(2026, 10, 18, 12, 7);
const RULES = { quoteCurrency: "USDT", riskPerTrade: 0.01, maxPositionFraction: 0.1, feeRate: 0.001 };
const BELOW_MINIMUM = "order value below the market's minimum of 10 USDT";

/** The coin at `price`, with no candles since the last check (levels are compared with the price alone). */
const at = (price: number): CoinMarket => ({ price, candlesSince: () => [] });

/** A decision on the last 15m candle closed at the sim's current time. */
function decisionAt(sim: SimExchange, action: Decision["action"], price: number): Decision {
  return {
    action,
    reasons: [],
    price,
    candleTime: alignToTimeframe(sim.now(), "15m") - M15,
    indicators: { emaFast: null, emaSlow: null, rsi: null, atr: null },
    takeProfit: action === "BUY" ? price * 1.05 : null,
    stopLoss: action === "BUY" ? price * 0.95 : null,
  };
}

describe("PositionManager on the sim with a paper account (server database)", () => {
  let db: Awaited<ReturnType<typeof openTestDatabase>>;
  beforeEach(async () => {
    db = await openTestDatabase("server");
  });
  afterEach(async () => {
    await db.close();
  });

  const start = () => {
    const sim = new SimExchange({ seed: 1, startTime: START });
    const broker = new PaperBroker({ market: sim, quoteCurrency: "USDT", startingBalance: 10_000 });
    const positions = new PositionManager({ db: async () => db, broker, market: sim, exchange: "sim", mode: "paper", rules: RULES, signalTimeframe: "15m" });
    return { sim, broker, positions };
  };
  const price = async (sim: SimExchange) => (await sim.fetchTicker(SYMBOL)).last;
  const cash = async (broker: PaperBroker) => (await broker.balances()).find((b) => b.currency === "USDT")?.total;
  /** Enters on a BUY, then closes at the stop-loss, all within the signal's candle. */
  const enterAndStopOut = async (sim: SimExchange, positions: PositionManager, events: EventInput[]) => {
    const last = await price(sim);
    const buy = decisionAt(sim, "BUY", last);
    expect((await positions.manage(SYMBOL, buy, at(last), 10_000, events)).kind).toBe("opened");
    const stop = positions.get(SYMBOL)?.stopLoss ?? 0;
    expect((await positions.manage(SYMBOL, decisionAt(sim, "NO_SIGNAL", last), at(stop * 0.99), 10_000, events)).kind).toBe("closed");
    return buy;
  };

  it("does not enter again on a signal it already traded after that position closed, and enters on the next candle's", async () => {
    const { sim, broker, positions } = start();
    const events: EventInput[] = [];
    const buy = await enterAndStopOut(sim, positions, events);
    const cashAfterClose = await cash(broker);

    // The same closed candle still says BUY on the next tick: no second entry (nor a phantom one).
    const again = await positions.manage(SYMBOL, buy, at(buy.price), 10_000, events);
    expect(again).toEqual<PositionOutcome>({ kind: "none", reason: "already entered on this signal's candle" });
    expect(positions.get(SYMBOL)).toBeUndefined();
    expect(await listOpenPositions(db, { exchange: "sim" })).toEqual([]);
    expect(await cash(broker)).toBe(cashAfterClose);
    expect(await listTrades(db, { exchange: "sim" })).toHaveLength(1);

    // A new candle closes with a BUY: a new order, paid from the account.
    sim.advance();
    const last = await price(sim);
    const next = await positions.manage(SYMBOL, decisionAt(sim, "BUY", last), at(last), 10_000, events);
    expect(next.kind).toBe("opened");
    expect(await listOpenPositions(db, { exchange: "sim" })).toHaveLength(1);
    expect(await cash(broker)).toBeLessThan(cashAfterClose ?? 0);
    expect(events.map((e) => e.type)).toEqual(["POSITION_OPENED", "POSITION_CLOSED", "POSITION_OPENED"]);
  });

  it("remembers the traded signal across a restart, from the stored trades", async () => {
    const first = start();
    const buy = await enterAndStopOut(first.sim, first.positions, []);

    const restarted = start();
    restarted.positions.restore(await listOpenPositions(db, { exchange: "sim" }), await latestTradeEntries(db, { exchange: "sim", symbols: [SYMBOL] }));
    const cashBefore = await cash(restarted.broker);
    expect(await restarted.positions.manage(SYMBOL, buy, at(buy.price), 10_000, [])).toEqual<PositionOutcome>({ kind: "none", reason: "already entered on this signal's candle" });
    expect(await cash(restarted.broker)).toBe(cashBefore);
    expect(await listOpenPositions(db, { exchange: "sim" })).toEqual([]);
  });

  describe("the free cash entries are sized from", () => {
    /** The paper account, counting balance readings; `hold` keeps a reading from being answered until released. */
    class CountingBroker extends PaperBroker {
      reads = 0;
      hold: Promise<void> | undefined;
      override async balances() {
        this.reads += 1;
        const balances = await super.balances();
        await this.hold;
        return balances;
      }
    }
    const startCounting = (startingBalance: number) => {
      const sim = new SimExchange({ seed: 1, startTime: START });
      const broker = new CountingBroker({ market: sim, quoteCurrency: "USDT", startingBalance });
      const positions = new PositionManager({ db: async () => db, broker, market: sim, exchange: "sim", mode: "paper", rules: RULES, signalTimeframe: "15m" });
      const buy = async (symbol: string, equity: number) => {
        const last = (await sim.fetchTicker(symbol)).last;
        return positions.manage(symbol, decisionAt(sim, "BUY", last), at(last), equity, []);
      };
      return { sim, broker, positions, buy };
    };
    const COINS = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT", "S120/USDT"];

    it("is read once for any number of buy signals that find too little of it, or not at all after the tick's own reading", async () => {
      const { broker, positions, buy } = startCounting(5);
      const outcomes = await Promise.all(COINS.map((symbol) => buy(symbol, 10_000)));
      expect(outcomes).toEqual(COINS.map(() => ({ kind: "none", reason: BELOW_MINIMUM })));
      expect(broker.reads).toBe(1);

      positions.useFreeCash(5);
      await Promise.all(COINS.map((symbol) => buy(symbol, 10_000)));
      expect(broker.reads).toBe(1);
    });

    it("is read again after every order, so each entry is sized from what the previous one left", async () => {
      const { broker, positions, buy } = startCounting(250);
      positions.useFreeCash(250);
      // At an equity of 1,000 each entry may take 100 (maxPositionFraction): the third finds only ~50 left.
      const coins = ["BTC/USDT", "ETH/USDT", "SOL/USDT"];
      const outcomes = await Promise.all(coins.map((symbol) => buy(symbol, 1_000)));
      expect(outcomes.map((o) => o.kind)).toEqual(["opened", "opened", "opened"]);
      expect(broker.reads).toBe(2); // the tick's reading sized the first; the others read the cash after the order before them
      const spent = coins.map((symbol) => {
        const position = positions.get(symbol);
        return (position?.quantity ?? 0) * (position?.entryPrice ?? 0);
      });
      expect(spent[0]).toBeCloseTo(100, 0);
      expect(spent[1]).toBeCloseTo(100, 0);
      expect(spent[2]).toBeGreaterThan(40);
      expect(spent[2]).toBeLessThan(50);
    });

    it("does not keep a reading that was answered while an order was running", async () => {
      const { sim, broker, positions, buy } = startCounting(10_000);
      expect((await buy("BTC/USDT", 10_000)).kind).toBe("opened");
      const held = positions.get("BTC/USDT");
      const readsBefore = broker.reads;

      // A reading starts and is held back while the position is sold: its answer is older than the sale.
      let release = () => {};
      broker.hold = new Promise<void>((resolve) => (release = resolve));
      const refused = buy("ETH/USDT", 40); // risk 0.4 USDT at a 5% stop: an 8 USDT order, refused once the cash is read
      await new Promise((resolve) => setImmediate(resolve));
      expect(broker.reads).toBe(readsBefore + 1);
      broker.hold = undefined;
      const price = held?.entryPrice ?? 0;
      const sold = await positions.manage("BTC/USDT", decisionAt(sim, "SELL", price), at(price), 10_000, []);
      expect(sold.kind).toBe("closed");
      release();
      expect(await refused).toEqual({ kind: "none", reason: BELOW_MINIMUM });

      // The next entry reads the cash again instead of using the answer from before the sale.
      expect(await buy("SOL/USDT", 40)).toEqual({ kind: "none", reason: BELOW_MINIMUM });
      expect(broker.reads).toBe(readsBefore + 2);
    });
  });


  describe("the order ledger", () => {
    /** The paper account, noting the ledger status of each order as it is sent. */
    class LedgerWatchingBroker extends PaperBroker {
      statusWhenSent: (string | undefined)[] = [];
      override async placeOrder(request: OrderRequest): Promise<OrderReport> {
        this.statusWhenSent.push((await listOrders(db)).find((order) => order.clientOrderId === request.clientOrderId)?.status);
        return super.placeOrder(request);
      }
    }

    it("saves every order before it is sent, and books the trade under the exit order's client id", async () => {
      const sim = new SimExchange({ seed: 1, startTime: START });
      const broker = new LedgerWatchingBroker({ market: sim, quoteCurrency: "USDT", startingBalance: 10_000 });
      const positions = new PositionManager({ db: async () => db, broker, market: sim, exchange: "sim", mode: "paper", rules: RULES, signalTimeframe: "15m" });
      await enterAndStopOut(sim, positions, []);
      expect(broker.statusWhenSent).toEqual(["intent", "intent"]);
      const [sell, buy] = await listOrders(db, { exchange: "sim" });
      expect([buy?.purpose, buy?.status, sell?.purpose, sell?.status, sell?.exitReason]).toEqual(["entry", "filled", "exit", "filled", "STOP_LOSS"]);
      const [trade] = await listTrades(db, { exchange: "sim" });
      expect(trade).toMatchObject({ entryOrderId: buy?.clientOrderId, exitOrderId: sell?.clientOrderId, quantity: buy?.filledAmount });
      expect(trade?.fees).toBeCloseTo((buy?.feeQuote ?? 0) + (sell?.feeQuote ?? 0), 12);
    });

    it("exits at the stop a candle's low crossed since the last check, and at the open when the candle gapped through it", async () => {
      for (const gap of [false, true]) {
        const { sim, positions } = start();
        const last = await price(sim);
        await positions.manage(SYMBOL, decisionAt(sim, "BUY", last), at(last), 10_000, []);
        const position = positions.get(SYMBOL);
        const stop = position?.stopLoss ?? 0;
        const openTime = (position?.openedAt.getTime() ?? 0) + M15;
        const open = gap ? stop * 0.97 : last;
        const candle = { openTime, open, high: Math.max(open, last), low: Math.min(open, stop * 0.98), close: last, volume: 1, isClosed: true };
        // The last price is back above the stop: only the candle shows it was crossed.
        const outcome = await positions.manage(SYMBOL, decisionAt(sim, "NO_SIGNAL", last), { price: last, candlesSince: (since) => [candle].filter((c) => c.openTime >= since) }, 10_000, []);
        expect(outcome.kind).toBe("closed");
        if (outcome.kind === "closed") expect([outcome.trade.exitReason, outcome.trade.exitPrice]).toEqual(["STOP_LOSS", gap ? open : stop]);
        await db.sql.exec("TRUNCATE orders, positions, trades");
      }
    });
  });

  describe("orders a crash or a lost answer left unsettled (live binance, recorded responses)", () => {
    const CANDLE = 1679571000000;
    const CLIENT_ORDER_ID = entryOrderId("binance", "LTC/USDT", CANDLE);
    /** A bot restarted on live binance with the entry's intent in its ledger, as a crash right after saving it leaves it. */
    const restartLive = async (options: { withIntent?: boolean; failDatabase?: () => boolean } = {}) => {
      if (options.withIntent ?? true) {
        await recordOrderIntent(db, {
          exchange: "binance",
          mode: "live",
          symbol: "LTC/USDT",
          side: "buy",
          purpose: "entry",
          clientOrderId: CLIENT_ORDER_ID,
          positionKey: CLIENT_ORDER_ID,
          exitReason: null,
          requestedAmount: 0.2,
          requestedCost: 18,
          referencePrice: 90,
          takeProfit: 99,
          stopLoss: 85,
          createdAt: new Date(CANDLE),
        });
      }
      const stub = stubbedBinance({ withKeys: true });
      const now = () => 1679571174000;
      const broker = new LiveBroker({ exchange: stub.exchange, logger: silentLogger, retryDelaysMs: [], sleep: async () => undefined, now });
      const market: MarketData = new CcxtMarketData(stub.exchange, { logger: silentLogger, retryDelaysMs: [], now });
      const database = async () => {
        if (options.failDatabase?.()) throw new Error("connect ECONNREFUSED 127.0.0.1:5432");
        return db;
      };
      // Stops the bot watches itself here; a stop resting on the exchange has its own tests (crash-steps.test.ts).
      stub.exchange.has = { ...stub.exchange.has, createStopLossOrder: false };
      const positions = new PositionManager({ db: database, broker, market, exchange: "binance", mode: "live", rules: RULES, signalTimeframe: "15m" });
      positions.restore(await listOpenPositions(db, { exchange: "binance" }), new Map(), await listUnsettledOrders(db, { exchange: "binance", mode: "live" }));
      const orderPosts = () => stub.calls.filter((call) => call.method === "POST").length;
      return { ...stub, broker, positions, orderPosts };
    };
    /** An equity at which an entry at 90 is capped at 0.2 LTC (maxPositionFraction), the recorded order's amount. */
    const ENTRY_EQUITY = 180;
    const ltcDecision = (action: Decision["action"]): Decision => ({
      action,
      reasons: [],
      price: 90,
      candleTime: CANDLE,
      indicators: { emaFast: null, emaSlow: null, rsi: null, atr: null },
      takeProfit: action === "BUY" ? 99 : null,
      stopLoss: action === "BUY" ? 85 : null,
    });

    it("becomes the position the exchange filled when the order got there, without ordering again", async () => {
      const { positions, route, orderPosts } = await restartLive();
      const order = fullMarketOrderResponse({ side: "BUY", clientOrderId: CLIENT_ORDER_ID });
      route("GET /api/v3/allOrders", () => [order]);
      route("GET /api/v3/order", binanceOrderEndpoint([order]));
      const events: EventInput[] = [];
      const [settled] = await positions.settleAll(events);
      expect(settled?.outcome).toBe("final");
      const [stored] = await listOpenPositions(db, { exchange: "binance" });
      expect(stored).toMatchObject({ symbol: "LTC/USDT", quantity: Number(order.executedQty), entryPrice: Number(order.fills[0]?.price), entryOrderId: CLIENT_ORDER_ID, takeProfit: 99, stopLoss: 85 });
      expect((await listOrders(db))[0]).toMatchObject({ status: "filled", exchangeOrderId: String(order.orderId), filledAmount: Number(order.executedQty) });
      expect(positions.get("LTC/USDT")).toEqual(stored);
      expect(events.map((e) => [e.type, e.eventKey])).toEqual([["POSITION_OPENED", `binance:open:${CLIENT_ORDER_ID}`]]);
      // The same decision on the next tick finds its order in the ledger: nothing is sent.
      expect((await positions.manage("LTC/USDT", ltcDecision("BUY"), at(90), 10_000, [])).kind).toBe("held");
      expect(orderPosts()).toBe(0);
    });

    it("is canceled when the exchange never got the order, and the same decision is not sent again", async () => {
      const { positions, route, orderPosts } = await restartLive();
      route("GET /api/v3/allOrders", () => []);
      route("GET /api/v3/order", binanceOrderEndpoint([]));
      expect((await positions.settleAll([]))[0]?.outcome).toBe("final");
      expect((await listOrders(db))[0]).toMatchObject({ status: "canceled", error: "the exchange never received it" });
      expect(await listOpenPositions(db, { exchange: "binance" })).toEqual([]);
      expect(positions.unsettledOrders()).toEqual([]);
      expect(await positions.manage("LTC/USDT", ltcDecision("BUY"), at(90), 10_000, [])).toMatchObject({ kind: "none" });
      expect(orderPosts()).toBe(0);
    });

    it("is marked unknown and reported when the exchange offers no way to ask, and its coin sends nothing", async () => {
      const { exchange, positions, orderPosts } = await restartLive();
      exchange.has = { ...exchange.has, fetchOrder: false, fetchOrders: false, fetchOpenOrders: false, fetchClosedOrders: false, fetchOpenOrder: false, fetchClosedOrder: false, fetchCanceledAndClosedOrders: false, fetchMyTrades: false };
      const events: EventInput[] = [];
      expect((await positions.settleAll(events))[0]?.outcome).toBe("unknown");
      expect((await listOrders(db))[0]?.status).toBe("unknown");
      expect(events.map((e) => [e.type, e.level])).toEqual([["ORDER_UNKNOWN", "warn"]]);
      const outcome = await positions.manage("LTC/USDT", ltcDecision("BUY"), at(90), 10_000, events);
      expect(outcome).toEqual({ kind: "none", reason: `order ${CLIENT_ORDER_ID} is unknown; nothing new is sent until it is settled` });
      expect(events).toHaveLength(1); // reported once, not every tick
      expect(orderPosts()).toBe(0);
    });

    it("keeps the order unsettled while the exchange cannot be reached, and settles it once it can", async () => {
      const { positions, route, orderPosts } = await restartLive();
      let down = true;
      const order = fullMarketOrderResponse({ side: "BUY", clientOrderId: CLIENT_ORDER_ID });
      route("GET /api/v3/allOrders", () => {
        if (down) throw new ccxt.ExchangeNotAvailable("binance GET /api/v3/allOrders 503 Service Unavailable");
        return [order];
      });
      const known = binanceOrderEndpoint([order]);
      route("GET /api/v3/order", (call) => {
        if (down) throw new ccxt.ExchangeNotAvailable("binance GET /api/v3/order 503 Service Unavailable");
        return known(call);
      });
      expect((await positions.settleAll([]))[0]?.outcome).toBe("pending");
      await expect(positions.manage("LTC/USDT", ltcDecision("BUY"), at(90), 10_000, [])).rejects.toThrow(/ExchangeNotAvailable/);
      expect((await listOrders(db))[0]?.status).toBe("intent");
      down = false;
      expect((await positions.manage("LTC/USDT", ltcDecision("BUY"), at(90), 10_000, [])).kind).toBe("opened");
      expect(orderPosts()).toBe(0);
    });

    it("records a fill the database missed at the next tick, from the exchange's answer, without sending the order again", async () => {
      let failing = false;
      const { positions, route, orderPosts } = await restartLive({ withIntent: false, failDatabase: () => failing });
      const order = fullMarketOrderResponse({ side: "BUY", clientOrderId: CLIENT_ORDER_ID });
      route("POST /api/v3/order", () => {
        failing = true; // the database goes away while the order is on its way
        return order;
      });
      positions.useFreeCash(1_000);
      await expect(positions.manage("LTC/USDT", ltcDecision("BUY"), at(90), ENTRY_EQUITY, [])).rejects.toThrow(/ECONNREFUSED/);
      expect(await listOpenPositions(db, { exchange: "binance" })).toEqual([]);
      failing = false;
      expect((await positions.manage("LTC/USDT", ltcDecision("BUY"), at(90), ENTRY_EQUITY, [])).kind).toBe("opened");
      expect((await listOpenPositions(db, { exchange: "binance" }))[0]?.quantity).toBe(Number(order.executedQty));
      expect(orderPosts()).toBe(1);
    });

    it("books a partly filled sell as a trade of what was sold and sells the rest on the next tick", async () => {
      const { positions, route } = await restartLive({ withIntent: false });
      route("POST /api/v3/order", (call) => {
        const sent = new URLSearchParams(call.body);
        const clientOrderId = sent.get("newClientOrderId") ?? "";
        if (sent.get("side") === "BUY") return fullMarketOrderResponse({ side: "BUY", clientOrderId });
        // binance's IOC market sell that met too little liquidity: EXPIRED with part of it filled.
        const full = fullMarketOrderResponse({ side: "SELL", clientOrderId });
        const quantity = sent.get("quantity") ?? "0";
        const filled = quantity === "0.2" ? "0.05" : quantity;
        const fill = full.fills[0];
        return { ...full, status: filled === quantity ? "FILLED" : "EXPIRED", origQty: quantity, executedQty: filled, cummulativeQuoteQty: String(Number(filled) * 69.63), fills: fill ? [{ ...fill, qty: filled }] : [] };
      });
      positions.useFreeCash(1_000);
      expect((await positions.manage("LTC/USDT", ltcDecision("BUY"), at(90), ENTRY_EQUITY, [])).kind).toBe("opened");
      const first = await positions.manage("LTC/USDT", ltcDecision("SELL"), at(88), 10_000, []);
      expect(first).toMatchObject({ kind: "closed", trade: { quantity: 0.05, exitReason: "SIGNAL" }, remaining: { quantity: 0.15 } });
      // No SELL signal any more: the rest is sold all the same.
      const rest = await positions.manage("LTC/USDT", ltcDecision("NO_SIGNAL"), at(88), 10_000, []);
      expect(rest).toMatchObject({ kind: "closed", trade: { quantity: 0.15, exitReason: "SIGNAL" }, remaining: undefined });
      expect(await listOpenPositions(db, { exchange: "binance" })).toEqual([]);
      expect((await listTrades(db, { exchange: "binance" })).map((t) => t.quantity).sort()).toEqual([0.05, 0.15]);
      expect((await listOrders(db)).map((o) => o.status)).toEqual(["filled", "expired", "filled"]);
    });
  });
});
