import type { DecisionTraceInput } from "@candlekeep/db";
import { DecisionTraceThrottle, type TraceContext } from "./decision-trace";
import type { Action, Decision } from "./strategy/types";

const T0 = Date.UTC(2026, 0, 1);
const MIN = 60_000;
const CONTEXT: TraceContext = { lastPrice: 100, outcome: "none" };

function decision(action: Action): Decision {
  return { action, reasons: [], price: 100, candleTime: T0, indicators: { emaFast: null, emaSlow: null, rsi: null, atr: null }, takeProfit: null, stopLoss: null };
}

describe("DecisionTraceThrottle", () => {
  it("records one trace per interval, and a changed decision at once", () => {
    const traces = new DecisionTraceThrottle("sim", 5 * MIN);
    expect(traces.trace("BTC/USDT", decision("NO_SIGNAL"), T0, CONTEXT)).toBeDefined();
    expect(traces.trace("BTC/USDT", decision("NO_SIGNAL"), T0 + MIN, CONTEXT)).toBeUndefined();
    expect(traces.trace("BTC/USDT", decision("BUY"), T0 + 2 * MIN, CONTEXT)).toBeDefined();
    expect(traces.trace("BTC/USDT", decision("NO_SIGNAL"), T0 + 3 * MIN, CONTEXT)).toBeDefined();
    expect(traces.trace("BTC/USDT", decision("BUY"), T0 + 4 * MIN, CONTEXT)).toBeDefined();
  });

  it("keys a trace by coin and tick time, so a tick replayed after a crash is stored once whatever it decides", () => {
    const before = new DecisionTraceThrottle("sim", 5 * MIN).trace("BTC/USDT", decision("BUY"), T0, CONTEXT);
    // After the restart the position opened the first time is held, and the same tick decides otherwise.
    const replay = new DecisionTraceThrottle("sim", 5 * MIN).trace("BTC/USDT", decision("NO_SIGNAL"), T0, CONTEXT);
    const key = (trace: DecisionTraceInput | undefined) => trace && `${trace.exchange} ${trace.symbol} ${trace.time.toISOString()}`;
    expect(key(before)).toBe(`sim BTC/USDT ${new Date(T0).toISOString()}`);
    expect(key(replay)).toBe(key(before));
    const later = new DecisionTraceThrottle("sim", 5 * MIN).trace("BTC/USDT", decision("NO_SIGNAL"), T0 + MIN, CONTEXT);
    expect(key(later)).not.toBe(key(before));
  });

  it("stores the decision and its reasons once: no indicator object, no levels beside the reasons, nothing usual", () => {
    const buy: Decision = {
      ...decision("BUY"),
      reasons: ["emaFast 101 > emaSlow 99 (+2.02%, uptrend)", "rsi 55.0 within entry band 45..70", "atr 2 (2.00% of price)", "take-profit 105, stop-loss 97"],
      indicators: { emaFast: 101.000000001, emaSlow: 99.0000001, rsi: 55.00001, atr: 2.00001 },
      takeProfit: 105.0000001,
      stopLoss: 97.0000001,
    };
    const traces = new DecisionTraceThrottle("sim", 5 * MIN);
    expect(traces.trace("BTC/USDT", buy, T0, CONTEXT)?.payload).toEqual({ action: "BUY", price: 100, candleTime: new Date(T0).toISOString(), reasons: buy.reasons });
    // What differs from the usual is kept: a changed action, a later price, what the position manager did.
    expect(traces.trace("BTC/USDT", decision("NO_SIGNAL"), T0 + MIN, { lastPrice: 101.5, outcome: "none", skipped: "trading paused: bot lock not held" })?.payload).toEqual({
      action: "NO_SIGNAL",
      changedFrom: "BUY",
      price: 100,
      candleTime: new Date(T0).toISOString(),
      reasons: [],
      lastPrice: 101.5,
      skipped: "trading paused: bot lock not held",
    });
    expect(traces.trace("BTC/USDT", buy, T0 + 2 * MIN, { lastPrice: 100, outcome: "opened" })?.payload).toMatchObject({ action: "BUY", changedFrom: "NO_SIGNAL", outcome: "opened" });
  });
});
