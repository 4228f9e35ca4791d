// A coin the exchange no longer lists, found at start-up (startup.ts) or by a tick's fetch (tick.ts): one wording, one event.
import type { Logger } from "@candlekeep/core";
import type { EventInput, OpenPosition } from "@candlekeep/db";
import type { BotRuntime } from "./runtime";

/** What the user is told about a delisted coin with an open position, at start-up and while running alike. */
const DELISTED_WITH_POSITION = "the exchange no longer lists a coin with an open position: the coin is not fetched or traded, its position is left as saved for you to settle";
const DELISTED = "the exchange no longer lists a coin: the coin is not fetched or traded";

/** One warning for a delisted coin; `details` adds what the caller knows (the exchange's answer, what a restart needs). */
export function warnDelisted(logger: Logger, exchange: string, symbol: string, position: OpenPosition | undefined, details: Record<string, string> = {}): void {
  const about = { exchange, symbol, ...(position ? { quantity: position.quantity, entryOrderId: position.entryOrderId } : {}), ...details };
  logger.warn(position ? DELISTED_WITH_POSITION : DELISTED, about);
}

/** The position's COIN_DELISTED event: its key makes every later report of it (a restart's) a no-op. */
export function delistedEvent(exchange: string, position: OpenPosition, time: Date): EventInput {
  return {
    type: "COIN_DELISTED",
    level: "warn",
    symbol: position.symbol,
    time,
    eventKey: `${exchange}:delisted:${position.entryOrderId}`,
    payload: { side: position.side, quantity: position.quantity, entryPrice: position.entryPrice, openedAt: position.openedAt, entryOrderId: position.entryOrderId },
  };
}

/**
 * Coins a tick's fetch found no longer listed, dropped for the rest of the run: out of the tracked coins
 * (the ticks, the background history repair and the in-process dashboard's coins read them), an open
 * position released from management with its row left as saved and its COIN_DELISTED event queued with
 * the tick's events. What start-up does with such a coin, so a restart changes nothing.
 */
export function dropDelisted(rt: BotRuntime, delisted: readonly { symbol: string; error: string }[], now: number): void {
  for (const { symbol, error } of delisted) {
    const index = rt.symbols.indexOf(symbol);
    if (index < 0) continue;
    // In place: the background history repair runs on a copy of the runtime that shares this array.
    rt.symbols.splice(index, 1);
    const position = rt.positions.release(symbol);
    // A start refuses a SYMBOLS list naming a coin the exchange does not list: said now, not at the next start.
    const named = rt.config.exchange.symbols?.kind === "list" && rt.config.exchange.symbols.symbols.includes(symbol);
    warnDelisted(rt.logger, rt.market.id, symbol, position, { error, ...(named ? { nextStart: "remove it from SYMBOLS: a start refuses a coin the exchange does not list" } : {}) });
    if (position) rt.pendingEvents.push(delistedEvent(rt.market.id, position, new Date(now)));
  }
}
