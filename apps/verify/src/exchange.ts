import { UserFacingError, describeError, isCcxtError, scrubSecrets } from "@candlekeep/core";
import type { Balances, Exchange } from "ccxt";
import type { BalancesProvider, ExchangeBalance } from "./books/holdings";
import type { VerifyConfig } from "./config";

/**
 * verify's one connection to the live exchange account: read only (it asks
 * for the balances, nothing else), made once at start when the books check
 * compares a live account, closed at the end.
 */
export interface ExchangeAccount {
  exchange: string;
  balances: BalancesProvider;
  close(): Promise<void>;
}

/** EXCHANGE names an id ccxt does not know (live, with keys: there is an account to read). */
export class UnknownExchangeError extends UserFacingError {
  override readonly name = "UnknownExchangeError";
  constructor(readonly exchangeId: string) {
    super(`EXCHANGE "${exchangeId}" is not an exchange ccxt supports, so verify cannot read the live account's balances. Set EXCHANGE to the bot's exchange id (e.g. binance, kraken, coinbase).`);
  }
}

/** Reading the balances failed; the message is one line naming the exchange and the reason, without credentials. */
export class ExchangeBalancesError extends Error {
  override readonly name = "ExchangeBalancesError";
  constructor(
    message: string,
    readonly exchange: string,
  ) {
    super(message);
  }
}

/** Longest reason kept from an exchange's error (some answer with a whole HTML page). */
const MAX_REASON = 300;

/** True when the books check will compare a live account's balances, so verify connects to the exchange. */
export function comparesExchangeBalances(config: Pick<VerifyConfig, "tradingMode" | "exchange" | "exchangeKeys" | "checks">): boolean {
  return config.tradingMode === "live" && config.exchange !== "sim" && config.exchangeKeys !== undefined && config.checks.includes("books");
}

/**
 * The account the books check compares, or undefined when it compares none
 * (paper, the simulated exchange, no keys, or the books check not selected).
 * Throws UnknownExchangeError for an id ccxt lacks.
 */
export async function openExchangeAccount(config: Pick<VerifyConfig, "tradingMode" | "exchange" | "exchangeKeys" | "checks">): Promise<ExchangeAccount | undefined> {
  if (!comparesExchangeBalances(config) || config.exchangeKeys === undefined) return undefined;
  return ccxtAccount(await connectExchange(config.exchange, config.exchangeKeys));
}

/**
 * A ccxt exchange by id holding the keys, with ccxt's rate limiter on. ccxt is
 * loaded here, on first use: a paper or simulated verify never pays for loading
 * a hundred exchange classes.
 */
export async function connectExchange(exchangeId: string, keys: NonNullable<VerifyConfig["exchangeKeys"]>): Promise<Exchange> {
  const ccxt = (await import("ccxt")).default;
  const ExchangeClass: unknown = Reflect.get(ccxt, exchangeId);
  if (!ccxt.exchanges.includes(exchangeId) || typeof ExchangeClass !== "function") throw new UnknownExchangeError(exchangeId);
  const exchange: unknown = Reflect.construct(ExchangeClass, [{ enableRateLimit: true, apiKey: keys.apiKey, secret: keys.secret }]);
  if (!(exchange instanceof ccxt.Exchange)) throw new UnknownExchangeError(exchangeId);
  return exchange;
}

/** The account behind a ccxt exchange that holds the keys: its balances through fetchBalance, errors scrubbed of the keys. */
export function ccxtAccount(exchange: Exchange): ExchangeAccount {
  const secrets = [exchange.apiKey, exchange.secret, exchange.password, exchange.uid].filter((value): value is string => typeof value === "string" && value !== "");
  return {
    exchange: exchange.id,
    balances: async () => {
      let fetched: Balances;
      try {
        fetched = await exchange.fetchBalance();
      } catch (error) {
        throw new ExchangeBalancesError(`${exchange.id} fetchBalance failed: ${reasonOf(error, secrets)}`, exchange.id);
      }
      return totals(fetched);
    },
    close: () => exchange.close(),
  };
}

/** Each currency's total (free and in orders), leaving out those the account holds none of. */
export function totals(balances: Balances): ExchangeBalance[] {
  const byCurrency: unknown = Reflect.get(balances, "total");
  if (typeof byCurrency !== "object" || byCurrency === null) return [];
  const out: ExchangeBalance[] = [];
  for (const currency of Object.keys(byCurrency)) {
    const entry = balances[currency];
    if (!entry) continue;
    const total = entry.total ?? (entry.free ?? 0) + (entry.used ?? 0);
    if (Number.isFinite(total) && total !== 0) out.push({ currency, total });
  }
  return out;
}

/** "AuthenticationError: binance {…} (check EXCHANGE_API_KEY and EXCHANGE_API_SECRET)": one line, credentials scrubbed, the ccxt class saying what kind of failure it was. */
function reasonOf(error: unknown, secrets: readonly string[]): string {
  const message = describeError(error);
  const named = error instanceof Error && error.name && error.name !== "Error" && !message.startsWith(error.name) ? `${error.name}: ${message}` : message;
  // Scrubbed before it is shortened, so a cut can never leave part of a key behind.
  let reason = scrubSecrets(named, secrets).replace(/\s+/g, " ").trim();
  if (reason.length > MAX_REASON) reason = `${reason.slice(0, MAX_REASON)}…`;
  const hint = isCcxtError(error, "AuthenticationError") ? " (check EXCHANGE_API_KEY and EXCHANGE_API_SECRET: a key with read permission is enough)" : "";
  return `${reason}${hint}`;
}
