import { z } from "zod";
import {
  InvalidSettingsError,
  TIMEFRAMES,
  TIMEFRAME_MS,
  booleanSetting,
  byteSizeSetting,
  defaultLogFormat,
  isTimeframe,
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
import { dashboardTokenSetting, isLoopbackHost } from "dashboard";
import { InvalidDatabaseUrlError, parseDatabaseUrl } from "@candlekeep/db";
import { DEFAULT_STRATEGY_PARAMS, lookbackCandles, validateStrategyParams } from "./strategy/decide";
import type { StrategyParams } from "./strategy/types";

/**
 * The bot's configuration: DESIGN.md's shared settings plus the runner's own,
 * read from the environment, overridden by command-line flags, validated once.
 */

export type Command = { kind: "run"; ticks: number | undefined } | { kind: "backfill"; days: number; json: boolean };

export interface BotConfig {
  command: Command;
  database: {
    url: string | undefined;
    caCert: string | undefined;
    poolMax: number;
    /** Retries of the first connection (backoff from 1 s, doubling). */
    connectRetries: number;
    dataDir: string;
    autoMigrate: boolean;
    /** How long to wait for another bot holding the bot lock to stop (0: exit at once). */
    lockWaitMs: number;
    /** PostgreSQL cancels a candle write statement running longer; the candles stay pending. */
    candleWriteTimeoutMs: number;
  };
  exchange: {
    id: string;
    symbols: SymbolSelection | undefined;
    timeframes: Timeframe[];
    apiKey: string | undefined;
    apiSecret: string | undefined;
  };
  sim: { seed: number; replayCandles: number };
  trading: {
    mode: "paper" | "live";
    quoteCurrency: string;
    paperStartingBalance: number;
    feeRate: number;
    /** Fraction of equity lost if a stop-loss is hit. */
    riskPerTrade: number;
    /** Largest fraction of equity one position may take. */
    maxPositionFraction: number;
  };
  strategy: { timeframe: Timeframe; params: StrategyParams };
  tick: {
    intervalMs: number;
    concurrency: number;
    /** Candles per series kept in memory (and restored at start). */
    historyCandles: number;
    /** Largest number of candles waiting for the database before fetching pauses. */
    maxPendingCandles: number;
    decisionTraceIntervalMs: number;
    accountSnapshotIntervalMs: number;
  };
  /** The running bot audits its stored history (and fetches what is missing) this often. */
  history: { auditIntervalMs: number };
  /** What the running bot removes in the background: decision traces and candles older than these many days. */
  retention: RetentionConfig;
  /**
   * `dashboard`: the read-only dashboard on the same port (off by default); its system panel shows the
   * days of growth left in `storageBudgetBytes` (DATABASE_STORAGE_BUDGET), as the standalone one's does.
   */
  server: { port: number; host: string; dashboard: { enabled: boolean; token: string | undefined; storageBudgetBytes: number | undefined } };
  log: { level: LogLevel; format: LogFormat };
  /** The bound of the whole shutdown; past it a watchdog ends the process (exit 3). */
  shutdownTimeoutMs: number;
}

export interface RetentionConfig {
  /** Days of decision traces kept (exchange time); 0 keeps them all. Other events are never removed. */
  traceDays: number;
  /** Days of candles kept per timeframe; a timeframe not named (or 0) is kept whole. */
  candleDays: Partial<Record<Timeframe, number>>;
}

/** The longest retention accepted: a hundred years is "keep", said another way. */
const MAX_RETENTION_DAYS = 36_500;
const DAY_MS = 86_400_000;

const positiveInt = (name: string, min = 1, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce
    .number({ message: `${name} must be a number` })
    .int(`${name} must be a whole number`)
    .min(min, `${name} must be at least ${min}`)
    .max(max, `${name} must be at most ${max}`);

const fraction = (name: string, max = 1) =>
  z.coerce
    .number({ message: `${name} must be a number` })
    .gt(0, `${name} must be greater than 0`)
    .max(max, `${name} must be at most ${max}`);

const retentionDays = (name: string) =>
  z.coerce
    .number({ message: `${name} must be a whole number of days (0 keeps everything)` })
    .int(`${name} must be a whole number of days (0 keeps everything)`)
    .min(0, `${name} must be at least 0 (0 keeps everything)`)
    .max(MAX_RETENTION_DAYS, `${name} must be at most ${MAX_RETENTION_DAYS} days (0 keeps everything)`);

const CANDLE_RETENTION_EXAMPLE = "15m:365,1h:1095";

/** `15m:365,1h:1095`: days of candles kept per timeframe; a timeframe left out is kept whole. */
const candleRetentionSetting = z
  .string()
  .trim()
  .transform((value, ctx): Partial<Record<Timeframe, number>> => {
    const days: Partial<Record<Timeframe, number>> = {};
    const items = value.split(",").map((item) => item.trim()).filter(Boolean);
    if (items.length === 0) ctx.addIssue({ code: "custom", message: `CANDLE_RETENTION_DAYS is blank; unset it to keep every candle, or write timeframe:days pairs like ${CANDLE_RETENTION_EXAMPLE}` });
    for (const item of items) {
      const pair = /^([^:\s]+)\s*:\s*(\S+)$/.exec(item);
      const timeframe = pair?.[1] ?? "";
      const count = Number(pair?.[2]);
      if (!pair) ctx.addIssue({ code: "custom", message: `CANDLE_RETENTION_DAYS has "${item}", not timeframe:days; write pairs like ${CANDLE_RETENTION_EXAMPLE} (a timeframe left out is kept whole)` });
      else if (!isTimeframe(timeframe)) ctx.addIssue({ code: "custom", message: `CANDLE_RETENTION_DAYS names unknown timeframe "${timeframe}"; use ${TIMEFRAMES.join(", ")}` });
      else if (days[timeframe] !== undefined) ctx.addIssue({ code: "custom", message: `CANDLE_RETENTION_DAYS names ${timeframe} twice; give each timeframe once` });
      else if (!Number.isInteger(count) || count < 0 || count > MAX_RETENTION_DAYS) {
        ctx.addIssue({ code: "custom", message: `CANDLE_RETENTION_DAYS gives ${timeframe} "${pair[2]}" days; use a whole number from 0 (keep every ${timeframe} candle) to ${MAX_RETENTION_DAYS}` });
      } else days[timeframe] = count;
    }
    return Object.fromEntries(Object.entries(days).filter(([, count]) => count > 0));
  });

/**
 * Candle retention that would delete candles the bot needs: each tracked timeframe keeps at least
 * the HISTORY_CANDLES it loads at start (else start-up would fetch what the next pass deletes).
 */
function candleRetentionProblems(candleDays: Partial<Record<Timeframe, number>>, timeframes: readonly Timeframe[], historyCandles: number): string[] {
  const problems: string[] = [];
  for (const timeframe of timeframes) {
    const days = candleDays[timeframe];
    const needed = Math.ceil((historyCandles * TIMEFRAME_MS[timeframe]) / DAY_MS);
    if (days !== undefined && days < needed) {
      problems.push(`CANDLE_RETENTION_DAYS keeps ${timeframe} candles ${days} days, fewer than the ${historyCandles} HISTORY_CANDLES the bot loads (${needed} days of ${timeframe}); keep ${timeframe}:${needed} or more, or lower HISTORY_CANDLES`);
    }
  }
  return problems;
}

const botEnvSchema = sharedSettingsSchema.extend({
  TICK_INTERVAL_MS: positiveInt("TICK_INTERVAL_MS", 0).optional(),
  SIM_SEED: positiveInt("SIM_SEED", 0).default(1),
  SIM_REPLAY_CANDLES: positiveInt("SIM_REPLAY_CANDLES", 0, 10_000).default(48),
  ...exchangeKeySettings,
  PAPER_STARTING_BALANCE: z.coerce.number({ message: "PAPER_STARTING_BALANCE must be a number" }).positive("PAPER_STARTING_BALANCE must be greater than 0").default(10_000),
  FEE_RATE: z.coerce.number({ message: "FEE_RATE must be a number" }).min(0, "FEE_RATE must be ≥ 0").max(0.05, "FEE_RATE must be at most 0.05").default(0.001),
  RISK_PER_TRADE: fraction("RISK_PER_TRADE", 0.2).default(0.01),
  MAX_POSITION_FRACTION: fraction("MAX_POSITION_FRACTION").default(0.1),
  CONCURRENCY: positiveInt("CONCURRENCY", 1, 256).default(8),
  HISTORY_CANDLES: positiveInt("HISTORY_CANDLES", 50, 5000).default(300),
  MAX_PENDING_CANDLES: positiveInt("MAX_PENDING_CANDLES", 1000).default(500_000),
  BOT_LOCK_WAIT_MS: positiveInt("BOT_LOCK_WAIT_MS", 0, 3_600_000).optional(),
  CANDLE_WRITE_TIMEOUT_MS: positiveInt("CANDLE_WRITE_TIMEOUT_MS", 100, 3_600_000).default(120_000),
  DECISION_TRACE_INTERVAL_MS: positiveInt("DECISION_TRACE_INTERVAL_MS", 0).default(5 * 60_000),
  ACCOUNT_SNAPSHOT_INTERVAL_MS: positiveInt("ACCOUNT_SNAPSHOT_INTERVAL_MS", 0).default(60_000),
  STRATEGY_TIMEFRAME: z.string().trim().refine(isTimeframe, { message: `STRATEGY_TIMEFRAME must be one of ${TIMEFRAMES.join(", ")}` }).default("15m"),
  STRATEGY_EMA_FAST: positiveInt("STRATEGY_EMA_FAST", 2, 500).default(DEFAULT_STRATEGY_PARAMS.emaFast),
  STRATEGY_EMA_SLOW: positiveInt("STRATEGY_EMA_SLOW", 2, 1000).default(DEFAULT_STRATEGY_PARAMS.emaSlow),
  STRATEGY_RSI_PERIOD: positiveInt("STRATEGY_RSI_PERIOD", 2, 500).default(DEFAULT_STRATEGY_PARAMS.rsiPeriod),
  STRATEGY_RSI_ENTRY_MIN: z.coerce.number({ message: "STRATEGY_RSI_ENTRY_MIN must be a number" }).default(DEFAULT_STRATEGY_PARAMS.rsiEntryMin),
  STRATEGY_RSI_ENTRY_MAX: z.coerce.number({ message: "STRATEGY_RSI_ENTRY_MAX must be a number" }).default(DEFAULT_STRATEGY_PARAMS.rsiEntryMax),
  STRATEGY_RSI_EXIT: z.coerce.number({ message: "STRATEGY_RSI_EXIT must be a number" }).default(DEFAULT_STRATEGY_PARAMS.rsiExit),
  STRATEGY_ATR_PERIOD: positiveInt("STRATEGY_ATR_PERIOD", 2, 500).default(DEFAULT_STRATEGY_PARAMS.atrPeriod),
  STRATEGY_TAKE_PROFIT_ATR: z.coerce.number({ message: "STRATEGY_TAKE_PROFIT_ATR must be a number" }).positive("STRATEGY_TAKE_PROFIT_ATR must be greater than 0").default(DEFAULT_STRATEGY_PARAMS.takeProfitAtr),
  STRATEGY_STOP_LOSS_ATR: z.coerce.number({ message: "STRATEGY_STOP_LOSS_ATR must be a number" }).positive("STRATEGY_STOP_LOSS_ATR must be greater than 0").default(DEFAULT_STRATEGY_PARAMS.stopLossAtr),
  PORT: positiveInt("PORT", 0, 65535).default(8080),
  HOST: z.string().trim().min(1).default("0.0.0.0"),
  DASHBOARD_ENABLED: booleanSetting("DASHBOARD_ENABLED").default(false),
  DASHBOARD_TOKEN: dashboardTokenSetting.optional(),
  DATABASE_STORAGE_BUDGET: byteSizeSetting("DATABASE_STORAGE_BUDGET").optional(),
  SHUTDOWN_TIMEOUT_MS: positiveInt("SHUTDOWN_TIMEOUT_MS", 1000, 600_000).default(20_000),
  HISTORY_AUDIT_INTERVAL_MS: positiveInt("HISTORY_AUDIT_INTERVAL_MS", 1000, 7 * 86_400_000).default(3_600_000),
  EVENT_RETENTION_DAYS: retentionDays("EVENT_RETENTION_DAYS").default(90),
  CANDLE_RETENTION_DAYS: candleRetentionSetting.optional(),
  NODE_ENV: z.string().optional(),
});

/** Command-line flags and the environment variable each overrides. */
const FLAG_TO_ENV: Readonly<Record<string, string>> = {
  "--exchange": "EXCHANGE",
  "--symbols": "SYMBOLS",
  "--timeframes": "TIMEFRAMES",
  "--tick-interval": "TICK_INTERVAL_MS",
  "--port": "PORT",
  "--log-level": "LOG_LEVEL",
  "--log-format": "LOG_FORMAT",
  "--mode": "TRADING_MODE",
  "--seed": "SIM_SEED",
};

export const USAGE = `Usage: pnpm --filter bot start -- [run] [--ticks N] [--exchange ID] [--symbols A/B,C/D|top:N] [--timeframes 15m,1h]
                                 [--tick-interval MS] [--port N] [--mode paper|live] [--seed N] [--log-level L] [--log-format json|pretty]
       pnpm --filter bot start -- backfill --days N [--json] [same options]
Settings are read from the environment (see README); flags override them.`;

interface ParsedArgs {
  command: "run" | "backfill";
  ticks: string | undefined;
  days: string | undefined;
  json: boolean;
  overrides: Record<string, string>;
  problems: string[];
}

function parseArgs(argv: readonly string[]): ParsedArgs {
  const parsed: ParsedArgs = { command: "run", ticks: undefined, days: undefined, json: false, overrides: {}, problems: [] };
  const args = argv.filter((arg) => arg !== "--"); // pnpm passes a literal "--" through
  for (let i = 0; i < args.length; i += 1) {
    const arg = args[i] as string;
    const [flag, inlineValue] = arg.startsWith("--") && arg.includes("=") ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)] : [arg, undefined];
    const value = () => {
      if (inlineValue !== undefined) return inlineValue;
      const next = args[i + 1];
      if (next === undefined || next.startsWith("--")) {
        parsed.problems.push(`${flag} needs a value`);
        return undefined;
      }
      i += 1;
      return next;
    };
    if (i === 0 && (flag === "run" || flag === "backfill")) parsed.command = flag;
    else if (flag === "--ticks") parsed.ticks = value();
    else if (flag === "--days") parsed.days = value();
    else if (arg === "--json") parsed.json = true;
    else if (flag in FLAG_TO_ENV) {
      const v = value();
      if (v !== undefined) parsed.overrides[FLAG_TO_ENV[flag] as string] = v;
    } else parsed.problems.push(`unknown argument "${arg}"`);
  }
  return parsed;
}

