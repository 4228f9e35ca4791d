import { accountHistory, latestDecisionTracePerSymbol, listOpenPositions } from "@candlekeep/db";
import { amount, listSome, plural, type Check } from "../check";

const ago = (nowMs: number, thenMs: number) => {
  const minutes = Math.floor((nowMs - thenMs) / 60_000);
  if (minutes < 1) return "just now";
  if (minutes < 120) return `${minutes} min ago`;
  return `${Math.floor(minutes / 60)} h ago`;
};

/**
 * Check 6: is the bot working? The newest decision trace per tracked coin (the
 * bot records one per coin at least every 5 minutes), open positions and the
 * newest account snapshot. Quiet coins are a warning, not a failure: a bot that
 * was stopped on purpose leaves a sound database.
 */
export const activityCheck: Check = async ({ readDb, config, nowMs, trackedCoins }) => {
  const { symbols, source } = await trackedCoins();
  if (symbols.length === 0) return { status: "warn", summary: `no coins to check: ${source}` };
  const minutes = config.activityMinutes;
  const since = nowMs - minutes * 60_000;
  const traces = await latestDecisionTracePerSymbol(readDb, { exchange: config.exchange, symbols });
  const latest = new Map(traces.map((trace) => [trace.symbol, trace.time.getTime()]));
  const quiet = symbols.filter((s) => (latest.get(s) ?? Number.NEGATIVE_INFINITY) < since);
  const never = quiet.filter((s) => !latest.has(s));
  const positions = await listOpenPositions(readDb, { exchange: config.exchange });
  const [snapshot] = await accountHistory(readDb, { exchange: config.exchange, limit: 1 });

  const parts = [
    `${symbols.length - quiet.length}/${symbols.length} coins with a decision trace in the last ${minutes} min`,
    plural(positions.length, "open position"),
    snapshot ? `last account snapshot ${snapshot.time.toISOString()} (${ago(nowMs, snapshot.time.getTime())})` : "no account snapshot yet",
  ];
  const details: string[] = [];
  if (quiet.length > 0) {
    const withTime = quiet.filter((s) => latest.has(s)).map((s) => `${s} (last ${ago(nowMs, latest.get(s) ?? 0)})`);
    if (withTime.length > 0) details.push(`no decision trace in the last ${minutes} min: ${listSome(withTime)}`);
    if (never.length > 0) details.push(`never a decision trace: ${listSome(never)}`);
  }
  if (positions.length > 0) details.push(`open positions: ${listSome(positions.map((p) => `${p.symbol} ${p.side} ${amount(p.quantity)} @ ${amount(p.entryPrice)}`))}`);
  const data = {
    exchange: config.exchange,
    coins: symbols.length,
    quietCoins: quiet,
    latestDecisionTrace: Object.fromEntries(symbols.map((s) => [s, latest.has(s) ? new Date(latest.get(s) ?? 0).toISOString() : null])),
    openPositions: positions.length,
    latestAccountSnapshot: snapshot?.time.toISOString() ?? null,
  };
  const status = quiet.length > 0 || !snapshot ? "warn" : "pass";
  return { status, summary: parts.join("; "), details, data };
};
