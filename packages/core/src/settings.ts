import path from "node:path";
import { z } from "zod";
import { UserFacingError } from "./errors";
import { TIMEFRAMES, isTimeframe, type Timeframe } from "./timeframes";

/**
 * Settings shared by the bot, verify and the dashboard (names from DESIGN.md).
 * Each app composes these with its own and validates once at start-up.
 */

/** The simulated exchange's default coins when SYMBOLS is unset. */
export const SIM_DEFAULT_SYMBOLS: readonly string[] = [
  "BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT", "XRP/USDT", "ADA/USDT", "DOGE/USDT", "AVAX/USDT", "DOT/USDT", "LINK/USDT",
  "MATIC/USDT", "LTC/USDT", "TRX/USDT", "ATOM/USDT", "UNI/USDT", "XLM/USDT", "NEAR/USDT", "APT/USDT", "ARB/USDT", "OP/USDT",
];

/** Explicit coins, or the N most traded on the exchange (resolved at start). */
export type SymbolSelection = { kind: "list"; symbols: string[] } | { kind: "top"; count: number };

const SYMBOL = /^[A-Z0-9]{1,20}\/[A-Z0-9]{1,20}(:[A-Z0-9]{1,20})?$/;

export const booleanSetting = (name: string) =>
  z
    .string()
    .trim()
    .toLowerCase()
    .refine((v) => ["true", "false", "1", "0", "yes", "no"].includes(v), { message: `${name} must be true or false` })
    .transform((v) => ["true", "1", "yes"].includes(v));

const optionalText = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === "" ? undefined : v));

/** Empty means unset (deploy dashboards create empty variables); only spaces is a mistake worth naming. */
const databaseUrlSetting = z
  .string()
  .optional()
  .refine((v) => v === undefined || v === "" || v.trim() !== "", {
    message: "DATABASE_URL is blank (only spaces); leave it empty or unset for the embedded database, or set it to postgresql://user:password@host:5432/dbname",
  })
  .transform((v) => (v === undefined || v === "" ? undefined : v));

export const symbolsSetting = z
  .string()
  .trim()
  .transform((value, ctx): SymbolSelection => {
    const top = /^top:(\d+)$/i.exec(value);
    if (top) {
      const count = Number(top[1]);
      if (count < 1 || count > 5000) ctx.addIssue({ code: "custom", message: "SYMBOLS top:N needs N between 1 and 5000" });
      return { kind: "top", count };
    }
    const symbols = [...new Set(value.split(",").map((s) => s.trim().toUpperCase()).filter(Boolean))];
    if (symbols.length === 0) {
      ctx.addIssue({ code: "custom", message: "SYMBOLS is empty; list coins like BTC/USDT,ETH/USDT or use top:20" });
    }
    const bad = symbols.filter((s) => !SYMBOL.test(s));
    if (bad.length > 0) {
      ctx.addIssue({ code: "custom", message: `SYMBOLS has invalid symbol(s) ${bad.join(", ")}; use BASE/QUOTE like BTC/USDT` });
    }
    return { kind: "list", symbols };
  });

export const timeframesSetting = z
  .string()
  .trim()
  .transform((value, ctx): Timeframe[] => {
    const items = [...new Set(value.split(",").map((s) => s.trim()).filter(Boolean))];
    const bad = items.filter((s) => !isTimeframe(s));
    if (items.length === 0 || bad.length > 0) {
      ctx.addIssue({ code: "custom", message: `TIMEFRAMES ${bad.length ? `has unknown ${bad.join(", ")}` : "is empty"}; use a comma list of ${TIMEFRAMES.join(", ")}` });
    }
    return TIMEFRAMES.filter((tf) => items.includes(tf));
  });

const EXCHANGE_ID = /^[a-z0-9]+$/;

