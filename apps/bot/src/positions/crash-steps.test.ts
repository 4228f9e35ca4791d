import { silentLogger } from "@candlekeep/core";
import { listOpenPositions, listOrders, listTrades, listUnsettledOrders } from "@candlekeep/db";
import { openTestDatabase } from "@candlekeep/db/testing";
import { CcxtMarketData } from "../exchange/ccxt";
import { binanceOrderEndpoint, fullMarketOrderResponse, stubbedBinance, type RecordedCall } from "../exchange/fixtures/binance";
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

  /** The exchange: binance's recorded order answers, for every order it is sent, and the orders it holds. */
  function exchangeHoldingOrders() {
    const stub = stubbedBinance({ withKeys: true });
    const taken: ReturnType<typeof fullMarketOrderResponse>[] = [];
    stub.route("POST /api/v3/order", (call: RecordedCall) => {
      const sent = new URLSearchParams(call.body);
      const side = sent.get("side") === "BUY" ? "BUY" : "SELL";
      const order = { ...fullMarketOrderResponse({ side, clientOrderId: sent.get("newClientOrderId") ?? "" }), orderId: String(4000 + taken.length) };
      taken.push(order);
      return order;
    });
    stub.route("GET /api/v3/allOrders", () => taken);
    stub.route("GET /api/v3/order", binanceOrderEndpoint(taken));
    return { ...stub, taken };
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

  /** The books equal the exchange: every filled order the exchange took is in the ledger, positions and trades follow from them. */
  async function expectBooksMatch(exchange: ReturnType<typeof exchangeHoldingOrders>) {
    const ledger = await listOrders(db, { exchange: "binance" });
    const filledOnExchange = new Set(exchange.taken.map((order) => order.clientOrderId));
    for (const order of ledger) {
      expect(order.status).toBe(filledOnExchange.has(order.clientOrderId) ? "filled" : "canceled");
    }
    const bought = exchange.taken.filter((o) => o.side === "BUY").reduce((sum, o) => sum + Number(o.executedQty), 0);
    const sold = exchange.taken.filter((o) => o.side === "SELL").reduce((sum, o) => sum + Number(o.executedQty), 0);
    const held = (await listOpenPositions(db, { exchange: "binance" })).reduce((sum, p) => sum + p.quantity, 0);
    expect(held).toBeCloseTo(bought - sold, 12);
    expect((await listTrades(db, { exchange: "binance" })).map((t) => t.exitOrderId).sort()).toEqual(exchange.taken.filter((o) => o.side === "SELL").map((o) => o.clientOrderId).sort());
  }

  it("killed after saving the entry, before sending it: the restarted bot cancels it, holds nothing and sends nothing for that decision", async () => {
    const exchange = exchangeHoldingOrders();
    const first = await startBot(exchange);
    await killDuring(first, "before-send", () => first.positions.manage(SYMBOL, decision("BUY"), at(69.63), EQUITY, []));
    expect((await listOrders(db))[0]?.status).toBe("intent");

    const restarted = await startBot(exchange);
    expect((await listOrders(db))[0]).toMatchObject({ status: "canceled", error: "the exchange never received it" });
    expect(await restarted.positions.manage(SYMBOL, decision("BUY"), at(69.63), EQUITY, [])).toMatchObject({ kind: "none" });
    expect(exchange.taken).toHaveLength(0);
    await expectBooksMatch(exchange);
  });

  it("killed after the exchange filled the entry, before it was recorded: the restarted bot books the position from the exchange, without a second buy", async () => {
    const exchange = exchangeHoldingOrders();
    const first = await startBot(exchange);
    await killDuring(first, "after-answer", () => first.positions.manage(SYMBOL, decision("BUY"), at(69.63), EQUITY, []));
    expect(exchange.taken).toHaveLength(1);
    expect(await listOpenPositions(db, { exchange: "binance" })).toEqual([]);

    const restarted = await startBot(exchange);
    expect(restarted.positions.get(SYMBOL)?.quantity).toBe(0.2);
    expect((await restarted.positions.manage(SYMBOL, decision("BUY"), at(69.63), EQUITY, [])).kind).toBe("held");
    expect(exchange.taken).toHaveLength(1);
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
    expect(exchange.taken.map((o) => o.side)).toEqual(["BUY", "SELL"]);
    expect((await listOrders(db)).map((o) => [o.purpose, o.status])).toEqual([
      ["exit", "filled"],
      ["exit", "canceled"],
      ["entry", "filled"],
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
    expect(exchange.taken.map((o) => o.side)).toEqual(["BUY", "SELL"]);
    await expectBooksMatch(exchange);
  });
});
