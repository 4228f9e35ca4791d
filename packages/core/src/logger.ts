import winston from "winston";
import { isSecretKey, REDACTED, redactText, redactValue } from "./redact";

export type LogFormat = "json" | "pretty";
export type LogLevel = "error" | "warn" | "info" | "debug";

/** The logging surface packages depend on; winston's Logger satisfies it. */
export interface Logger {
  error(message: string, meta?: Record<string, unknown>): void;
  warn(message: string, meta?: Record<string, unknown>): void;
  info(message: string, meta?: Record<string, unknown>): void;
  debug(message: string, meta?: Record<string, unknown>): void;
}

export interface LoggerOptions {
  level: LogLevel;
  format: LogFormat;
  /** Added to every line, e.g. { service: "bot" }. */
  defaultMeta?: Record<string, unknown>;
  /**
   * Colour the level of pretty lines. Default: only when stderr (where every line goes) is a
   * terminal, so LOG_FORMAT=pretty into a pipe or a file holds no escape codes.
   */
  color?: boolean;
}

/** JSON in production and when not on a terminal; readable lines on a TTY. */
export function defaultLogFormat(env: { NODE_ENV?: string | undefined }, isTty: boolean): LogFormat {
  return env.NODE_ENV === "production" || !isTty ? "json" : "pretty";
}

const WINSTON_RESERVED = new Set(["level", "message", "timestamp", "service"]);

// Masks secrets in the message and in every metadata field before any transport sees them.
const redactSecrets = winston.format((info) => {
  if (typeof info.message === "string") info.message = redactText(info.message);
  for (const key of Object.keys(info)) {
    if (WINSTON_RESERVED.has(key)) continue;
    const value = info[key];
    info[key] = isSecretKey(key) && value ? REDACTED : redactValue(value);
  }
  return info;
});

const pretty = winston.format.printf((info) => {
  const { level, message, timestamp, service, ...meta } = info;
  const fields = Object.entries(meta)
    .filter(([key]) => typeof key === "string")
    .map(([key, value]) => `${key}=${typeof value === "string" ? value : JSON.stringify(value)}`)
    .join(" ");
  const svc = typeof service === "string" ? ` [${service}]` : "";
  return `${String(timestamp)} ${level}${svc} ${String(message)}${fields ? `  ${fields}` : ""}`;
});

export function createLogger(options: LoggerOptions): winston.Logger {
  const format =
    options.format === "json"
      ? winston.format.combine(redactSecrets(), winston.format.timestamp(), winston.format.json())
      : winston.format.combine(
          redactSecrets(),
          winston.format.timestamp({ format: "HH:mm:ss.SSS" }),
          ...((options.color ?? Boolean(process.stderr.isTTY)) ? [winston.format.colorize()] : []),
          pretty,
        );
  return winston.createLogger({
    level: options.level,
    format,
    defaultMeta: options.defaultMeta,
    // stderr for everything keeps stdout free for command output (verify --json).
    transports: [new winston.transports.Console({ stderrLevels: ["error", "warn", "info", "debug"] })],
  });
}

/** A logger that drops everything; for library calls where the caller wants silence. */
export const silentLogger: Logger = {
  error: () => undefined,
  warn: () => undefined,
  info: () => undefined,
  debug: () => undefined,
};
