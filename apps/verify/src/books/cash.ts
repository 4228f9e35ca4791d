import { accountHistory, newestFilledOrder, paperAccountEventKey, paperAccountStart, paperLedgerTotals, type Database } from "@candlekeep/db";
import { amount } from "../check";
import { signed, sqlLiteral, type BooksPart } from "./part";

/** The bot keeps paper cash as a double: sums of many fills may drift by this fraction of the starting balance. */
export const CASH_TOLERANCE = 1e-8;

const iso = (date: Date) => date.toISOString();

/**
 * The paper account's cash identity: starting balance + what the ledger's fills
 * added and took = the newest snapshot's cash (`total` of the account's
 * currency). Only a snapshot at or after the newest filled order can hold every
 * fill (both times are the exchange's clock); an older one is normal between
 * snapshots (the bot takes at most one per ACCOUNT_SNAPSHOT_INTERVAL_MS), so
 * the identity is then not compared and the part passes with a note.
 */
export async function paperCash(db: Pick<Database, "sql">, options: { exchange: string; quoteCurrency: string }): Promise<BooksPart> {
  const { exchange } = options;
  const part: BooksPart = { summary: "", failures: [], warnings: [], notes: [], lookInto: [], data: {} };
  const start = await paperAccountStart(db, exchange);
  if (start === undefined) {
    part.summary = "cash not added up (no paper account record)";
    part.warnings.push(`no PAPER_ACCOUNT event with event_key ${paperAccountEventKey(exchange)}: the paper account's starting balance is unknown, so its cash cannot be added up (the bot records it when it opens the paper account)`);
    part.data = { compared: false, reason: "no PAPER_ACCOUNT event" };
    return part;
  }
  const { currency, startingBalance } = start;
  if (currency !== options.quoteCurrency) {
    part.warnings.push(`QUOTE_CURRENCY is ${options.quoteCurrency}, but the paper account on ${exchange} was opened in ${currency}: its cash is checked in ${currency}`);
  }
  const [totals, [snapshot], newest] = await Promise.all([
    paperLedgerTotals(db, { exchange }),
    accountHistory(db, { exchange, currency, limit: 1 }),
    newestFilledOrder(db, { exchange, mode: "paper" }),
  ]);
  const expected = startingBalance + totals.cashChange;
  const tolerance = CASH_TOLERANCE * startingBalance;
  part.data = {
    currency,
    startingBalance,
    ledgerCashChange: totals.cashChange,
    ledgerFees: totals.fees,
    expectedCash: expected,
    tolerance,
    snapshot: snapshot ? { time: iso(snapshot.time), total: snapshot.total } : null,
    newestFill: newest ? { clientOrderId: newest.clientOrderId, symbol: newest.symbol, createdAt: iso(newest.createdAt) } : null,
    compared: false,
  };
  const ledger = `${amount(startingBalance)} start ${signed(totals.cashChange)} from fills = ${amount(expected)} ${currency}`;
  if (snapshot === undefined) {
    part.summary = `cash not compared (no ${currency} snapshot yet; the ledger says ${amount(expected)})`;
    part.notes.push(`no ${currency} account snapshot on ${exchange} yet: the ledger's cash (${ledger}) is compared once the bot has taken one`);
    return part;
  }
  if (newest !== undefined && snapshot.time < newest.createdAt) {
    part.summary = "cash not compared (the latest snapshot predates the newest fill)";
    part.notes.push(
      `the latest ${currency} snapshot (${iso(snapshot.time)}) predates the newest filled order (${newest.symbol} ${newest.clientOrderId} at ${iso(newest.createdAt)}): cash not compared; the bot's next snapshot will be`,
    );
    return part;
  }
  const difference = snapshot.total - expected;
  part.data = { ...part.data, compared: true, difference };
  if (Math.abs(difference) > tolerance) {
    part.failures.push(`cash: the ${currency} snapshot of ${iso(snapshot.time)} says ${amount(snapshot.total)}, the ledger ${ledger}; off by ${signed(Number(difference.toPrecision(6)))} (tolerance ${amount(tolerance)})`);
    part.lookInto.push(
      `the fills: SELECT created_at, symbol, side, status, filled_amount, filled_cost, fee_quote FROM orders WHERE exchange = ${sqlLiteral(exchange)} AND mode = 'paper' AND filled_amount > 0 ORDER BY created_at`,
      `the snapshots: SELECT time, free, total FROM account_state WHERE exchange = ${sqlLiteral(exchange)} AND currency = ${sqlLiteral(currency)} ORDER BY time DESC LIMIT 10 (a jump between two snapshots with no fill between them is cash the ledger does not know)`,
    );
    return part;
  }
  part.summary = `cash ${amount(snapshot.total)} ${currency} matches the ledger (${amount(startingBalance)} start ${signed(totals.cashChange)} from fills)`;
  return part;
}
