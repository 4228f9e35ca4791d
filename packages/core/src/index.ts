// @candlekeep/core's public face: domain types and helpers shared by the bot, verify and the dashboard.
export type { Candle } from "./candle";
export { TIMEFRAMES, TIMEFRAME_MS, isTimeframe, alignToTimeframe, type Timeframe } from "./timeframes";
export { REDACTED, isSecretKey, redactText, redactValue, scrubSecrets } from "./redact";
export { createLogger, defaultLogFormat, silentLogger, type Logger, type LoggerOptions, type LogFormat, type LogLevel } from "./logger";
export { UserFacingError, describeError, isCcxtError } from "./errors";
export {
  sharedSettingsSchema,
  exchangeKeySettings,
  booleanSetting,
  symbolsSetting,
  timeframesSetting,
  parseSettings,
  presentSettings,
  settingsProblems,
  InvalidSettingsError,
  SIM_DEFAULT_SYMBOLS,
  resolveUserPath,
  type SharedSettings,
  type SymbolSelection,
} from "./settings";
export { byteSizeSetting } from "./byte-size";
export {
  candlesBehind,
  seriesState,
  seriesFreshness,
  recentWindowStart,
  DEFAULT_STALE_AFTER_PERIODS,
  DEFAULT_GAP_WINDOW_CANDLES,
  type SeriesState,
  type Freshness,
  type SeriesLastCandle,
} from "./freshness";
export { plural } from "./text";
