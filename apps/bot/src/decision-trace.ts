import type { EventInput, StoredEvent } from "@candlekeep/db";
import type { Action, Decision } from "./strategy/types";

/**
 * Decides which DECISION_TRACE events to record: one per coin per interval of
 * exchange time, and at once whenever a coin's decision changes.
 */
export class DecisionTraceThrottle {
  private readonly last = new Map<string, { time: number; action: Action }>();

  constructor(
    private readonly exchange: string,
    private readonly intervalMs: number,
  ) {}

  /** Resumes from the newest stored trace of each coin, so a restart does not re-record at once. */
  restore(events: readonly StoredEvent[]): void {
    for (const event of events) {
      const action = actionOf(event.payload);
      if (event.symbol && action) this.last.set(event.symbol, { time: event.time.getTime(), action });
    }
  }

  /** The event to record for this decision, or undefined when throttled. */
  trace(symbol: string, decision: Decision, now: number, context: Record<string, unknown>): EventInput | undefined {
    const previous = this.last.get(symbol);
    const changed = previous !== undefined && previous.action !== decision.action;
    if (previous && !changed && now - previous.time < this.intervalMs) return undefined;
    this.last.set(symbol, { time: now, action: decision.action });
    return {
      type: "DECISION_TRACE",
      symbol,
      time: new Date(now),
      // One trace per coin per tick (exchange time): a replay of a tick after a crash is not stored
      // twice, even when it decides differently (e.g. with the position it opened the first time).
      eventKey: `${this.exchange}:decision:${symbol}:${now}`,
      payload: {
        action: decision.action,
        changedFrom: changed ? previous.action : undefined,
        price: decision.price,
        candleTime: new Date(decision.candleTime).toISOString(),
        reasons: decision.reasons,
        indicators: decision.indicators,
        takeProfit: decision.takeProfit,
        stopLoss: decision.stopLoss,
        ...context,
      },
    };
  }
}

const ACTIONS: readonly string[] = ["BUY", "SELL", "NO_SIGNAL"];

function actionOf(payload: unknown): Action | undefined {
  if (typeof payload !== "object" || payload === null || !("action" in payload)) return undefined;
  const action = payload.action;
  return typeof action === "string" && ACTIONS.includes(action) ? (action as Action) : undefined;
}
