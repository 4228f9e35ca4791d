import { TIMEFRAME_MS, alignToTimeframe, type Timeframe } from "@candlekeep/core";
import { closePositionWithTrade, recordEvents, saveAccountState, saveCandles, savePosition, type CandleInput, type Database, type EventInput } from "@candlekeep/db";
import type { DashboardSource } from "../api";

/**
 * Test support: a database holding what a short bot run leaves behind (candles
 * for every coin × timeframe, decision traces, a closed trade, an open position,
 * account snapshots, an ERROR event), with one coin gone stale on purpose and
 * one timeframe of another missing. Not used by production code.
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
  await savePosition(db, { exchange: EXCHANGE, symbol: "ETH/USDT", side: "LONG", quantity: 2, entryPrice: 140, takeProfit: 160, stopLoss: 130, entryOrderId: "e-eth-1", openedAt: new Date(nowMs - 8 * quarter) });
  await savePosition(db, { exchange: EXCHANGE, symbol: "BTC/USDT", side: "LONG", quantity: 0.5, entryPrice: 98, takeProfit: 110, stopLoss: 95, entryOrderId: "e-btc-1", openedAt: new Date(nowMs - 30 * quarter) });
  await closePositionWithTrade(db, { exchange: EXCHANGE, symbol: "BTC/USDT", exitPrice: 104, exitTime: new Date(nowMs - 12 * quarter), exitReason: "TAKE_PROFIT", exitOrderId: "x-btc-1", fees: 0.1 });

  const events: EventInput[] = [];
  for (const symbol of COINS) {
    for (let i = 0; i < 3; i += 1) {
      events.push({ type: "DECISION_TRACE", symbol, time: new Date(nowMs - i * quarter), payload: { action: i === 0 ? "BUY" : "NO_SIGNAL", price: 100 + i, reasons: [`reason ${i} for ${symbol}`] } });
    }
  }
  events.push({ type: "ERROR", symbol: "SOL/USDT", level: "error", time: new Date(nowMs - quarter), payload: { message: "fetchOHLCV failed: exchange timeout" } });
  await recordEvents(db, events);
  await saveAccountState(
    db,
    Array.from({ length: 10 }, (_, i) => ({ time: new Date(nowMs - (10 - i) * quarter), exchange: EXCHANGE, currency: "USDT", free: 9000, used: 1000, total: 10_000 + i, equity: 10_000 + i * 3 })),
  );
}

/** A DashboardSource over `db` with the fixture's coins and verify's default thresholds. */
export function fixtureSource(db: Database, nowMs: number, overrides: Partial<DashboardSource> = {}): DashboardSource {
  return {
    db: () => Promise.resolve(db),
    exchange: EXCHANGE,
    timeframes: TIMEFRAMES,
    coins: () => Promise.resolve({ symbols: [...COINS], source: "the test's coins" }),
    staleAfterPeriods: 2,
    gapWindowCandles: 96,
    now: () => nowMs,
    ...overrides,
  };
}
