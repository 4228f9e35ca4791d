import type { Timeframe } from "@candlekeep/core";
import type { MarketData } from "../exchange/types";

/** One fetchCandles call: what was asked for, and how many candles came back. */
export interface CandleRequest {
  symbol: string;
  timeframe: Timeframe;
  since: number | undefined;
  limit: number;
  answered: number;
}

/**
 * Test and benchmark support: `market` unchanged, with every candle request it is asked noted in
 * `requests`, so a test can say what the exchange was asked for (a repair's cost).
 */
export function recordCandleRequests(market: MarketData): { market: MarketData; requests: CandleRequest[] } {
  const requests: CandleRequest[] = [];
  return {
    requests,
    market: {
      id: market.id,
      now: () => market.now(),
      topSymbols: (count, quote) => market.topSymbols(count, quote),
      unknownSymbols: (symbols) => market.unknownSymbols(symbols),
      async fetchCandles(symbol, timeframe, since, limit) {
        const candles = await market.fetchCandles(symbol, timeframe, since, limit);
        requests.push({ symbol, timeframe, since, limit, answered: candles.length });
        return candles;
      },
      fetchTicker: (symbol) => market.fetchTicker(symbol),
      orderRules: (symbol) => market.orderRules(symbol),
      close: () => market.close(),
    },
  };
}
