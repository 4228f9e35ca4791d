import { TIMEFRAME_MS, alignToTimeframe, silentLogger } from "@candlekeep/core";
import { latestTradeEntries, listOpenPositions, listTrades, savePosition, type EventInput, type PositionInput } from "@candlekeep/db";
import { openTestDatabase } from "@candlekeep/db/testing";
import ccxt from "ccxt";
import { fullMarketOrderResponse, stubbedBinance } from "../exchange/fixtures/binance";
import { LiveBroker } from "../exchange/live";
import { PaperBroker } from "../exchange/paper";
import { SimExchange } from "../exchange/sim";
import type { Decision } from "../strategy/types";
import { PositionManager, type PositionOutcome } from "./manager";

const SYMBOL = "BTC/USDT";
const M15 = TIMEFRAME_MS["15m"];
/** Seven minutes into a 15m candle, in the past so the sim's clock can step forward. */
const START = Date.UTC(2026, 10, 18, 12, 7);
const RULES = { quoteCurrency: "USDT", riskPerTrade: 0.01, maxPositionFraction: 0.1, feeRate: 0.001 };

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
    const positions = new PositionManager({ db: async () => db, broker, exchange: "sim", rules: RULES, signalTimeframe: "15m" });
    return { sim, broker, positions };
  };
  const price = async (sim: SimExchange) => (await sim.fetchTicker(SYMBOL)).last;
  const cash = async (broker: PaperBroker) => (await broker.balances()).find((b) => b.currency === "USDT")?.total;
  /** Enters on a BUY, then closes at the stop-loss, all within the signal's candle. */
  const enterAndStopOut = async (sim: SimExchange, positions: PositionManager, events: EventInput[]) => {
    const last = await price(sim);
    const buy = decisionAt(sim, "BUY", last);
    expect((await positions.manage(SYMBOL, buy, last, 10_000, events)).kind).toBe("opened");
    const stop = positions.get(SYMBOL)?.stopLoss ?? 0;
    expect((await positions.manage(SYMBOL, decisionAt(sim, "NO_SIGNAL", last), stop * 0.99, 10_000, events)).kind).toBe("closed");
    return buy;
  };

  it("does not enter again on a signal it already traded after that position closed, and enters on the next candle's", async () => {
    const { sim, broker, positions } = start();
    const events: EventInput[] = [];
    const buy = await enterAndStopOut(sim, positions, events);
    const cashAfterClose = await cash(broker);

    // The same closed candle still says BUY on the next tick: no second entry (nor a phantom one).
    const again = await positions.manage(SYMBOL, buy, buy.price, 10_000, events);
    expect(again).toEqual<PositionOutcome>({ kind: "none", reason: "already entered on this signal's candle" });
    expect(positions.get(SYMBOL)).toBeUndefined();
    expect(await listOpenPositions(db, { exchange: "sim" })).toEqual([]);
    expect(await cash(broker)).toBe(cashAfterClose);
    expect(await listTrades(db, { exchange: "sim" })).toHaveLength(1);

    // A new candle closes with a BUY: a new order, paid from the account.
    sim.advance();
    const last = await price(sim);
    const next = await positions.manage(SYMBOL, decisionAt(sim, "BUY", last), last, 10_000, events);
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
    expect(await restarted.positions.manage(SYMBOL, buy, buy.price, 10_000, [])).toEqual<PositionOutcome>({ kind: "none", reason: "already entered on this signal's candle" });
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
      const positions = new PositionManager({ db: async () => db, broker, exchange: "sim", rules: RULES, signalTimeframe: "15m" });
      const buy = async (symbol: string, equity: number) => {
        const last = (await sim.fetchTicker(symbol)).last;
        return positions.manage(symbol, decisionAt(sim, "BUY", last), last, equity, []);
      };
      return { sim, broker, positions, buy };
    };
    const COINS = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT", "S120/USDT"];

    it("is read once for any number of buy signals that find too little of it, or not at all after the tick's own reading", async () => {
      const { broker, positions, buy } = startCounting(5);
      const outcomes = await Promise.all(COINS.map((symbol) => buy(symbol, 10_000)));
      expect(outcomes).toEqual(COINS.map(() => ({ kind: "none", reason: "order value below 10 USDT" })));
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
      const sold = await positions.manage("BTC/USDT", decisionAt(sim, "SELL", price), price, 10_000, []);
      expect(sold.kind).toBe("closed");
      release();
      expect(await refused).toEqual({ kind: "none", reason: "order value below 10 USDT" });

      // The next entry reads the cash again instead of using the answer from before the sale.
      expect(await buy("SOL/USDT", 40)).toEqual({ kind: "none", reason: "order value below 10 USDT" });
      expect(broker.reads).toBe(readsBefore + 2);
    });
  });

  describe("entries a crash interrupted (saved as ordering, the order's fate unknown)", () => {
    const CLIENT_ORDER_ID = "ck-LTC/USDT-1679571000000-buy";
    const intent = (exchange: string): PositionInput => ({
      exchange,
      symbol: "LTC/USDT",
      side: "LONG",
      quantity: 0.2,
      entryPrice: 90,
      takeProfit: 99,
      stopLoss: 85,
      entryOrderId: CLIENT_ORDER_ID,
      openedAt: new Date(1679571000000),
      metadata: { status: "ordering", decision: { action: "BUY" } },
    });
    /** A bot restarted on live binance (recorded responses) with the intent in its database. */
    const restartLive = async () => {
      await savePosition(db, intent("binance"));
      const stub = stubbedBinance({ withKeys: true });
      const broker = new LiveBroker({ exchange: stub.exchange, logger: silentLogger, retryDelaysMs: [], sleep: async () => undefined, now: () => 1679571174000 });
      const positions = new PositionManager({ db: async () => db, broker, exchange: "binance", rules: RULES, signalTimeframe: "15m" });
      positions.restore(await listOpenPositions(db, { exchange: "binance" }));
      const orderPosts = () => stub.calls.filter((call) => call.method === "POST").length;
      return { ...stub, positions, orderPosts };
    };

    it("becomes the position the exchange filled when the order got there, without ordering again", async () => {
      const { positions, route, orderPosts } = await restartLive();
      const order = fullMarketOrderResponse({ side: "BUY", clientOrderId: CLIENT_ORDER_ID });
      route("GET /api/v3/allOrders", () => [order]);
      const events: EventInput[] = [];
      expect(await positions.settleInterruptedEntries(events)).toEqual([{ symbol: "LTC/USDT", clientOrderId: CLIENT_ORDER_ID, outcome: "filled" }]);
      const [stored] = await listOpenPositions(db, { exchange: "binance" });
      expect(stored).toMatchObject({ symbol: "LTC/USDT", quantity: Number(order.executedQty), entryPrice: Number(order.fills[0]?.price), entryOrderId: String(order.orderId), takeProfit: 99, stopLoss: 85 });
      expect(stored?.metadata).toMatchObject({ status: "filled", clientOrderId: CLIENT_ORDER_ID, decision: { action: "BUY" } });
      expect(positions.get("LTC/USDT")).toEqual(stored);
      expect(events.map((e) => [e.type, e.eventKey])).toEqual([["POSITION_OPENED", `binance:open:${order.orderId}`]]);
      expect(orderPosts()).toBe(0);
    });

    it("is removed when the exchange never got the order, and nothing is sent", async () => {
      const { positions, route, orderPosts } = await restartLive();
      route("GET /api/v3/allOrders", () => []);
      expect(await positions.settleInterruptedEntries([])).toEqual([{ symbol: "LTC/USDT", clientOrderId: CLIENT_ORDER_ID, outcome: "removed" }]);
      expect(await listOpenPositions(db, { exchange: "binance" })).toEqual([]);
      expect(positions.get("LTC/USDT")).toBeUndefined();
      expect(orderPosts()).toBe(0);
    });

    it("is kept as saved, with the reason, when the exchange cannot be asked", async () => {
      const { positions, route } = await restartLive();
      route("GET /api/v3/allOrders", () => {
        throw new ccxt.AuthenticationError("binance {\"code\":-2015,\"msg\":\"Invalid API-key, IP, or permissions for action.\"}");
      });
      const [kept] = await positions.settleInterruptedEntries([]);
      expect(kept).toMatchObject({ symbol: "LTC/USDT", outcome: "kept", error: expect.stringContaining("Invalid API-key") });
      expect((await listOpenPositions(db, { exchange: "binance" })).map((p) => p.metadata.status)).toEqual(["ordering"]);
      expect(positions.get("LTC/USDT")?.metadata.status).toBe("ordering");
    });

    it("is removed on a paper account, whose fills do not outlive the process", async () => {
      await savePosition(db, { ...intent("sim"), symbol: SYMBOL });
      const { positions } = start();
      positions.restore(await listOpenPositions(db, { exchange: "sim" }));
      expect(await positions.settleInterruptedEntries([])).toEqual([{ symbol: SYMBOL, clientOrderId: CLIENT_ORDER_ID, outcome: "removed" }]);
      expect(await listOpenPositions(db, { exchange: "sim" })).toEqual([]);
    });
  });
});
