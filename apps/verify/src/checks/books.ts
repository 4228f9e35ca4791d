import { positionsBacked } from "../books/backing";
import { paperCash } from "../books/cash";
import { liveHoldings } from "../books/holdings";
import type { BooksPart } from "../books/part";
import { unsettledOrders } from "../books/unsettled";
import type { Check, CheckStatus } from "../check";

/**
 * Check 7: the money adds up, for the bot's EXCHANGE and TRADING_MODE. Every
 * open position is what its orders add up to; no order is unknown, none hangs
 * unsettled; paper: the cash is the starting balance plus the ledger's fills;
 * live: the open positions are on the exchange (read with EXCHANGE_API_KEY/SECRET).
 */
export const booksCheck: Check = async ({ readDb, config, nowMs, exchangeBalances }) => {
  const { exchange, tradingMode: mode } = config;
  const [backing, orders, account] = await Promise.all([
    positionsBacked(readDb, exchange),
    unsettledOrders(readDb, { exchange, mode, minutes: config.unsettledMinutes, nowMs }),
    mode === "paper" ? paperCash(readDb, { exchange, quoteCurrency: config.quoteCurrency }) : liveHoldings(readDb, { exchange, balances: exchangeBalances, keysSet: config.exchangeKeys !== undefined }),
  ]);
  const parts: BooksPart[] = [account, backing, orders];
  const failures = parts.flatMap((p) => p.failures);
  const warnings = parts.flatMap((p) => p.warnings);
  const details = [...failures, ...warnings, ...parts.flatMap((p) => p.notes), ...parts.flatMap((p) => p.lookInto.map((line) => `look into ${line}`))];
  const data = { exchange, mode, [mode === "paper" ? "cash" : "holdings"]: account.data, backing: backing.data, orders: orders.data };

  const scope = `${exchange} ${mode}`;
  const status: CheckStatus = failures.length > 0 ? "fail" : warnings.length > 0 ? "warn" : "pass";
  const first = failures[0] ?? warnings[0];
  const others = failures.length + warnings.length - 1;
  const summary = first === undefined ? `${scope}: ${parts.map((p) => p.summary).join("; ")}` : `${scope}: ${first}${others > 0 ? ` (and ${others} more below)` : ""}`;
  return { status, summary, details, data };
};
