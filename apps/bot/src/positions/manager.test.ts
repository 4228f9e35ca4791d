import { TIMEFRAME_MS, alignToTimeframe } from "@candlekeep/core";
import { latestTradeEntries, listOpenPositions, listTrades, type EventInput } from "@candlekeep/db";
import { openTestDatabase } from "@candlekeep/db/testing";
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
});
