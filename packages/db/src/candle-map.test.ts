import { CandleMap } from "./candle-map";

const key = (exchange: string, symbol: string, timeframe: string, openTime: number) => ({ exchange, symbol, timeframe, openTime });

describe("CandleMap", () => {
  it("keeps one value per (exchange, symbol, timeframe, open time), telling keys apart by every field", () => {
    const map = new CandleMap<string>();
    const keys = [key("binance", "BTC/USDT", "15m", 0), key("kraken", "BTC/USDT", "15m", 0), key("binance", "ETH/USDT", "15m", 0), key("binance", "BTC/USDT", "1h", 0), key("binance", "BTC/USDT", "15m", 900_000)];
    keys.forEach((k, i) => map.set(k, `v${i}`));
    expect(map.size).toBe(5);
    expect(keys.every((k) => map.has({ ...k }))).toBe(true);
    expect(map.has(key("binance", "BTC/USDT", "4h", 0))).toBe(false);
    expect([...map.values()].sort()).toEqual(["v0", "v1", "v2", "v3", "v4"]);
  });

  it("replaces the value of a key set again, which keeps its place, and lists values series by series", () => {
    const map = new CandleMap<string>();
    map.set(key("sim", "BTC/USDT", "15m", 0), "btc 0");
    map.set(key("sim", "ETH/USDT", "15m", 0), "eth 0");
    map.set(key("sim", "BTC/USDT", "15m", 900_000), "btc 1");
    map.set(key("sim", "BTC/USDT", "15m", 0), "btc 0, newer");
    expect(map.size).toBe(3);
    expect([...map.values()]).toEqual(["btc 0, newer", "btc 1", "eth 0"]);
  });
});