/** Environment variables shared by every app. */
export const sharedSettingsSchema = z.object({
  DATABASE_URL: databaseUrlSetting,
  DATABASE_CA_CERT: optionalText,
  DATABASE_POOL_MAX: z.coerce.number({ message: "DATABASE_POOL_MAX must be a number" }).int("DATABASE_POOL_MAX must be a whole number").min(1, "DATABASE_POOL_MAX must be at least 1").max(1000, "DATABASE_POOL_MAX must be at most 1000").default(30),
  DATABASE_CONNECT_RETRIES: z.coerce.number({ message: "DATABASE_CONNECT_RETRIES must be a number" }).int("DATABASE_CONNECT_RETRIES must be a whole number").min(0, "DATABASE_CONNECT_RETRIES must be at least 0").max(20, "DATABASE_CONNECT_RETRIES must be at most 20").default(5),
  CANDLEKEEP_DATA_DIR: z.string().trim().min(1, "CANDLEKEEP_DATA_DIR is empty; unset it to use ./.candlekeep").default("./.candlekeep"),
  AUTO_MIGRATE: booleanSetting("AUTO_MIGRATE").default(true),
  EXCHANGE: z
    .string()
    .trim()
    .toLowerCase()
    .refine((v) => EXCHANGE_ID.test(v), { message: "EXCHANGE must be sim or a ccxt exchange id such as binance" })
    .default("sim"),
  SYMBOLS: symbolsSetting.optional(),
  TIMEFRAMES: timeframesSetting.default([...TIMEFRAMES]),
  // Shared so verify checks the books of the account the bot keeps: its mode and cash currency.
  TRADING_MODE: z.enum(["paper", "live"], { message: "TRADING_MODE must be paper or live" }).default("paper"),
  QUOTE_CURRENCY: z.string().trim().toUpperCase().regex(/^[A-Z0-9]{2,10}$/, "QUOTE_CURRENCY must be a currency code like USDT").default("USDT"),
  LOG_LEVEL: z.enum(["error", "warn", "info", "debug"], { message: "LOG_LEVEL must be one of error, warn, info, debug" }).default("info"),
  LOG_FORMAT: z.enum(["json", "pretty"], { message: "LOG_FORMAT must be json or pretty" }).optional(),
});

export type SharedSettings = z.infer<typeof sharedSettingsSchema>;

/**
 * The live account's keys: the bot trades with them, verify reads the balances
 * with them. Not in sharedSettingsSchema, so an app that needs no exchange
 * account (the dashboard) never holds them; compose with `.extend(exchangeKeySettings)`.
 */
export const exchangeKeySettings = {
  EXCHANGE_API_KEY: z.string().trim().min(1, "EXCHANGE_API_KEY is blank (only spaces); unset it or set the exchange account's API key").optional(),
  EXCHANGE_API_SECRET: z.string().trim().min(1, "EXCHANGE_API_SECRET is blank (only spaces); unset it or set the exchange account's API secret").optional(),
};

/** Thrown at start-up with one line per invalid setting. */
export class InvalidSettingsError extends UserFacingError {
  override readonly name = "InvalidSettingsError";
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
  }
}

/** One line per problem, naming the setting; never echoes a received value (it may be a secret). */
export function settingsProblems(error: z.ZodError): string[] {
  return error.issues.map((issue) => {
    const key = issue.path.join(".");
    return issue.message.includes(key) || key === "" ? issue.message : `${key}: ${issue.message}`;
  });
}

/**
 * Lists set to nothing: `SYMBOLS=` is a mistake to name, not "unset" (it would
 * silently run the default coins or timeframes instead of the none it says).
 */
const EMPTY_IS_A_MISTAKE: ReadonlySet<string> = new Set(["SYMBOLS", "TIMEFRAMES"]);

/**
 * The settings `env` sets. An empty value means unset, as deploy dashboards
 * create empty variables, except for the lists of EMPTY_IS_A_MISTAKE, which
 * stay so that their validation names them.
 */
export function presentSettings(env: Record<string, string | undefined>): Record<string, string> {
  const present: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    if (value !== undefined && (value !== "" || EMPTY_IS_A_MISTAKE.has(key))) present[key] = value;
  }
  return present;
}

/** Parses `env` with `schema`, throwing InvalidSettingsError listing every problem. */
export function parseSettings<S extends z.ZodType>(schema: S, env: Record<string, string | undefined>): z.infer<S> {
  const result = schema.safeParse(presentSettings(env));
  if (!result.success) throw new InvalidSettingsError(settingsProblems(result.error));
  return result.data;
}

/**
 * Resolves a path from a setting. Relative paths are relative to where the user
 * ran the command: `pnpm --filter bot start` runs the script inside apps/bot,
 * but pnpm keeps the invoking directory in INIT_CWD, so `./.candlekeep` means
 * the same directory for the bot, verify and the dashboard.
 */
export function resolveUserPath(value: string, env: Record<string, string | undefined>): string {
  return path.resolve(env.INIT_CWD ?? process.cwd(), value);
}
