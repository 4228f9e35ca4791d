import { DecisionTraceThrottle } from "./decision-trace";
import type { Action, Decision } from "./strategy/types";

const T0 = Date.UTC(2026, 0, 1);
const MIN = 60_000;

function decision(action: Action): Decision {
  return { action, reasons: [], price: 100, candleTime: T0, indicators: { emaFast: null, emaSlow: null, rsi: null, atr: null }, takeProfit: null, stopLoss: null };
}

describe("DecisionTraceThrottle", () => {
  it("records one trace per interval, and a changed decision at once", () => {
    const traces = new DecisionTraceThrottle("sim", 5 * MIN);
    expect(traces.trace("BTC/USDT", decision("NO_SIGNAL"), T0, {})).toBeDefined();
    expect(traces.trace("BTC/USDT", decision("NO_SIGNAL"), T0 + MIN, {})).toBeUndefined();
    expect(traces.trace("BTC/USDT", decision("BUY"), T0 + 2 * MIN, {})).toBeDefined();
    expect(traces.trace("BTC/USDT", decision("NO_SIGNAL"), T0 + 3 * MIN, {})).toBeDefined();
    expect(traces.trace("BTC/USDT", decision("BUY"), T0 + 4 * MIN, {})).toBeDefined();
  });

  it("keys a trace by coin and tick time, so a tick replayed after a crash is stored once whatever it decides", () => {
    const before = new DecisionTraceThrottle("sim", 5 * MIN).trace("BTC/USDT", decision("BUY"), T0, {});
    // After the restart the position opened the first time is held, and the same tick decides otherwise.
    const replay = new DecisionTraceThrottle("sim", 5 * MIN).trace("BTC/USDT", decision("NO_SIGNAL"), T0, {});
    expect(replay?.eventKey).toBe(before?.eventKey);
    const later = new DecisionTraceThrottle("sim", 5 * MIN).trace("BTC/USDT", decision("NO_SIGNAL"), T0 + MIN, {});
    expect(later?.eventKey).not.toBe(before?.eventKey);
  });
});
