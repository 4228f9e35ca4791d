import { TIMEFRAME_MS, alignToTimeframe, type Timeframe } from "@candlekeep/core";
import {
  applyEntryProgress,
  applyExitProgress,
  markOrder,
  recordDecisionTraces,
  recordEvent,
  recordOrderIntent,
  saveAccountState,
  saveCandles,
  type CandleInput,
  type Database,
  type DecisionTraceInput,
  type OrderIntent,
  type OrderProgress,
} from "@candlekeep/db";
import type { DashboardSource } from "../api";

/**
 * Test support: a database holding what a short bot run on EXCHANGE leaves
 * behind (candles for every coin × timeframe, decision traces, orders with the
 * closed trade and the open position they filled, an order still unsettled and
 * one unknown, account snapshots, an ERROR event), with one coin gone stale on
 * purpose and one timeframe of another missing. Not used by production code.
 */

export const EXCHANGE = "sim";
export const TIMEFRAMES: Timeframe[] = ["15m", "1h", "4h", "1d"];
/** Its candles stopped 10 periods ago on every timeframe. */
export const STALE_COIN = "DOGE/USDT";
/** Has no 1d candles. */
export const PARTIAL_COIN = "ADA/USDT";
export const COINS = ["BTC/USDT", "ETH/USDT", "SOL/USDT", PARTIAL_COIN, STALE_COIN];

function series(symbol: string, timeframe: Timeframe, nowMs: number, count: number, endAgo: number): CandleInput[] {
  const step = TIMEFRAME_MS[timeframe];
  const last = alignToTimeframe(nowMs, timeframe) - endAgo * step;
  const base = 100 + COINS.indexOf(symbol) * 50;
  return Array.from({ length: count }, (_, i) => {
    const openTime = last - (count - 1 - i) * step;
    const open = base + Math.sin(i / 5) * 5;
    const close = base + Math.sin((i + 1) / 5) * 5;
    return { exchange: EXCHANGE, symbol, timeframe, openTime, open, close, high: Math.max(open, close) + 1, low: Math.min(open, close) - 1, volume: 10 + i, isClosed: endAgo > 0 || i < count - 1 };
  });
}

export async function fillDatabase(db: Database, nowMs: number): Promise<void> {
  const candles: CandleInput[] = [];
  for (const symbol of COINS) {
    for (const tf of TIMEFRAMES) {
      if (symbol === PARTIAL_COIN && tf === "1d") continue;
      candles.push(...series(symbol, tf, nowMs, 120, symbol === STALE_COIN ? 10 : 0));
    }
  }
  await saveCandles(db, candles, nowMs);

  const quarter = TIMEFRAME_MS["15m"];
  const at = (quarters: number) => new Date(nowMs - quarters * quarter);
  const order = async (symbol: string, clientOrderId: string, quartersAgo: number, amount: number, exitOf?: string, levels = { takeProfit: null as number | null, stopLoss: null as number | null }) => {
    const intent: OrderIntent = {
      exchange: EXCHANGE,
      mode: "paper",
      symbol,
      side: exitOf === undefined ? "buy" : "sell",
      purpose: exitOf === undefined ? "entry" : "exit",
      clientOrderId,
      positionKey: exitOf ?? clientOrderId,
      exitReason: exitOf === undefined ? null : "TAKE_PROFIT",
      requestedAmount: amount,
      requestedCost: null,
      referencePrice: 100,
      ...levels,
      createdAt: at(quartersAgo),
    };
    return (await recordOrderIntent(db, intent)).order;
  };
  const filled = (amount: number, price: number, quartersAgo: number): OrderProgress => {
    const fee = Number((amount * price * 0.001).toFixed(8));
    return { status: "filled", exchangeOrderId: null, filledAmount: amount, averagePrice: price, filledCost: amount * price, feeQuote: fee, feeBase: 0, fees: [{ currency: "USDT", cost: fee, quoteValue: fee }], error: null, time: at(quartersAgo) };
  };
  // BTC bought and sold at its take-profit (a trade); ETH bought and held (a position).
  await applyEntryProgress(db, await order("BTC/USDT", "ckbtc1", 30, 0.5, undefined, { takeProfit: 110, stopLoss: 95 }), filled(0.5, 98, 30), {});
  await applyExitProgress(db, await order("BTC/USDT", "ckbtc1x1", 12, 0.5, "ckbtc1"), filled(0.5, 104, 12), { dust: 0 });
  await applyEntryProgress(db, await order("ETH/USDT", "cketh1", 8, 2, undefined, { takeProfit: 160, stopLoss: 130 }), filled(2, 140, 8), {});
  // SOL's entry is sent and not answered yet; ADA's could not be asked about.
  await markOrder(db, await order("SOL/USDT", "cksol1", 1, 3), { status: "sent", error: null });
  await markOrder(db, await order(PARTIAL_COIN, "ckada1", 2, 40), { status: "unknown", error: "exchange timeout" });

  // Three traces a coin, the newest (a BUY) at nowMs.
  const traces: DecisionTraceInput[] = COINS.flatMap((symbol) =>
    Array.from({ length: 3 }, (_, i) => ({ exchange: EXCHANGE, symbol, time: new Date(nowMs - i * quarter), payload: { action: i === 0 ? "BUY" : "NO_SIGNAL", price: 100 + i, reasons: [`reason ${i} for ${symbol}`] } })),
  );
  if ((await recordDecisionTraces(db, traces)) > 0) throw new Error("fixture decision traces were not stored");
  if (!(await recordEvent(db, { type: "ERROR", symbol: "SOL/USDT", level: "error", time: new Date(nowMs - quarter), payload: { message: "fetchOHLCV failed: exchange timeout" } }))) throw new Error("fixture ERROR event was not stored");
  await saveAccountState(
    db,
    Array.from({ length: 10 }, (_, i) => ({ time: new Date(nowMs - (10 - i) * quarter), exchange: EXCHANGE, currency: "USDT", free: 9000, used: 1000, total: 10_000 + i, equity: 10_000 + i * 3 })),
  );
}

/** A DashboardSource over `db` with the fixture's coins and verify's default thresholds. */
export function fixtureSource(db: Database, nowMs: number, overrides: Partial<DashboardSource> = {}): DashboardSource {
  return {
    db: () => Promise.resolve(db),
    databaseKind: db.kind,
    exchange: EXCHANGE,
    timeframes: TIMEFRAMES,
    coins: () => Promise.resolve({ symbols: [...COINS], source: "the test's coins" }),
    staleAfterPeriods: 2,
    gapWindowCandles: 96,
    now: () => nowMs,
    ...overrides,
  };
}
