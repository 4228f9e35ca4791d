import type { CandleColumns } from "../candles/columns";

export type Action = "BUY" | "SELL" | "NO_SIGNAL";

export interface StrategyParams {
  /** Trend: fast and slow EMA periods (fast < slow). */
  emaFast: number;
  emaSlow: number;
  /** Momentum: RSI period and the band an entry must be in. */
  rsiPeriod: number;
  rsiEntryMin: number;
  rsiEntryMax: number;
  /** Exit on momentum exhaustion above this RSI. */
  rsiExit: number;
  /** Volatility: ATR period and take-profit / stop-loss distances in ATRs. */
  atrPeriod: number;
  takeProfitAtr: number;
  stopLossAtr: number;
}

export interface Indicators {
  emaFast: number | null;
  emaSlow: number | null;
  rsi: number | null;
  atr: number | null;
}

/** What the strategy decided for one coin, with the inputs that explain it. */
export interface Decision {
  action: Action;
  /** Human-readable reasons, e.g. "emaFast 101.2 > emaSlow 99.8 (uptrend)". */
  reasons: string[];
  /** Close of the last closed candle the decision was made on. */
  price: number;
  /** openTime of that candle. */
  candleTime: number;
  indicators: Indicators;
  /** Levels for a BUY; null otherwise. */
  takeProfit: number | null;
  stopLoss: number | null;
}

export interface PositionView {
  side: "LONG" | "SHORT";
  entryPrice: number;
}

export type DecideFn = (closedCandles: CandleColumns, position: PositionView | null, params: StrategyParams) => Decision;
