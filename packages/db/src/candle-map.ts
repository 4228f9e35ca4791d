import type { CandleInput } from "./candles";

/** The fields of a candle's primary key. */
export type CandleKeyFields = Pick<CandleInput, "exchange" | "symbol" | "timeframe" | "openTime">;

/**
 * Values keyed by a candle's primary key (exchange, symbol, timeframe, open
 * time), in maps nested field by field, so a lookup builds no key text. The
 * rows of a batch share a few hundred exchange, symbol and timeframe strings,
 * whose hashes V8 computes once; a text key per row would be built and hashed
 * anew twice per candle (queued, then written).
 */
export class CandleMap<V> {
  private readonly byExchange = new Map<string, Map<string, Map<string, Map<number, V>>>>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  has(key: CandleKeyFields): boolean {
    return this.byExchange.get(key.exchange)?.get(key.symbol)?.get(key.timeframe)?.has(key.openTime) ?? false;
  }

  /** Sets the value of `key`; a key set before keeps its place in values(). */
  set(key: CandleKeyFields, value: V): void {
    const series = this.series(key);
    if (!series.has(key.openTime)) this.count += 1;
    series.set(key.openTime, value);
  }

  /** Every value, series by series, each series and each of its candles in the order first set. */
  *values(): IterableIterator<V> {
    for (const bySymbol of this.byExchange.values()) {
      for (const byTimeframe of bySymbol.values()) {
        for (const byOpenTime of byTimeframe.values()) yield* byOpenTime.values();
      }
    }
  }

  private series(key: CandleKeyFields): Map<number, V> {
    let bySymbol = this.byExchange.get(key.exchange);
    if (!bySymbol) this.byExchange.set(key.exchange, (bySymbol = new Map()));
    let byTimeframe = bySymbol.get(key.symbol);
    if (!byTimeframe) bySymbol.set(key.symbol, (byTimeframe = new Map()));
    let byOpenTime = byTimeframe.get(key.timeframe);
    if (!byOpenTime) byTimeframe.set(key.timeframe, (byOpenTime = new Map()));
    return byOpenTime;
  }
}