function parseCommand(args: ParsedArgs, problems: string[]): Command {
  if (args.command === "backfill") {
    if (args.ticks !== undefined) problems.push("--ticks does not apply to backfill");
    const days = Number(args.days ?? "");
    if (args.days === undefined) problems.push("backfill needs --days N (how many days of history to load)");
    else if (!Number.isInteger(days) || days < 1 || days > 3650) problems.push("--days must be a whole number from 1 to 3650");
    return { kind: "backfill", days, json: args.json };
  }
  if (args.days !== undefined) problems.push("--days applies only to the backfill command");
  if (args.json) problems.push("--json applies only to the backfill command");
  if (args.ticks === undefined) return { kind: "run", ticks: undefined };
  const ticks = Number(args.ticks);
  if (!Number.isInteger(ticks) || ticks < 1) problems.push("--ticks must be a whole number ≥ 1");
  return { kind: "run", ticks };
}

/**
 * Builds the configuration from the environment and command-line arguments.
 * Throws InvalidSettingsError listing every problem, one per line; values of
 * settings are never echoed (they may be secrets).
 */
export function loadConfig(env: Record<string, string | undefined>, argv: readonly string[], isTty: boolean): BotConfig {
  const args = parseArgs(argv);
  const problems = [...args.problems];
  const command = parseCommand(args, problems);
  const merged = presentSettings({ ...env, ...args.overrides });
  const result = botEnvSchema.safeParse(merged);
  if (!result.success) throw new InvalidSettingsError([...problems, ...settingsProblems(result.error)]);
  const s = result.data;

  if (s.DATABASE_URL !== undefined) {
    try {
      parseDatabaseUrl(s.DATABASE_URL);
    } catch (error) {
      if (!(error instanceof InvalidDatabaseUrlError)) throw error;
      problems.push(error.message); // never holds the password
    }
  }
  const isSim = s.EXCHANGE === "sim";
  if (s.TRADING_MODE === "live") {
    if (isSim) problems.push("TRADING_MODE=live needs a real exchange; set EXCHANGE to a ccxt exchange id");
    if (!s.EXCHANGE_API_KEY || !s.EXCHANGE_API_SECRET) problems.push("TRADING_MODE=live needs EXCHANGE_API_KEY and EXCHANGE_API_SECRET");
  }
  if (isSim && s.SYMBOLS?.kind === "top" && s.SYMBOLS.count > 5000) problems.push("SYMBOLS top:N is limited to 5000 on the simulated exchange");
  if (isSim && s.SYMBOLS === undefined && s.QUOTE_CURRENCY !== "USDT") {
    // The sim quotes its coins in the account's currency only (its default list is in USDT).
    problems.push(`SYMBOLS is unset, and the simulated exchange's default coins are quoted in USDT, not QUOTE_CURRENCY ${s.QUOTE_CURRENCY}; set SYMBOLS to top:20 (or a list like BTC/${s.QUOTE_CURRENCY})`);
  }
  const strategyTimeframe = s.STRATEGY_TIMEFRAME as Timeframe;
  if (!s.TIMEFRAMES.includes(strategyTimeframe)) {
    problems.push(`STRATEGY_TIMEFRAME ${strategyTimeframe} must be one of the tracked TIMEFRAMES (${s.TIMEFRAMES.join(", ")})`);
  }
  const params: StrategyParams = {
    emaFast: s.STRATEGY_EMA_FAST,
    emaSlow: s.STRATEGY_EMA_SLOW,
    rsiPeriod: s.STRATEGY_RSI_PERIOD,
    rsiEntryMin: s.STRATEGY_RSI_ENTRY_MIN,
    rsiEntryMax: s.STRATEGY_RSI_ENTRY_MAX,
    rsiExit: s.STRATEGY_RSI_EXIT,
    atrPeriod: s.STRATEGY_ATR_PERIOD,
    takeProfitAtr: s.STRATEGY_TAKE_PROFIT_ATR,
    stopLossAtr: s.STRATEGY_STOP_LOSS_ATR,
  };
  problems.push(...validateStrategyParams(params));
  if (problems.length === 0 && s.HISTORY_CANDLES < lookbackCandles(params)) {
    problems.push(`HISTORY_CANDLES (${s.HISTORY_CANDLES}) must be at least ${lookbackCandles(params)} for these strategy periods`);
  }
  const candleDays = s.CANDLE_RETENTION_DAYS ?? {};
  problems.push(...candleRetentionProblems(candleDays, s.TIMEFRAMES, s.HISTORY_CANDLES));
  if (s.DASHBOARD_ENABLED && s.DASHBOARD_TOKEN === undefined && !isLoopbackHost(s.HOST)) {
    problems.push(`DASHBOARD_ENABLED=true with HOST=${s.HOST} would expose the dashboard without a token; set DASHBOARD_TOKEN (e.g. \`openssl rand -hex 24\`) or HOST=127.0.0.1`);
  }
  if (problems.length > 0) throw new InvalidSettingsError(problems);

  return {
    command,
    database: {
      url: s.DATABASE_URL,
      caCert: s.DATABASE_CA_CERT,
      poolMax: s.DATABASE_POOL_MAX,
      connectRetries: s.DATABASE_CONNECT_RETRIES,
      dataDir: resolveUserPath(s.CANDLEKEEP_DATA_DIR, env),
      autoMigrate: s.AUTO_MIGRATE,
      // In production a deploy starts the new bot before the old one has stopped (it has a 120 s grace period).
      lockWaitMs: s.BOT_LOCK_WAIT_MS ?? (s.NODE_ENV === "production" ? 180_000 : 0),
      candleWriteTimeoutMs: s.CANDLE_WRITE_TIMEOUT_MS,
    },
    exchange: { id: s.EXCHANGE, symbols: s.SYMBOLS, timeframes: s.TIMEFRAMES, apiKey: s.EXCHANGE_API_KEY, apiSecret: s.EXCHANGE_API_SECRET },
    sim: { seed: s.SIM_SEED, replayCandles: s.SIM_REPLAY_CANDLES },
    trading: {
      mode: s.TRADING_MODE,
      quoteCurrency: s.QUOTE_CURRENCY,
      paperStartingBalance: s.PAPER_STARTING_BALANCE,
      feeRate: s.FEE_RATE,
      riskPerTrade: s.RISK_PER_TRADE,
      maxPositionFraction: s.MAX_POSITION_FRACTION,
    },
    strategy: { timeframe: strategyTimeframe, params },
    tick: {
      intervalMs: s.TICK_INTERVAL_MS ?? (isSim ? 1000 : 60_000),
      concurrency: s.CONCURRENCY,
      historyCandles: s.HISTORY_CANDLES,
      maxPendingCandles: s.MAX_PENDING_CANDLES,
      decisionTraceIntervalMs: s.DECISION_TRACE_INTERVAL_MS,
      accountSnapshotIntervalMs: s.ACCOUNT_SNAPSHOT_INTERVAL_MS,
    },
    history: { auditIntervalMs: s.HISTORY_AUDIT_INTERVAL_MS },
    retention: { traceDays: s.EVENT_RETENTION_DAYS, candleDays },
    server: { port: s.PORT, host: s.HOST, dashboard: { enabled: s.DASHBOARD_ENABLED, token: s.DASHBOARD_TOKEN, storageBudgetBytes: s.DATABASE_STORAGE_BUDGET } },
    log: { level: s.LOG_LEVEL, format: s.LOG_FORMAT ?? defaultLogFormat({ NODE_ENV: s.NODE_ENV }, isTty) },
    shutdownTimeoutMs: s.SHUTDOWN_TIMEOUT_MS,
  };
}
