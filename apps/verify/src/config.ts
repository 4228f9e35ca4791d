import { z } from "zod";
import {
  DEFAULT_GAP_WINDOW_CANDLES,
  DEFAULT_STALE_AFTER_PERIODS,
  InvalidSettingsError,
  byteSizeSetting,
  defaultLogFormat,
  presentSettings,
  settingsProblems,
  sharedSettingsSchema,
  exchangeKeySettings,
  type LogFormat,
  type LogLevel,
  type SymbolSelection,
  type Timeframe,
  resolveUserPath,
} from "@candlekeep/core";
import { DEFAULT_RETRY, readReplicaProblem, readReplicaSettings, type RetryPolicy } from "@candlekeep/db";

/**
 * verify's configuration: the shared settings (the same DATABASE_URL, EXCHANGE,
 * SYMBOLS, TIMEFRAMES the bot reads) plus verify's own flags, validated once.
 */

export const CHECK_NAMES = ["connection", "migrations", "schema", "roundtrip", "coverage", "history", "activity", "books", "storage"] as const;
export type CheckName = (typeof CHECK_NAMES)[number];

export interface VerifyConfig {
  database: {
    url: string | undefined;
    /** DATABASE_READ_URL: the read replica the read-only checks read from; undefined → they read `url`. */
    readUrl: string | undefined;
    caCert: string | undefined;
    dataDir: string;
    retry: RetryPolicy;
    /** Where migrations live; undefined → the repository's prisma/migrations. */
    migrationsDir: string | undefined;
    /** schema.prisma to compare with; undefined → the repository's. */
    schemaPath: string | undefined;
  };
  exchange: string;
  /**
   * EXCHANGE_API_KEY and EXCHANGE_API_SECRET when both are set: live, the books
   * check reads the account's balances with them (read only). Never logged.
   */
  exchangeKeys: { apiKey: string; secret: string } | undefined;
  /** The bot's TRADING_MODE: whose books the books check adds up. */
  tradingMode: "paper" | "live";
  /** The bot's QUOTE_CURRENCY: the paper account's cash, and what is not a position's coin on a live account. */
  quoteCurrency: string;
  /** --symbols, else SYMBOLS; undefined when neither is set. */
  symbols: SymbolSelection | undefined;
  /** True when the coins came from --symbols (reported as their source). */
  symbolsFromFlag: boolean;
  timeframes: Timeframe[];
  /** The checks to run, in report order; connection is always first (the others need it). */
  checks: CheckName[];
  /** A series is stale when more than this many candles are missing before the forming one. */
  staleAfterPeriods: number;
  /** Gaps are counted among the last this many candles of each series. */
  gapWindowCandles: number;
  /** Coins without a decision trace in this many minutes are listed. */
  activityMinutes: number;
  /** Orders not final that have not changed for this many minutes are reported. */
  unsettledMinutes: number;
  /** DATABASE_STORAGE_BUDGET in bytes: the storage check says how many days of growth are left in it. */
  storageBudgetBytes: number | undefined;
  output: "table" | "json";
  /** --full-audit: the history check reads every stored candle again, not only those new since the last audit. */
  fullAudit: boolean;
  log: { level: LogLevel; format: LogFormat };
}

export const USAGE = `Usage: pnpm --filter verify start -- [--json] [--only CHECK[,CHECK]] [--symbols A/B,C/D] [--full-audit]
                                    [--stale-after PERIODS] [--gap-window CANDLES] [--activity-minutes N] [--unsettled-minutes N] [--retries N]
Checks: ${CHECK_NAMES.join(", ")}.
Reads the bot's settings from the environment (DATABASE_URL, CANDLEKEEP_DATA_DIR, EXCHANGE, SYMBOLS, TIMEFRAMES, TRADING_MODE, QUOTE_CURRENCY,
DATABASE_STORAGE_BUDGET for the days of growth left,
and live: EXCHANGE_API_KEY, EXCHANGE_API_SECRET to compare the open positions with the account's balances; see README).
--full-audit: the history check reads every stored candle again (after candles were deleted by hand or restored from an older backup).
Exit code: 0 when no check fails (warnings allowed), 1 when one fails, 2 for bad usage or settings.
With the embedded database (DATABASE_URL unset), stop the bot first: the embedded engine is meant for one process at a time.
DATABASE_READ_URL: a read replica for the read-only checks (coverage, activity, books); see README.`;

const wholeNumber = (flag: string, min: number, max: number) =>
  z.coerce.number({ message: `${flag} must be a number` }).int(`${flag} must be a whole number`).min(min, `${flag} must be at least ${min}`).max(max, `${flag} must be at most ${max}`);

const flagsSchema = z.object({
  json: z.boolean(),
  fullAudit: z.boolean(),
  only: z
    .string()
    .optional()
    .transform((value, ctx): CheckName[] | undefined => {
      if (value === undefined) return undefined;
      const names = [...new Set(value.split(",").map((s) => s.trim().toLowerCase()).filter(Boolean))];
      const unknown = names.filter((name) => !(CHECK_NAMES as readonly string[]).includes(name));
      if (names.length === 0 || unknown.length > 0) {
        ctx.addIssue({ code: "custom", message: `--only ${unknown.length ? `has unknown check ${unknown.join(", ")}` : "is empty"}; use one or more of ${CHECK_NAMES.join(", ")}` });
      }
      return CHECK_NAMES.filter((name) => names.includes(name));
    }),
  staleAfter: wholeNumber("--stale-after", 0, 10_000).default(DEFAULT_STALE_AFTER_PERIODS),
  gapWindow: wholeNumber("--gap-window", 1, 100_000).default(DEFAULT_GAP_WINDOW_CANDLES),
  activityMinutes: wholeNumber("--activity-minutes", 1, 525_600).default(15),
  unsettledMinutes: wholeNumber("--unsettled-minutes", 1, 525_600).default(10),
  retries: wholeNumber("--retries", 0, 20).default(DEFAULT_RETRY.retries),
});

