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
  /** DATABASE_URL's database: what the bot writes to, where the checks that write (or look at the server itself) run. */
  db: Database;
  /** Where the read-only checks of the bot's data read: the read replica (DATABASE_READ_URL), else `db`. */
  readDb: Database;
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

export { plural } from "@candlekeep/core";

/**
 * An amount or price as people read it: at most 8 decimals (the smallest unit of most coins),
 * more only for a value below 1 that needs them to keep 8 significant digits; no binary noise
 * and no exponent. 1.2150886286826903 → "1.21508863", 9949.449499999999 → "9949.4495",
 * 0.000000012345 → "0.000000012345".
 */
export function amount(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const magnitude = value === 0 ? 0 : Math.floor(Math.log10(Math.abs(value)));
  const text = value.toFixed(Math.min(20, Math.max(8, 7 - magnitude))).replace(/(\.\d*?)0+$/, "$1").replace(/\.$/, "");
  return text === "-0" ? "0" : text;
}
