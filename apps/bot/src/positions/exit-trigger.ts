import type { Candle } from "@candlekeep/core";
import type { ExitReason } from "@candlekeep/db";
import type { Action } from "../strategy/types";

/** Why and where an open position exits. */
export interface ExitTrigger {
  reason: ExitReason;
  /** The price a resting stop/target order would have filled at. */
  price: number;
  /** openTime of the candle that triggered it; absent when the last price or the signal did. */
  candleTime?: number;
}

export interface ExitLevels {
  stopLoss: number | null;
  takeProfit: number | null;
}

/**
 * Whether a position with these levels exits, seeing every candle since the last
 * check (`candles`, one timeframe, oldest first, the last may be forming) and not
 * only the last price: a stop touched by a low between checks is still a stop.
 * The first candle that reaches a level triggers. Without one, the last price is
 * checked against the levels, and then a SELL signal exits at the last price.
 */
export function exitTrigger(levels: ExitLevels, candles: readonly Candle[], action: Action, lastPrice: number): ExitTrigger | undefined {
  for (const candle of candles) {
    const hit = levelHit(levels, candle);
    if (hit) return { ...hit, candleTime: candle.openTime };
  }
  const atLast = levelHit(levels, { open: lastPrice, high: lastPrice, low: lastPrice });
  if (atLast) return atLast;
  return action === "SELL" ? { reason: "SIGNAL", price: lastPrice } : undefined;
}

function levelHit({ stopLoss, takeProfit }: ExitLevels, { open, high, low }: Pick<Candle, "open" | "high" | "low">): Omit<ExitTrigger, "candleTime"> | undefined {
  // A candle that opens beyond a level traded there first: a resting order fills at the open.
  if (stopLoss !== null && open <= stopLoss) return { reason: "STOP_LOSS", price: open };
  if (takeProfit !== null && open >= takeProfit) return { reason: "TAKE_PROFIT", price: open };
  // Stop-loss first (the conservative reading when a candle spans both levels).
  if (stopLoss !== null && low <= stopLoss) return { reason: "STOP_LOSS", price: stopLoss };
  if (takeProfit !== null && high >= takeProfit) return { reason: "TAKE_PROFIT", price: takeProfit };
  return undefined;
}
