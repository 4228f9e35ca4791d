import { silentLogger } from "@candlekeep/core";
import { listOpenPositions, listOrders, listTrades, listUnsettledOrders } from "@candlekeep/db";
import { openTestDatabase } from "@candlekeep/db/testing";
import { CcxtMarketData } from "../exchange/ccxt";
import { binanceOrderBook, stubbedBinance } from "../exchange/fixtures/binance";
import { LiveBroker } from "../exchange/live";
import type { Broker, OrderReport, OrderRequest } from "../exchange/types";
import type { Decision } from "../strategy/types";
import { PositionManager, type CoinMarket } from "./manager";

/**
 * A process killed between two steps of an order (intent saved / sent / answered /
 * recorded) runs nothing after that step. Each test "kills" a bot by leaving its
 * order call unanswered for good, starts a new one on the same database and the
 * same exchange (binance through its recorded answers, remembering the orders it
 * took), and checks that the ledger, positions and trades equal what the exchange
 * holds, with nothing sent twice.
 */

const SYMBOL = "LTC/USDT";
const CANDLE = 1698138000000;
const NOW = 1698138992358;
const RULES = { quoteCurrency: "USDT", riskPerTrade: 0.01, maxPositionFraction: 0.1, feeRate: 0.001 };
/** An equity at which an entry at 69.63 is capped at 0.2 LTC (maxPositionFraction), the recorded order's amount. */
const EQUITY = 139.26;
const at = (price: number): CoinMarket => ({ price, candlesSince: () => [] });

function decision(action: Decision["action"]): Decision {
  return {
    action,
    reasons: [],
    price: 69.63,
    candleTime: CANDLE,
    indicators: { emaFast: null, emaSlow: null, rsi: null, atr: null },
    takeProfit: action === "BUY" ? 80 : null,
    stopLoss: action === "BUY" ? 68 : null,
  };
}

type KillPoint = "before-send" | "after-answer";

/** The live broker of a process that dies at `killAt` of its next order: nothing after that step runs. */
class DyingBroker implements Broker {
  readonly mode = "live";
  killAt: KillPoint | undefined;
  constructor(private readonly inner: LiveBroker) {}
  async placeOrder(request: OrderRequest): Promise<OrderReport> {
    const killAt = this.killAt;
    if (killAt === "before-send") return new Promise<never>(() => undefined);
    const report = await this.inner.placeOrder(request);
    if (killAt === "after-answer") return new Promise<never>(() => undefined);
    return report;
  }
  lookupOrder: Broker["lookupOrder"] = (query) => this.inner.lookupOrder(query);
  supportsStopLoss: Broker["supportsStopLoss"] = () => this.inner.supportsStopLoss();
  placeStopLoss: Broker["placeStopLoss"] = (request) => this.inner.placeStopLoss(request);
  cancelOrder: Broker["cancelOrder"] = (query) => this.inner.cancelOrder(query);
  balances: Broker["balances"] = () => this.inner.balances();
}

