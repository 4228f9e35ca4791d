import { createHash } from "node:crypto";

/** "ck" and 16 hex digits: 18 alphanumerics, within every exchange's rules (kraken's 18, gate's 28 with its "t-", okx's 32). */
const HASH_DIGITS = 16;

/**
 * A client order id derived from what the order is for (the exchange, the coin,
 * the decision's candle, the side, the exit's sequence), so the same decision
 * acted on again after a crash names the same order and cannot place a second one.
 */
export function clientOrderId(parts: readonly (string | number)[]): string {
  return `ck${createHash("sha256").update(parts.join("|")).digest("hex").slice(0, HASH_DIGITS)}`;
}

/** The id of the entry on a decision's candle. */
export function entryOrderId(exchange: string, symbol: string, candleTime: number): string {
  return clientOrderId([exchange, symbol, candleTime, "buy"]);
}

/** The id of a position's n-th exit order (0 first): a partial exit's remainder is sold by the next. */
export function exitOrderId(exchange: string, positionKey: string, sequence: number): string {
  return clientOrderId([exchange, positionKey, "sell", sequence]);
}
