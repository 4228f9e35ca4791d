import type { Exchange } from "ccxt";

/**
 * What ccxt 4.5.84 needs, per exchange, to place a market order under our
 * client order id and to find it again (fixtures/ORDER-RULES.md has the source
 * lines; conformance.test.ts runs each through the real ccxt class).
 *
 * Exchanges are recognised by ccxt class, along the prototype chain by name:
 * a subclass (gateeu, bybiteu, myokx) behaves as its parent, and ccxt is loaded
 * lazily (ccxt.ts) so this module does not import its classes.
 */

/** True when `exchange` is ccxt's class `id` or a subclass of it. */
export function isCcxtExchange(exchange: Exchange, id: string): boolean {
  for (let proto: unknown = Object.getPrototypeOf(exchange); proto !== null && typeof proto === "object"; proto = Object.getPrototypeOf(proto)) {
    const ctor: unknown = Reflect.get(proto, "constructor");
    if (typeof ctor === "function" && ctor.name === id) return true;
  }
  return false;
}

/**
 * The createOrder params that carry our client order id. ccxt maps the unified
 * `clientOrderId` on every exchange but coinbase, which drops it and sends its
 * own `ccxt-<uuid>`; there only the raw `client_order_id` reaches the exchange.
 */
export function clientOrderIdParams(exchange: Exchange, clientOrderId: string): Record<string, string> {
  return isCcxtExchange(exchange, "coinbase") ? { client_order_id: clientOrderId } : { clientOrderId };
}

/** Whether an order's client id is ours: gate stores and returns ours as `t-<id>` (ccxt adds the prefix). */
export function isOurClientOrderId(exchange: Exchange, stored: string | undefined, ours: string): boolean {
  return stored === ours || (isCcxtExchange(exchange, "gate") && stored === `t-${ours}`);
}

/**
 * Whether ccxt sends a market buy as the quote to spend (gate, coinbase, bitget,
 * htx): it then needs the price and sends amount × price. Read as ccxt's
 * handleOptionAndParams reads it, the createOrder options before the global
 * ones (bitget keeps it under createOrder; bybit's `false` there is a unified
 * account, which buys by base amount).
 */
export function marketBuyTakesCost(exchange: Exchange): boolean {
  const createOrder: unknown = Reflect.get(exchange.options, "createOrder");
  const perMethod: unknown = typeof createOrder === "object" && createOrder !== null ? Reflect.get(createOrder, "createMarketBuyOrderRequiresPrice") : undefined;
  return (perMethod ?? Reflect.get(exchange.options, "createMarketBuyOrderRequiresPrice")) === true;
}

/**
 * Params for fetchOrder by exchange id: bybit's unified account refuses
 * fetchOrder (ArgumentsRequired) unless told it knows that only the last 500
 * orders can be fetched so. Nowhere else: other exchanges would pass the
 * unknown param on to their API.
 */
export function fetchOrderParams(exchange: Exchange): Record<string, boolean> {
  return isCcxtExchange(exchange, "bybit") ? { acknowledged: true } : {};
}

/** How an exchange can be asked for an order by our client id, when its exchange id is unknown (a lost answer). */
export type ClientIdLookup =
  /** fetchOrder("", symbol, params): ccxt maps the param to the exchange's own field. */
  | { way: "fetchOrder"; params: Record<string, string> }
  /** The order lists, filtered by the exchange with these params. */
  | { way: "lists"; params: Record<string, string> }
  /** Not at all: only the lists, searched here. */
  | { way: "none" };

export function clientIdLookup(exchange: Exchange, clientOrderId: string): ClientIdLookup {
  // binance origClientOrderId, okx clOrdId, gate the order named t-<id>, bitget clientOid, htx clientOrderId.
  if (["binance", "okx", "gate", "bitget", "htx"].some((id) => isCcxtExchange(exchange, id))) return { way: "fetchOrder", params: { clientOrderId } };
  // kraken's fetchOrder turns clientOrderId into its integer userref; its lists take it as cl_ord_id.
  if (isCcxtExchange(exchange, "kraken")) return { way: "lists", params: { clientOrderId } };
  // bybit maps no unified clientOrderId when fetching; its raw orderLinkId filters the lists.
  if (isCcxtExchange(exchange, "bybit")) return { way: "lists", params: { orderLinkId: clientOrderId } };
  return { way: "none" };
}
