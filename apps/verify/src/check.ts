import type { Logger } from "@candlekeep/core";
import type { Database } from "@candlekeep/db";
import type { BalancesProvider } from "./books/holdings";
import type { CheckName, VerifyConfig } from "./config";
import type { TrackedCoins } from "./tracked";

export type CheckStatus = "pass" | "warn" | "fail" | "skip";

/** What a check found: a status and one line saying why, plus optional detail lines and data for --json. */
export interface CheckOutcome {
  status: CheckStatus;
  summary: string;
  details?: string[];
  data?: Record<string, unknown>;
}

export interface CheckResult {
  name: CheckName;
  status: CheckStatus;
  summary: string;
  details: string[];
  data: Record<string, unknown> | undefined;
  durationMs: number;
}

/** Everything a check (after connection) needs; checks read nothing else. */
export interface CheckContext {
  db: Database;
  config: VerifyConfig;
  /** The moment the run started: every check judges freshness against the same clock. */
  nowMs: number;
  logger: Logger;
  /** The coins to check, resolved once per run on first use. */
  trackedCoins(): Promise<TrackedCoins>;
  /** The live account's balances, for the books check; undefined: not compared (paper, EXCHANGE=sim, or no keys). */
  exchangeBalances: BalancesProvider | undefined;
}

export type Check = (ctx: CheckContext) => Promise<CheckOutcome>;

/** "A, B, C and 12 more": keeps a detail line short while saying how many were left out. */
export function listSome(items: readonly string[], max = 10, separator = ", "): string {
  if (items.length <= max) return items.join(separator);
  return `${items.slice(0, max).join(separator)} … and ${items.length - max} more (--json lists all)`;
}

export const plural = (n: number, word: string, many = `${word}s`) => `${n} ${n === 1 ? word : many}`;
