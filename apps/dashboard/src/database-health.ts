import { describeError, redactText, type Logger } from "@candlekeep/core";
import { DatabaseUnreachableError } from "@candlekeep/db";

/** A dashboard read waits this long for the database, then counts it as not answering. */
export const DATABASE_READ_DEADLINE_MS = 8_000;

/** The database did not answer a read within the deadline. */
export class DatabaseTimeoutError extends Error {
  override readonly name = "DatabaseTimeoutError";
  constructor(ms: number) {
    super(`the database did not answer within ${ms / 1000} s`);
  }
}

/** A read failed because the database is unreachable: answered 503 with when that began, never with where the database is. */
export class DatabaseDownError extends Error {
  override readonly name = "DatabaseDownError";
  constructor(readonly since: Date) {
    super(`database unreachable since ${since.toISOString()}; the dashboard retries on the next request`);
  }
}

// Node's socket errors, and PostgreSQL's: class 08 (connection exception), 57P01-03 (shutting down, cannot connect now), 53300 (too many connections).
const CONNECTION_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ECONNABORTED", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "EHOSTDOWN", "ENETDOWN", "EAI_AGAIN", "ENOTFOUND", "EPIPE", "ENOENT", "57P01", "57P02", "57P03", "53300"]);
// What pg says without a code when a connection ends or cannot be made in time.
const CONNECTION_MESSAGES = /connection terminated|timeout exceeded when trying to connect|connection timeout|client has encountered a connection error|server closed the connection|connection.*(ended|closed) unexpectedly/i;

/** True for a failure to reach or stay connected to the database (as opposed to a query the database refused). */
export function isConnectionFailure(error: unknown): boolean {
  if (error instanceof DatabaseTimeoutError || error instanceof DatabaseUnreachableError || error instanceof DatabaseDownError) return true;
  if (typeof error !== "object" || error === null) return false;
  const code = "code" in error && typeof error.code === "string" ? error.code : undefined;
  if (code !== undefined && (CONNECTION_CODES.has(code) || code.startsWith("08"))) return true;
  if (CONNECTION_MESSAGES.test(describeError(error))) return true;
  // AggregateError (a host with several addresses, all refusing) and wrapped causes.
  if ("errors" in error && Array.isArray(error.errors) && error.errors.some(isConnectionFailure)) return true;
  return "cause" in error && error.cause !== error && error.cause !== undefined && isConnectionFailure(error.cause);
}

/** Resolves or rejects as `work` does, or rejects with DatabaseTimeoutError after `ms`. */
export function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new DatabaseTimeoutError(ms)), ms);
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

/**
 * Whether the dashboard's reads reach the database, and since when they do
 * not. The log says so once when an outage begins and once when it ends, not
 * once per request.
 */
export class DatabaseHealth {
  private downSince: Date | undefined;
  private failures = 0;

  constructor(
    private readonly logger: Logger | undefined,
    private readonly clock: () => number = Date.now,
  ) {}

  get since(): Date | undefined {
    return this.downSince;
  }

  /** A read failed to reach the database: returns since when it has been down. */
  failed(error: unknown): Date {
    this.failures += 1;
    if (this.downSince === undefined) {
      this.downSince = new Date(this.clock());
      // The log may name the server; what the page gets never does.
      this.logger?.warn("dashboard: the database is unreachable; its API answers 503 until it is back", { error: redactText(describeError(error)) });
    }
    return this.downSince;
  }

  /** A read succeeded: ends an outage, if one was on. */
  succeeded(): void {
    if (this.downSince === undefined) return;
    this.logger?.info("dashboard: the database is back", { downForMs: this.clock() - this.downSince.getTime(), failedReads: this.failures });
    this.downSince = undefined;
    this.failures = 0;
  }
}
