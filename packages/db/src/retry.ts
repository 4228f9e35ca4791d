import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "@candlekeep/core";

export interface RetryPolicy {
  /** Retries after the first failed attempt (the seed: 5). */
  retries: number;
  /** Delay before the first retry; doubles each time (the seed: 1 s). */
  initialDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { retries: 5, initialDelayMs: 1000 };

/**
 * Runs `attempt` until it succeeds, `isRetryable` says no, the retries are used up, or `signal`
 * aborts (it ends the wait before the next attempt: a stop requested while the database is down
 * must not wait out the retries). Resolves with the result; rejects with the last error and the
 * number of attempts made.
 */
export async function withRetry<T>(
  attempt: () => Promise<T>,
  policy: RetryPolicy,
  options: { isRetryable: (error: unknown) => boolean; logger: Logger; what: string; signal?: AbortSignal | undefined },
): Promise<T> {
  let delay = policy.initialDelayMs;
  for (let tried = 1; ; tried += 1) {
    try {
      return await attempt();
    } catch (error) {
      if (tried > policy.retries || !options.isRetryable(error) || options.signal?.aborted) {
        throw new RetryExhaustedError(error, tried);
      }
      options.logger.warn(`${options.what} failed, retrying`, {
        attempt: tried,
        retryInMs: delay,
        error: error instanceof Error ? error.message : String(error),
      });
      const stopped = await sleep(delay, false, { signal: options.signal }).catch(() => true);
      if (stopped) throw new RetryExhaustedError(error, tried);
      delay *= 2;
    }
  }
}

export class RetryExhaustedError extends Error {
  override readonly name = "RetryExhaustedError";
  constructor(
    readonly lastError: unknown,
    readonly attempts: number,
  ) {
    super(lastError instanceof Error ? lastError.message : String(lastError));
  }
}
