import { z } from "zod";
import {
  DEFAULT_GAP_WINDOW_CANDLES,
  DEFAULT_STALE_AFTER_PERIODS,
  InvalidSettingsError,
  byteSizeSetting,
  defaultLogFormat,
  parseSettings,
  resolveUserPath,
  sharedSettingsSchema,
  type LogFormat,
  type LogLevel,
  type SymbolSelection,
  type Timeframe,
} from "@candlekeep/core";
import { InvalidDatabaseUrlError, parseDatabaseUrl, readReplicaProblem, readReplicaSettings } from "@candlekeep/db";

/**
 * The standalone dashboard's configuration: the shared settings (the same
 * DATABASE_URL, EXCHANGE, SYMBOLS, TIMEFRAMES the bot reads, so it shows the
 * bot's coins) plus its own address and token, validated once at start.
 */
export interface DashboardConfig {
  /** `readUrl`: DATABASE_READ_URL, the read replica the dashboard reads instead of `url` when set. */
  database: { url: string | undefined; readUrl: string | undefined; caCert: string | undefined; poolMax: number; connectRetries: number; dataDir: string };
  exchange: string;
  symbols: SymbolSelection | undefined;
  timeframes: Timeframe[];
  server: { host: string; port: number; token: string | undefined };
  staleAfterPeriods: number;
  gapWindowCandles: number;
  /** DATABASE_STORAGE_BUDGET in bytes: the system panel shows the days of growth left in it. */
  storageBudgetBytes: number | undefined;
  log: { level: LogLevel; format: LogFormat };
}

/** DASHBOARD_TOKEN: long enough that guessing it over HTTP is hopeless. */
export const dashboardTokenSetting = z
  .string()
  .trim()
  .min(16, "DASHBOARD_TOKEN must be at least 16 characters (e.g. `openssl rand -hex 24`)")
  .refine((v) => !/\s/.test(v), { message: "DASHBOARD_TOKEN must not contain spaces" });

const wholeNumber = (name: string, min: number, max: number, tooLarge = `${name} must be at most ${max}`) =>
  z.coerce.number({ message: `${name} must be a number` }).int(`${name} must be a whole number`).min(min, `${name} must be at least ${min}`).max(max, tooLarge);

/**
 * The largest GAP_WINDOW_CANDLES: every refresh counts that many candles of
 * every series (100,000 took 7.8 s per poll at 46 M candles). Older gaps are
 * the history audit's: it records them once, and the cells show them on hover.
 */
const MAX_GAP_WINDOW_CANDLES = 5_000;

const dashboardEnvSchema = sharedSettingsSchema.extend({
  ...readReplicaSettings,
  DASHBOARD_PORT: wholeNumber("DASHBOARD_PORT", 0, 65535).default(8081),
  DASHBOARD_HOST: z.string().trim().min(1, "DASHBOARD_HOST is empty; unset it to use 127.0.0.1").default("127.0.0.1"),
  DASHBOARD_TOKEN: dashboardTokenSetting.optional(),
  STALE_AFTER_PERIODS: wholeNumber("STALE_AFTER_PERIODS", 0, 10_000).default(DEFAULT_STALE_AFTER_PERIODS),
  GAP_WINDOW_CANDLES: wholeNumber(
    "GAP_WINDOW_CANDLES",
    1,
    MAX_GAP_WINDOW_CANDLES,
    `GAP_WINDOW_CANDLES must be at most ${MAX_GAP_WINDOW_CANDLES}: every refresh counts that many candles of every series. Gaps older than that are found by the history audit (verify's history check) and shown when you hover a cell`,
  ).default(DEFAULT_GAP_WINDOW_CANDLES),
  DATABASE_STORAGE_BUDGET: byteSizeSetting("DATABASE_STORAGE_BUDGET").optional(),
  NODE_ENV: z.string().optional(),
});

/**
 * Throws InvalidSettingsError listing every problem; never echoes a value (the token is a secret).
 * A malformed DATABASE_URL is a settings problem here too, as for the bot: exit 2, not a failed start.
 */
export function loadDashboardConfig(env: Record<string, string | undefined>, isTty: boolean): DashboardConfig {
  const s = parseSettings(dashboardEnvSchema, env);
  const problems: string[] = [];
  if (s.DATABASE_URL !== undefined) {
    try {
      parseDatabaseUrl(s.DATABASE_URL);
    } catch (error) {
      if (!(error instanceof InvalidDatabaseUrlError)) throw error;
      problems.push(error.message); // never holds the password
    }
  }
  const replicaProblem = readReplicaProblem(s);
  if (replicaProblem !== undefined) problems.push(replicaProblem);
  if (problems.length > 0) throw new InvalidSettingsError(problems);
  return {
    database: {
      url: s.DATABASE_URL,
      readUrl: s.DATABASE_READ_URL,
      caCert: s.DATABASE_CA_CERT,
      poolMax: s.DATABASE_POOL_MAX,
      connectRetries: s.DATABASE_CONNECT_RETRIES,
      // The same directory as the bot's and verify's: `pnpm --filter dashboard start` runs inside apps/dashboard.
      dataDir: resolveUserPath(s.CANDLEKEEP_DATA_DIR, env),
    },
    exchange: s.EXCHANGE,
    symbols: s.SYMBOLS,
    timeframes: s.TIMEFRAMES,
    server: { host: s.DASHBOARD_HOST, port: s.DASHBOARD_PORT, token: s.DASHBOARD_TOKEN },
    staleAfterPeriods: s.STALE_AFTER_PERIODS,
    gapWindowCandles: s.GAP_WINDOW_CANDLES,
    storageBudgetBytes: s.DATABASE_STORAGE_BUDGET,
    log: { level: s.LOG_LEVEL, format: s.LOG_FORMAT ?? defaultLogFormat({ NODE_ENV: s.NODE_ENV }, isTty) },
  };
}
