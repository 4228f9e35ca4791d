import type { DecisionTraceInput, StoredDecisionTrace } from "@candlekeep/db";
import type { PositionOutcome } from "./positions/manager";
import type { Action, Decision } from "./strategy/types";

/** What the tick adds to a decision's trace: the coin's latest price and what the position manager did with the decision. */
export interface TraceContext {
  /** The latest close of the smallest tracked timeframe (the decision's price is its candle's close). */
  lastPrice: number;
  outcome: PositionOutcome["kind"];
  /** Why nothing was done with the decision (e.g. an order value below the market's minimum). */
  skipped?: string;
}

/**
 * A decision trace's payload: the decision and what explains it, each said once. The reasons
 * state every indicator value the strategy used (a BUY's take-profit and stop-loss, a held
 * position's entry and change), so no separate indicator or position object repeats them (the
 * position itself is in its table and POSITION_* events); what is the same on every trace (the
 * strategy's timeframe and settings) is in the run's STARTUP event; what is usual (no outcome, the
 * last price equal to the decision's) is left out. The dashboard reads action, price and reasons.
 */
export interface TracePayload {
  action: Action;
  /** The coin's previous traced action, when this one differs. */
  changedFrom?: Action;
  price: number;
  /** Open time (ISO) of the candle decided on. */
  candleTime: string;
  reasons: string[];
  lastPrice?: number;
  outcome?: Exclude<PositionOutcome["kind"], "none">;
  skipped?: string;
}

export function tracePayload(decision: Decision, context: TraceContext, changedFrom: Action | undefined): TracePayload {
  return {
    action: decision.action,
    ...(changedFrom === undefined ? {} : { changedFrom }),
    price: decision.price,
    candleTime: new Date(decision.candleTime).toISOString(),
    reasons: decision.reasons,
    ...(context.lastPrice === decision.price ? {} : { lastPrice: context.lastPrice }),
    ...(context.outcome === "none" ? {} : { outcome: context.outcome }),
    ...(context.skipped === undefined ? {} : { skipped: context.skipped }),
  };
}

/**
 * Decides which decision traces to record: one per coin per interval of
 * exchange time, and at once whenever a coin's decision changes.
 */
export class DecisionTraceThrottle {
  private readonly last = new Map<string, { time: number; action: Action }>();

  constructor(
    private readonly exchange: string,
    private readonly intervalMs: number,
  ) {}

  /** Resumes from the newest stored trace of each coin, so a restart does not re-record at once. */
  restore(traces: readonly StoredDecisionTrace[]): void {
    for (const trace of traces) {
      const action = actionOf(trace.payload);
      if (action) this.last.set(trace.symbol, { time: trace.time.getTime(), action });
    }
  }

  /** The trace to record for this decision, or undefined when throttled. */
  trace(symbol: string, decision: Decision, now: number, context: TraceContext): DecisionTraceInput | undefined {
    const previous = this.last.get(symbol);
    const changed = previous !== undefined && previous.action !== decision.action;
    if (previous && !changed && now - previous.time < this.intervalMs) return undefined;
    this.last.set(symbol, { time: now, action: decision.action });
    // Keyed by coin and tick (exchange time): a replay of a tick after a crash is not stored twice,
    // even when it decides differently (e.g. with the position it opened the first time).
    return {
      exchange: this.exchange,
      symbol,
      time: new Date(now),
      payload: tracePayload(decision, context, changed ? previous.action : undefined),
    };
  }
}

const ACTIONS: readonly string[] = ["BUY", "SELL", "NO_SIGNAL"];

function actionOf(payload: unknown): Action | undefined {
  if (typeof payload !== "object" || payload === null || !("action" in payload)) return undefined;
  const action = payload.action;
  return typeof action === "string" && ACTIONS.includes(action) ? (action as Action) : undefined;
}
