import { setTimeout as sleep } from "node:timers/promises";
import { describeError, isCcxtError, scrubSecrets, type Logger } from "@candlekeep/core";

/**
 * Calling an exchange: transient failures are retried with backoff, every
 * failure ends as one ExchangeCallError whose message names the exchange, the
 * operation, the symbol and the reason, with credentials scrubbed.
 */

/** Waits before the 2nd, 3rd and 4th attempt (exponential backoff). */
export const DEFAULT_RETRY_DELAYS_MS: readonly number[] = [500, 1000, 2000];

/**
 * ccxt's transient failures. All of them derive from NetworkError (RequestTimeout,
 * RateLimitExceeded, DDoSProtection, ExchangeNotAvailable, OnMaintenance, InvalidNonce);
 * isCcxtError checks the names along the prototype chain, so errors from either of
 * ccxt's builds match.
 */
const TRANSIENT_ERROR_NAMES = new Set(["NetworkError", "RequestTimeout", "RateLimitExceeded", "DDoSProtection", "ExchangeNotAvailable"]);

export function isTransientExchangeError(error: unknown): boolean {
  return [...TRANSIENT_ERROR_NAMES].some((name) => isCcxtError(error, name));
}

/** Failure of one exchange call, after any retries. */
export class ExchangeCallError extends Error {
  override readonly name: string = "ExchangeCallError";
  constructor(
    message: string,
    readonly exchange: string,
    readonly operation: string,
    readonly symbol: string | undefined,
    readonly attempts: number,
    readonly transient: boolean,
  ) {
    super(message);
  }
}

/**
 * The exchange does not list the symbol (any more): ccxt's BadSymbol, e.g. binance's -1121 "Invalid
 * symbol." for a pair it has removed. Not transient: asking again cannot succeed, so the running bot
 * stops fetching and trading the coin (tick.ts) rather than failing it every tick.
 */
export class SymbolNotListedError extends ExchangeCallError {
  override readonly name = "SymbolNotListedError";
  constructor(message: string, exchange: string, operation: string, symbol: string, attempts = 1) {
    super(message, exchange, operation, symbol, attempts, false);
  }
}

export interface RetryOptions {
  exchange: string;
  logger: Logger;
  /** One delay per retry; its length is the number of retries. */
  delaysMs?: readonly number[];
  /** Replaced in tests so retries do not wait. */
  sleep?: (ms: number) => Promise<void>;
  /** Values that must never appear in an error message or log line (API key, secret). */
  secrets?: readonly (string | undefined)[];
}

export interface CallDescription {
  operation: string;
  symbol?: string | undefined;
  /** Extra words after the symbol, e.g. the timeframe. */
  detail?: string | undefined;
}

/** Runs `call`, retrying transient ccxt errors with the configured delays. */
export async function callWithRetry<T>(options: RetryOptions, what: CallDescription, call: () => Promise<T>): Promise<T> {
  const delays = options.delaysMs ?? DEFAULT_RETRY_DELAYS_MS;
  const wait = options.sleep ?? sleep;
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await call();
    } catch (error) {
      const transient = isTransientExchangeError(error);
      const delay = delays[attempt - 1];
      if (!transient || delay === undefined) throw exchangeCallError(options, what, error, attempt, transient);
      options.logger.warn("exchange call failed; retrying", {
        exchange: options.exchange,
        operation: what.operation,
        symbol: what.symbol,
        attempt,
        retryInMs: delay,
        error: scrubSecrets(describeCcxtError(error), options.secrets ?? []),
      });
      await wait(delay);
    }
  }
}

/** Wraps a failure of one call into an ExchangeCallError with a one-line, secret-free message (a SymbolNotListedError for ccxt's BadSymbol on a symbol's call). */
export function exchangeCallError(options: Pick<RetryOptions, "exchange" | "secrets">, what: CallDescription, error: unknown, attempts: number, transient: boolean): ExchangeCallError {
  const subject = [options.exchange, what.operation, what.symbol, what.detail].filter(Boolean).join(" ");
  const tries = attempts > 1 ? ` after ${attempts} attempts` : "";
  const hint = isCcxtError(error, "AuthenticationError") ? " (check EXCHANGE_API_KEY and EXCHANGE_API_SECRET)" : "";
  const reason = scrubSecrets(describeCcxtError(error), options.secrets ?? []);
  if (what.symbol !== undefined && isCcxtError(error, "BadSymbol")) return new SymbolNotListedError(`${subject} failed${tries}: ${reason}`, options.exchange, what.operation, what.symbol, attempts);
  return new ExchangeCallError(`${subject} failed${tries}: ${reason}${hint}`, options.exchange, what.operation, what.symbol, attempts, transient);
}

/** "RequestTimeout: binance GET … timed out" — the ccxt class name tells what kind of failure it was. */
function describeCcxtError(error: unknown): string {
  const message = describeError(error);
  if (error instanceof Error && error.name && error.name !== "Error" && !message.startsWith(error.name)) return `${error.name}: ${message}`;
  return message;
}
