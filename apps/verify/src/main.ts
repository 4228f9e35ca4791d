import { InvalidSettingsError, UserFacingError, createLogger, describeError, redactText } from "@candlekeep/core";
import { loadConfig, USAGE, type VerifyConfig } from "./config";
import { openExchangeAccount, type ExchangeAccount } from "./exchange";
import { progressLevel, progressLine, renderJson, renderTable } from "./report";
import { runVerify } from "./run";

/**
 * The post-deploy smoke test. The report goes to stdout (a table, or JSON with
 * --json); progress and logs go to stderr. Exit codes: 0 no check failed
 * (warnings allowed), 1 a check failed, 2 bad usage or settings. Live, with
 * EXCHANGE_API_KEY/SECRET, it reads the account's balances once (read only).
 */
async function main(argv: readonly string[]): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  let config: VerifyConfig;
  try {
    config = loadConfig(process.env, argv, Boolean(process.stderr.isTTY));
  } catch (error) {
    const message = error instanceof InvalidSettingsError ? error.message : describeError(error);
    process.stderr.write(`${message}\n\n${USAGE}\n`);
    return 2;
  }
  const logger = createLogger({ level: config.log.level, format: config.log.format, defaultMeta: { service: "verify" } });
  let account: ExchangeAccount | undefined;
  try {
    account = await openExchangeAccount(config);
  } catch (error) {
    if (!(error instanceof UserFacingError)) throw error;
    process.stderr.write(`${error.message}\n`);
    return 2;
  }
  const level = progressLevel(config.output, { stdout: Boolean(process.stdout.isTTY), stderr: Boolean(process.stderr.isTTY) });
  const report = await runVerify(config, {
    logger,
    onCheck: (result) => logger.log(level, progressLine(result)),
    exchangeBalances: account?.balances,
  }).finally(() => account?.close().catch((error: unknown) => logger.warn("closing the exchange connection failed", { exchange: account?.exchange, error: describeError(error) })));
  process.stdout.write(config.output === "json" ? renderJson(report) : renderTable(report));
  return report.exitCode;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    // Not expected (every check reports its own failure); still one line, no stack trace.
    process.stderr.write(`verify: ${redactText(describeError(error))}\n`);
    process.exitCode = 1;
  },
);