describe("an order interrupted between any two of its steps (live binance, recorded answers)", () => {
  let db: Awaited<ReturnType<typeof openTestDatabase>>;
  beforeEach(async () => {
    db = await openTestDatabase("server");
  });
  afterEach(async () => {
    await db.close();
  });

  /** The exchange: binance (its answers' shapes as recorded), filling market orders at 69.63 and holding stop-limit orders. */
  function exchangeHoldingOrders() {
    const stub = stubbedBinance({ withKeys: true });
    return { ...stub, book: binanceOrderBook(stub, { fillPrice: 69.63, time: NOW }) };
  }

  /** A bot process on that exchange, resumed from the database as start-up does. */
  async function startBot(exchange: ReturnType<typeof exchangeHoldingOrders>) {
    const now = () => NOW;
    const broker = new DyingBroker(new LiveBroker({ exchange: exchange.exchange, logger: silentLogger, retryDelaysMs: [], sleep: async () => undefined, now }));
    const market = new CcxtMarketData(exchange.exchange, { logger: silentLogger, retryDelaysMs: [], now });
    const positions = new PositionManager({ db: async () => db, broker, market, exchange: "binance", mode: "live", rules: RULES, signalTimeframe: "15m" });
    positions.restore(await listOpenPositions(db, { exchange: "binance" }), new Map(), await listUnsettledOrders(db, { exchange: "binance", mode: "live" }));
    positions.useFreeCash(1_000);
    await positions.settleAll([]);
    return { broker, positions };
  }

  /** Runs `step` on a bot that dies at `killAt`; the step never returns. */
  async function killDuring(bot: Awaited<ReturnType<typeof startBot>>, killAt: KillPoint, step: () => Promise<unknown>): Promise<void> {
    bot.broker.killAt = killAt;
    void step();
    // Let it run up to the point where it dies.
    await new Promise((resolve) => setTimeout(resolve, 200));
  }

  /** What the exchange did: its filled orders by side. */
  const filledOn = (exchange: ReturnType<typeof exchangeHoldingOrders>, side: "BUY" | "SELL") => exchange.book.orders.filter((o) => o.status === "FILLED" && o.side === side);

  /** The books equal the exchange: every order's status as the exchange has it, positions and trades following from the fills. */
  async function expectBooksMatch(exchange: ReturnType<typeof exchangeHoldingOrders>) {
    const onExchange = new Map(exchange.book.orders.map((order) => [order.clientOrderId, order.status]));
    const expected = { FILLED: "filled", CANCELED: "canceled", NEW: "open" } as const;
    for (const order of await listOrders(db, { exchange: "binance" })) {
      const status = onExchange.get(order.clientOrderId);
      expect([order.clientOrderId, order.status]).toEqual([order.clientOrderId, status === undefined ? "canceled" : expected[status]]);
    }
    const sum = (orders: readonly { executedQty: string }[]) => orders.reduce((total, o) => total + Number(o.executedQty), 0);
    const held = (await listOpenPositions(db, { exchange: "binance" })).reduce((total, p) => total + p.quantity, 0);
    expect(held).toBeCloseTo(sum(filledOn(exchange, "BUY")) - sum(filledOn(exchange, "SELL")), 12);
    expect((await listTrades(db, { exchange: "binance" })).map((t) => t.exitOrderId).sort()).toEqual(filledOn(exchange, "SELL").map((o) => o.clientOrderId).sort());
  }

  it("killed after saving the entry, before sending it: the restarted bot cancels it, holds nothing and sends nothing for that decision", async () => {
    const exchange = exchangeHoldingOrders();
    const first = await startBot(exchange);
    await killDuring(first, "before-send", () => first.positions.manage(SYMBOL, decision("BUY"), at(69.63), EQUITY, []));
    expect((await listOrders(db))[0]?.status).toBe("intent");

    const restarted = await startBot(exchange);
    expect((await listOrders(db))[0]).toMatchObject({ status: "canceled", error: "the exchange never received it" });
    expect(await restarted.positions.manage(SYMBOL, decision("BUY"), at(69.63), EQUITY, [])).toMatchObject({ kind: "none" });
    expect(exchange.book.orders).toHaveLength(0);
    await expectBooksMatch(exchange);
  });

  it("killed after the exchange filled the entry, before it was recorded: the restarted bot books the position from the exchange, without a second buy", async () => {
    const exchange = exchangeHoldingOrders();
    const first = await startBot(exchange);
    await killDuring(first, "after-answer", () => first.positions.manage(SYMBOL, decision("BUY"), at(69.63), EQUITY, []));
    expect(filledOn(exchange, "BUY")).toHaveLength(1);
    expect(await listOpenPositions(db, { exchange: "binance" })).toEqual([]);

    const restarted = await startBot(exchange);
    expect(restarted.positions.get(SYMBOL)?.quantity).toBe(0.2);
    expect((await restarted.positions.manage(SYMBOL, decision("BUY"), at(69.63), EQUITY, [])).kind).toBe("held");
    expect(filledOn(exchange, "BUY")).toHaveLength(1);
    await expectBooksMatch(exchange);
  });

  it("killed after saving the exit, before sending it: the restarted bot cancels that exit and sells once with the next", async () => {
    const exchange = exchangeHoldingOrders();
    const first = await startBot(exchange);
    expect((await first.positions.manage(SYMBOL, decision("BUY"), at(69.63), EQUITY, [])).kind).toBe("opened");
    await killDuring(first, "before-send", () => first.positions.manage(SYMBOL, decision("SELL"), at(69.63), EQUITY, []));

    const restarted = await startBot(exchange);
    expect(restarted.positions.get(SYMBOL)?.quantity).toBe(0.2);
    expect((await restarted.positions.manage(SYMBOL, decision("SELL"), at(69.63), EQUITY, [])).kind).toBe("closed");
    expect([...filledOn(exchange, "BUY"), ...filledOn(exchange, "SELL")].map((o) => o.type)).toEqual(["MARKET", "MARKET"]);
    // Oldest last: the entry, its stop-loss (withdrawn for the sale), the sale the kill stopped, the sale after the restart.
    expect((await listOrders(db)).map((o) => [o.type, o.status]).reverse()).toEqual([
      ["market", "filled"],
      ["stop_loss", "canceled"],
      ["market", "canceled"],
      ["market", "filled"],
    ]);
    await expectBooksMatch(exchange);
  });

  it("killed after the exchange filled the exit, before it was recorded: the restarted bot books the trade from the exchange, and sells nothing more", async () => {
    const exchange = exchangeHoldingOrders();
    const first = await startBot(exchange);
    expect((await first.positions.manage(SYMBOL, decision("BUY"), at(69.63), EQUITY, [])).kind).toBe("opened");
    await killDuring(first, "after-answer", () => first.positions.manage(SYMBOL, decision("SELL"), at(69.63), EQUITY, []));
    expect(await listTrades(db, { exchange: "binance" })).toEqual([]);

    const restarted = await startBot(exchange);
    expect(restarted.positions.get(SYMBOL)).toBeUndefined();
    expect(await restarted.positions.manage(SYMBOL, decision("SELL"), at(69.63), EQUITY, [])).toEqual({ kind: "none" });
    expect([...filledOn(exchange, "BUY"), ...filledOn(exchange, "SELL")].map((o) => o.side)).toEqual(["BUY", "SELL"]);
    await expectBooksMatch(exchange);
  });

  describe("a stop-loss resting on the exchange", () => {
    const stopOrders = (exchange: ReturnType<typeof exchangeHoldingOrders>) => exchange.book.orders.filter((o) => o.type === "STOP_LOSS_LIMIT");

    it("is placed once the entry fills, as a stop-limit at the position's stop, and keeps the coin trading", async () => {
      const exchange = exchangeHoldingOrders();
      const bot = await startBot(exchange);
      expect((await bot.positions.manage(SYMBOL, decision("BUY"), at(69.63), EQUITY, [])).kind).toBe("opened");
      expect(stopOrders(exchange).map((o) => [o.side, o.origQty, o.stopPrice, o.price, o.status])).toEqual([["SELL", "0.2", "68", "67.66", "NEW"]]);
      expect((await listOrders(db)).map((o) => [o.type, o.status, o.exitReason])[0]).toEqual(["stop_loss", "open", "STOP_LOSS"]);
      // Resting, not unsettled: the coin is held as usual, and nothing more is placed.
      expect((await bot.positions.manage(SYMBOL, decision("NO_SIGNAL"), at(69), EQUITY, [])).kind).toBe("held");
      expect(exchange.book.orders).toHaveLength(2);
      await expectBooksMatch(exchange);
    });

    it("sells while the bot is away, and the restarted bot books the trade at the stop's fill and sends nothing", async () => {
      const exchange = exchangeHoldingOrders();
      const bot = await startBot(exchange);
      await bot.positions.manage(SYMBOL, decision("BUY"), at(69.63), EQUITY, []);
      exchange.book.trade(67.9);
      const restarted = await startBot(exchange);
      expect(restarted.positions.get(SYMBOL)).toBeUndefined();
      const [trade] = await listTrades(db, { exchange: "binance" });
      expect(trade).toMatchObject({ exitReason: "STOP_LOSS", exitPrice: 67.66, quantity: 0.2 });
      expect(exchange.book.orders).toHaveLength(2);
      await expectBooksMatch(exchange);
    });

    it("is withdrawn before a SELL signal's sale, so the coins are sold once", async () => {
      const exchange = exchangeHoldingOrders();
      const bot = await startBot(exchange);
      await bot.positions.manage(SYMBOL, decision("BUY"), at(69.63), EQUITY, []);
      expect(await bot.positions.manage(SYMBOL, decision("SELL"), at(70), EQUITY, [])).toMatchObject({ kind: "closed", trade: { exitReason: "SIGNAL" } });
      expect(stopOrders(exchange).map((o) => o.status)).toEqual(["CANCELED"]);
      expect(filledOn(exchange, "SELL").map((o) => o.type)).toEqual(["MARKET"]);
      await expectBooksMatch(exchange);
    });

    it("is withdrawn and the coins sold at the market when the price fell below its limit (a gap it cannot fill in)", async () => {
      const exchange = exchangeHoldingOrders();
      const bot = await startBot(exchange);
      await bot.positions.manage(SYMBOL, decision("BUY"), at(69.63), EQUITY, []);
      // At 67.9 the stop is the exchange's to fill: the bot sells nothing itself.
      expect(await bot.positions.manage(SYMBOL, decision("NO_SIGNAL"), at(67.9), EQUITY, [])).toMatchObject({ kind: "none" });
      expect(filledOn(exchange, "SELL")).toEqual([]);
      expect(await bot.positions.manage(SYMBOL, decision("NO_SIGNAL"), at(60), EQUITY, [])).toMatchObject({ kind: "closed", trade: { exitReason: "STOP_LOSS" } });
      expect(stopOrders(exchange).map((o) => o.status)).toEqual(["CANCELED"]);
      await expectBooksMatch(exchange);
    });
  });
});
