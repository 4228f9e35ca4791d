import { performance } from "node:perf_hooks";
import { describeError, redactText, type Logger } from "@candlekeep/core";
import type { Check, CheckContext, CheckOutcome, CheckResult, CheckStatus } from "./check";
import type { BalancesProvider } from "./books/holdings";
import { activityCheck } from "./checks/activity";
import { booksCheck } from "./checks/books";
import { connectionCheck } from "./checks/connection";
import { coverageCheck } from "./checks/coverage";
import { historyCheck } from "./checks/history";
import { migrationsCheck } from "./checks/migrations";
import { roundTripCheck } from "./checks/roundtrip";
import { schemaCheck } from "./checks/schema";
import { storageCheck } from "./checks/storage";
import type { CheckName, VerifyConfig } from "./config";
import { resolveTrackedCoins, type TrackedCoins } from "./tracked";

const CHECKS: Readonly<Record<Exclude<CheckName, "connection">, Check>> = {
  migrations: migrationsCheck,
  schema: schemaCheck,
  roundtrip: roundTripCheck,
  coverage: coverageCheck,
  history: historyCheck,
  activity: activityCheck,
  books: booksCheck,
  storage: storageCheck,
};

export interface VerifyReport {
  /** fail when any check failed, warn when any warned, else pass. */
  status: "pass" | "warn" | "fail";
  /** The process exit code for this report: 1 when any check failed, else 0. */
  exitCode: 0 | 1;
  startedAt: string;
  durationMs: number;
  /** Where verify looked (password redacted), once connected. */
  database: string | undefined;
  checks: CheckResult[];
}

export interface RunOptions {
  logger: Logger;
  /** The clock freshness is judged against; tests pin it. */
  now?: () => number;
  /** Called as each check completes, for progress output. */
  onCheck?: (result: CheckResult) => void;
  /** The live account's balances for the books check (the CLI reads them with the keys, see exchange.ts); undefined: not compared. */
  exchangeBalances?: BalancesProvider;
}

function finish(name: CheckName, outcome: CheckOutcome, started: number): CheckResult {
  return {
    name,
    status: outcome.status,
    // Belt and braces: no connection string in a report may carry its password.
    summary: redactText(outcome.summary),
    details: (outcome.details ?? []).map(redactText),
    data: outcome.data,
    durationMs: Math.round(performance.now() - started),
  };
}

/**
 * Runs the configured checks in order against one connection and returns the
 * report; never throws for a failing check (each failure is its result). The
 * connection check comes first; when it fails the others are reported skipped.
 */
export async function runVerify(config: VerifyConfig, options: RunOptions): Promise<VerifyReport> {
  const { logger } = options;
  const nowMs = (options.now ?? Date.now)();
  const runStarted = performance.now();
  const results: CheckResult[] = [];
  const record = (result: CheckResult) => {
    results.push(result);
    options.onCheck?.(result);
  };

  let started = performance.now();
  const connection = await connectionCheck(config, logger);
  record(finish("connection", connection.outcome, started));
  const { db, readDb } = connection;
  try {
    let tracked: Promise<TrackedCoins> | undefined;
    const ctx: CheckContext | undefined = db && readDb && {
      db,
      readDb,
      config,
      nowMs,
      logger,
      trackedCoins: () => (tracked ??= resolveTrackedCoins(readDb, config)),
      exchangeBalances: options.exchangeBalances,
    };
    for (const name of config.checks) {
      if (name === "connection") continue;
      started = performance.now();
      if (!ctx) {
        record(finish(name, { status: "skip", summary: "skipped: no database connection" }, started));
        continue;
      }
      let outcome: CheckOutcome;
      try {
        outcome = await CHECKS[name](ctx);
      } catch (error) {
        logger.debug(`${name} check failure details`, { stack: redactText(error instanceof Error ? (error.stack ?? "") : "") });
        outcome = { status: "fail", summary: `${name} check could not run: ${describeError(error)}` };
      }
      record(finish(name, outcome, started));
    }
  } finally {
    await db?.close().catch((error: unknown) => logger.warn("closing the database failed", { error: describeError(error) }));
    if (readDb !== db) await readDb?.close().catch((error: unknown) => logger.warn("closing the read replica failed", { error: describeError(error) }));
  }

  const statuses = new Set<CheckStatus>(results.map((r) => r.status));
  const status = statuses.has("fail") ? "fail" : statuses.has("warn") ? "warn" : "pass";
  return {
    status,
    exitCode: status === "fail" ? 1 : 0,
    startedAt: new Date(nowMs).toISOString(),
    durationMs: Math.round(performance.now() - runStarted),
    database: db?.target,
    checks: results,
  };
}
