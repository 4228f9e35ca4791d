import type { ExchangeCandle } from "../exchange/types";

/**
 * Candles as columns, oldest first: entry i of every array is candle i. The bot
 * holds thousands of series; columns of numbers cost a fraction of one object
 * per candle in memory and let the indicators run over plain arrays.
 */
export interface CandleColumns {
  readonly length: number;
  readonly openTime: Float64Array;
  readonly open: Float64Array;
  readonly high: Float64Array;
  readonly low: Float64Array;
  readonly close: Float64Array;
  readonly volume: Float64Array;
}

/** The columns of a list of candles (copied). */
export function toColumns(candles: readonly ExchangeCandle[]): CandleColumns {
  const column = (field: "openTime" | "open" | "high" | "low" | "close" | "volume") => Float64Array.from(candles, (c) => c[field]);
  return {
    length: candles.length,
    openTime: column("openTime"),
    open: column("open"),
    high: column("high"),
    low: column("low"),
    close: column("close"),
    volume: column("volume"),
  };
}