const envSchema = sharedSettingsSchema.extend({
  ...exchangeKeySettings,
  DATABASE_STORAGE_BUDGET: byteSizeSetting("DATABASE_STORAGE_BUDGET").optional(),
  NODE_ENV: z.string().optional(),
});

/** Flags that take a value, and the key each sets. */
const VALUE_FLAGS: Readonly<Record<string, "only" | "symbols" | "staleAfter" | "gapWindow" | "activityMinutes" | "unsettledMinutes" | "retries">> = {
  "--only": "only",
  "--symbols": "symbols",
  "--stale-after": "staleAfter",
  "--gap-window": "gapWindow",
  "--activity-minutes": "activityMinutes",
  "--unsettled-minutes": "unsettledMinutes",
  "--retries": "retries",
};

interface ParsedArgs {
  json: boolean;
  fullAudit: boolean;
  values: Partial<Record<(typeof VALUE_FLAGS)[string], string>>;
  problems: string[];
}

function parseArgs(argv: readonly string[]): ParsedArgs {
  const parsed: ParsedArgs = { json: false, fullAudit: false, values: {}, problems: [] };
  const args = argv.filter((arg) => arg !== "--"); // pnpm passes a literal "--" through
  for (let i = 0; i < args.length; i += 1) {
    const arg = args[i] as string;
    const eq = arg.startsWith("--") ? arg.indexOf("=") : -1;
    const flag = eq < 0 ? arg : arg.slice(0, eq);
    if (flag === "--json" && eq < 0) {
      parsed.json = true;
      continue;
    }
    if (flag === "--full-audit" && eq < 0) {
      parsed.fullAudit = true;
      continue;
    }
    const key = VALUE_FLAGS[flag];
    if (key === undefined) {
      parsed.problems.push(`unknown argument "${arg}"`);
      continue;
    }
    let value: string | undefined = eq < 0 ? undefined : arg.slice(eq + 1);
    if (value === undefined) {
      const next = args[i + 1];
      if (next !== undefined && !next.startsWith("--")) {
        value = next;
        i += 1;
      }
    }
    if (value === undefined || value.trim() === "") parsed.problems.push(`${flag} needs a value`);
    else parsed.values[key] = value;
  }
  return parsed;
}

/**
 * Builds the configuration from the environment and the command line. Throws
 * InvalidSettingsError listing every problem, one per line, without echoing
 * values (they may be secrets).
 */
export function loadConfig(env: Record<string, string | undefined>, argv: readonly string[], isTty: boolean): VerifyConfig {
  const args = parseArgs(argv);
  const problems = [...args.problems];
  const { symbols: symbolsFlag, ...flagValues } = args.values;
  // --symbols overrides SYMBOLS and is validated by the same rule, so both say the same thing about a bad coin.
  const merged = presentSettings({ ...env, ...(symbolsFlag === undefined ? {} : { SYMBOLS: symbolsFlag }) });
  const settings = envSchema.extend(readReplicaSettings).safeParse(merged);
  const flags = flagsSchema.safeParse({ json: args.json, fullAudit: args.fullAudit, ...flagValues });
  if (!settings.success) problems.push(...settingsProblems(settings.error).map((p) => (symbolsFlag !== undefined ? p.replace(/^SYMBOLS\b/, "--symbols (SYMBOLS)") : p)));
  if (!flags.success) problems.push(...settingsProblems(flags.error).map((p) => p.replace(/^(\w+): /, "")));
  const replicaProblem = settings.success ? readReplicaProblem(settings.data) : undefined;
  if (replicaProblem !== undefined) problems.push(replicaProblem);
  if (!settings.success || !flags.success || problems.length > 0) throw new InvalidSettingsError(problems);
  const s = settings.data;
  const f = flags.data;

  const selected = f.only ?? [...CHECK_NAMES];
  return {
    database: {
      url: s.DATABASE_URL,
      readUrl: s.DATABASE_READ_URL,
      caCert: s.DATABASE_CA_CERT,
      dataDir: resolveUserPath(s.CANDLEKEEP_DATA_DIR, env),
      retry: { ...DEFAULT_RETRY, retries: f.retries },
      migrationsDir: undefined,
      schemaPath: undefined,
    },
    exchange: s.EXCHANGE,
    exchangeKeys: s.EXCHANGE_API_KEY !== undefined && s.EXCHANGE_API_SECRET !== undefined ? { apiKey: s.EXCHANGE_API_KEY, secret: s.EXCHANGE_API_SECRET } : undefined,
    tradingMode: s.TRADING_MODE,
    quoteCurrency: s.QUOTE_CURRENCY,
    symbols: s.SYMBOLS,
    symbolsFromFlag: symbolsFlag !== undefined,
    timeframes: s.TIMEFRAMES,
    checks: CHECK_NAMES.filter((name) => name === "connection" || selected.includes(name)),
    staleAfterPeriods: f.staleAfter,
    gapWindowCandles: f.gapWindow,
    activityMinutes: f.activityMinutes,
    unsettledMinutes: f.unsettledMinutes,
    storageBudgetBytes: s.DATABASE_STORAGE_BUDGET,
    output: f.json ? "json" : "table",
    fullAudit: f.fullAudit,
    log: { level: s.LOG_LEVEL, format: s.LOG_FORMAT ?? defaultLogFormat({ NODE_ENV: s.NODE_ENV }, isTty) },
  };
}
