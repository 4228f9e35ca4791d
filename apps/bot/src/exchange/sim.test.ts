import { SIM_DEFAULT_SYMBOLS, TIMEFRAMES, TIMEFRAME_MS, type Timeframe } from "@candlekeep/core";
import { SymbolNotListedError } from "./retry";
import { SIM_LISTED_FROM, SimExchange, SimulatedExchangeError } from "./sim";
import type { ExchangeCandle } from "./types";

const MINUTE = 60_000;
const M15 = TIMEFRAME_MS["15m"];
const HOUR = TIMEFRAME_MS["1h"];
const DAY = TIMEFRAME_MS["1d"];
/** A fixed "now" that is not on a candle boundary. */
const NOW = Date.UTC(2026, 10, 18, 13, 37, 21, 500);

function simAt(now: number, seed = 1): SimExchange {
  return new SimExchange({ seed, startTime: now, wallClock: () => now });
}

function aggregateOf(parts: readonly ExchangeCandle[]) {
  return {
    open: parts[0]?.open,
    high: Math.max(...parts.map((c) => c.high)),
    low: Math.min(...parts.map((c) => c.low)),
    close: parts.at(-1)?.close,
    volume: parts.reduce((sum, c) => sum + c.volume, 0),
  };
}

function expectValid(candle: ExchangeCandle, timeframe: Timeframe) {
  expect(candle.openTime % TIMEFRAME_MS[timeframe]).toBe(0);
  for (const price of [candle.open, candle.high, candle.low, candle.close]) expect(price).toBeGreaterThan(0);
  expect(candle.high).toBeGreaterThanOrEqual(Math.max(candle.open, candle.close));
  expect(candle.low).toBeLessThanOrEqual(Math.min(candle.open, candle.close));
  expect(candle.volume).toBeGreaterThanOrEqual(0);
}

describe("SimExchange determinism", () => {
  it("gives identical candles for the same seed in another instance, whatever was asked first", async () => {
    const a = simAt(NOW);
    const b = simAt(NOW);
    // b visits other coins and timeframes, and this coin's history backwards, before the compared call.
    await b.fetchCandles("ETH/USDT", "1d", undefined, 50);
    const backwards: ExchangeCandle[] = [];
    for (let end = NOW; end > NOW - 5 * DAY; end -= DAY) backwards.unshift(...(await b.fetchCandles("BTC/USDT", "15m", end - DAY + 1, 96)));
    const forwards = await a.fetchCandles("BTC/USDT", "15m", NOW - 5 * DAY + 1, 500);
    expect(forwards.length).toBeGreaterThan(400);
    expect(backwards.slice(-forwards.length)).toEqual(forwards);
    await expect(b.fetchTicker("BTC/USDT")).resolves.toEqual(await a.fetchTicker("BTC/USDT"));
  });

  it("gives a different market for another seed", async () => {
    const one = await simAt(NOW, 1).fetchCandles("BTC/USDT", "1h", undefined, 24);
    const two = await simAt(NOW, 2).fetchCandles("BTC/USDT", "1h", undefined, 24);
    expect(two.map((c) => c.close)).not.toEqual(one.map((c) => c.close));
  });
});

describe("SimExchange timeframes", () => {
  it.each([
    ["1h", 4],
    ["4h", 16],
    ["1d", 96],
  ] as const)("makes each closed %s candle the aggregate of its %i 15m candles", async (timeframe, parts) => {
    const sim = simAt(NOW);
    const big = (await sim.fetchCandles("SOL/USDT", timeframe, undefined, 6)).filter((c) => c.isClosed);
    expect(big.length).toBeGreaterThanOrEqual(5);
    const small = await sim.fetchCandles("SOL/USDT", "15m", big[0]?.openTime, big.length * parts);
    big.forEach((candle, i) => {
      const members = small.slice(i * parts, (i + 1) * parts);
      expect(members[0]?.openTime).toBe(candle.openTime);
      const { volume, ...prices } = aggregateOf(members);
      expect(candle).toMatchObject(prices);
      expect(candle.volume).toBeCloseTo(volume, 6);
    });
  });

  it("builds the forming candle of every timeframe from the closed 15m candles so far plus the forming one", async () => {
    const sim = simAt(NOW);
    const dayStart = NOW - (NOW % DAY);
    const today = await sim.fetchCandles("DOGE/USDT", "15m", dayStart, 96);
    expect(today.at(-1)?.isClosed).toBe(false);
    for (const timeframe of ["1h", "4h", "1d"] as const) {
      const [forming] = await sim.fetchCandles("DOGE/USDT", timeframe, undefined, 1);
      expect(forming?.isClosed).toBe(false);
      const members = today.filter((c) => c.openTime >= (forming?.openTime ?? 0));
      const { volume, ...prices } = aggregateOf(members);
      expect(forming).toMatchObject(prices);
      expect(forming?.volume).toBeCloseTo(volume, 6);
    }
  });
});

describe("SimExchange clock", () => {
  it("advances one step at a time but never past the wall clock, then follows it", () => {
    let wall = Date.UTC(2026, 0, 1, 12, 0);
    const sim = new SimExchange({ seed: 1, startTime: wall - 2 * M15 - 5 * MINUTE, wallClock: () => wall });
    const start = sim.now();
    expect(sim.advance()).toBe(start + M15);
    expect(sim.advance()).toBe(start + 2 * M15);
    expect(sim.advance()).toBe(wall);
    wall += 7_000;
    expect(sim.advance()).toBe(wall);
    expect(sim.now()).toBe(wall);
  });

  it("replays while a whole step or more behind the wall clock, and not once it has caught up", () => {
    let wall = Date.UTC(2026, 0, 1, 12, 0);
    const sim = new SimExchange({ seed: 1, startTime: wall - 2 * M15 - 5 * MINUTE, wallClock: () => wall });
    expect(sim.replaying()).toBe(true);
    sim.advance();
    expect(sim.replaying()).toBe(true);
    // 5 minutes behind: less than a step, so the next advance reaches the wall clock.
    sim.advance();
    expect(sim.replaying()).toBe(false);
    sim.advance();
    // Following the wall clock: a tick's few seconds behind it are not a replay.
    wall += 7_000;
    expect(sim.replaying()).toBe(false);
    sim.advance();
    expect(sim.replaying()).toBe(false);
  });

  it("starts no later than the wall clock", () => {
    const wall = Date.UTC(2026, 0, 1);
    expect(new SimExchange({ seed: 1, startTime: wall + DAY, wallClock: () => wall }).now()).toBe(wall);
  });

  it("uses the configured step", () => {
    const wall = Date.UTC(2026, 0, 1);
    const sim = new SimExchange({ seed: 1, startTime: wall - DAY, stepMs: HOUR, wallClock: () => wall });
    expect(sim.advance()).toBe(wall - DAY + HOUR);
  });
});

describe("SimExchange candles", () => {
  it("ends with the forming candle that contains now, and nothing after now", async () => {
    const sim = simAt(NOW);
    for (const timeframe of TIMEFRAMES) {
      const candles = await sim.fetchCandles("BTC/USDT", timeframe, undefined, 5);
      expect(candles).toHaveLength(5);
      const last = candles.at(-1);
      expect(last?.isClosed).toBe(false);
      expect(last?.openTime).toBeLessThanOrEqual(NOW);
      expect((last?.openTime ?? 0) + TIMEFRAME_MS[timeframe]).toBeGreaterThan(NOW);
      expect(candles.slice(0, -1).every((c) => c.isClosed)).toBe(true);
      candles.forEach((c) => expectValid(c, timeframe));
    }
  });

  it("shows a candle that opens exactly now as just opened: one price, no volume", async () => {
    const boundary = Date.UTC(2026, 10, 18, 13, 45);
    const [previous, opening] = await simAt(boundary).fetchCandles("ETH/USDT", "15m", undefined, 2);
    expect(previous?.isClosed).toBe(true);
    expect(opening).toEqual({ openTime: boundary, open: previous?.close, high: previous?.close, low: previous?.close, close: previous?.close, volume: 0, isClosed: false });
  });

  it("keeps a forming candle inside the range and volume of the candle it becomes", async () => {
    const openTime = Date.UTC(2026, 10, 18, 13, 30);
    const [closed] = await simAt(openTime + M15).fetchCandles("ADA/USDT", "15m", openTime, 1);
    for (const elapsed of [1, 5, 9, 14].map((m) => m * MINUTE)) {
      const [forming] = await simAt(openTime + elapsed).fetchCandles("ADA/USDT", "15m", openTime, 1);
      expect(forming?.isClosed).toBe(false);
      expect(forming?.open).toBe(closed?.open);
      expect(forming?.high).toBeLessThanOrEqual(closed?.high ?? 0);
      expect(forming?.low).toBeGreaterThanOrEqual(closed?.low ?? 0);
      expect(forming?.volume).toBeLessThan(closed?.volume ?? 0);
    }
  });

  it("returns candles from `since` (rounded up to the timeframe), oldest first, at most `limit`", async () => {
    const sim = simAt(NOW);
    const since = NOW - 10 * HOUR + 1;
    const candles = await sim.fetchCandles("BTC/USDT", "1h", since, 4);
    expect(candles.map((c) => c.openTime)).toEqual([0, 1, 2, 3].map((i) => Math.ceil(since / HOUR) * HOUR + i * HOUR));
    const toNow = await sim.fetchCandles("BTC/USDT", "1h", since, 1000);
    expect(toNow).toHaveLength(10);
    expect(toNow.at(-1)?.isClosed).toBe(false);
  });

  it("returns nothing for a `since` after now or a limit of 0", async () => {
    const sim = simAt(NOW);
    await expect(sim.fetchCandles("BTC/USDT", "15m", NOW + M15, 10)).resolves.toEqual([]);
    await expect(sim.fetchCandles("BTC/USDT", "15m", undefined, 0)).resolves.toEqual([]);
  });

  it("starts history at the listing date, as an exchange does", async () => {
    const candles = await simAt(NOW).fetchCandles("BTC/USDT", "1d", SIM_LISTED_FROM - 30 * DAY, 3);
    expect(candles[0]?.openTime).toBe(SIM_LISTED_FROM);
  });

  it("has no candles of a coin listed later opening before its listing, on every timeframe; other coins and later candles are unchanged", async () => {
    const listing = NOW - 10 * DAY + 5 * HOUR + 7 * MINUTE;
    const listed = new SimExchange({ seed: 1, startTime: NOW, wallClock: () => NOW, listedFrom: { "ETH/USDT": listing } });
    const plain = simAt(NOW);
    for (const timeframe of TIMEFRAMES) {
      const step = TIMEFRAME_MS[timeframe];
      const candles = await listed.fetchCandles("ETH/USDT", timeframe, NOW - 30 * DAY, 5);
      // The first whole candle after the listing; the same candles as without a listing from there on.
      expect(candles[0]?.openTime).toBe(Math.ceil(listing / step) * step);
      expect(candles).toEqual(await plain.fetchCandles("ETH/USDT", timeframe, candles[0]?.openTime, 5));
      await expect(listed.fetchCandles("ETH/USDT", timeframe, NOW - 30 * DAY, 1)).resolves.toEqual(candles.slice(0, 1));
    }
    await expect(listed.fetchCandles("BTC/USDT", "15m", NOW - 30 * DAY, 3)).resolves.toEqual(await plain.fetchCandles("BTC/USDT", "15m", NOW - 30 * DAY, 3));
  });

  it("serves years-old history directly", async () => {
    const since = Date.UTC(2019, 5, 1);
    const candles = await simAt(NOW).fetchCandles("LINK/USDT", "15m", since, 96);
    expect(candles).toHaveLength(96);
    expect(candles[0]?.openTime).toBe(since);
    candles.forEach((c) => expectValid(c, "15m"));
  });
});

describe("SimExchange markets", () => {
  it("lists the default coins first, then synthetic ones, up to thousands", async () => {
    const sim = simAt(NOW);
    const top = await sim.topSymbols(5000, "USDT");
    expect(top.slice(0, SIM_DEFAULT_SYMBOLS.length)).toEqual(SIM_DEFAULT_SYMBOLS);
    expect(top[SIM_DEFAULT_SYMBOLS.length]).toBe("S021/USDT");
    expect(top.at(-1)).toBe("S5000/USDT");
    expect(new Set(top).size).toBe(5000);
    await expect(sim.topSymbols(3, "USDT")).resolves.toEqual(SIM_DEFAULT_SYMBOLS.slice(0, 3));
  });

  it("ranks the same coins quoted in the account's currency, and lists none in another", async () => {
    const eur = new SimExchange({ seed: 1, startTime: NOW, wallClock: () => NOW, quoteCurrency: "EUR" });
    await expect(eur.topSymbols(3, "EUR")).resolves.toEqual(["BTC/EUR", "ETH/EUR", "SOL/EUR"]);
    await expect(eur.topSymbols(3, "USDT")).resolves.toEqual([]);
    await expect(eur.unknownSymbols(["BTC/EUR", "BTC/USDT"])).resolves.toEqual(["BTC/USDT"]);
    const usdc = new SimExchange({ seed: 1, startTime: NOW, wallClock: () => NOW, quoteCurrency: "USDC" });
    expect((await usdc.topSymbols(21, "USDC")).at(-1)).toBe("S021/USDC");
    // A coin is never quoted in itself: an account in BTC gets ETH/BTC first.
    const btc = new SimExchange({ seed: 1, startTime: NOW, wallClock: () => NOW, quoteCurrency: "BTC" });
    await expect(btc.topSymbols(2, "BTC")).resolves.toEqual(["ETH/BTC", "SOL/BTC"]);
    await expect(btc.unknownSymbols(["BTC/BTC"])).resolves.toEqual(["BTC/BTC"]);
  });

  it("lists its default coins and S021 … S5000 in its quote currency, and nothing else", async () => {
    const sim = simAt(NOW);
    await expect(sim.unknownSymbols(["BTC/USDT", "OP/USDT", "S021/USDT", "S120/USDT", "S5000/USDT"])).resolves.toEqual([]);
    const unlisted = ["FOO/BAR", "FOO/USDT", "BTC/BAR", "BTC/EUR", "BTCUSDT", "btc/usdt", "BTC/USDT:USDT", "S020/USDT", "S21/USDT", "S0021/USDT", "S5001/USDT"];
    await expect(sim.unknownSymbols(unlisted)).resolves.toEqual(unlisted);
    await expect(sim.fetchCandles("BTCUSDT", "1h", undefined, 1)).rejects.toThrow(/sim does not list BTCUSDT; it lists BTC, ETH, .* OP and S021 … S5000, each quoted in USDT$/);
    await expect(sim.fetchTicker("FOO/BAR")).rejects.toThrow(/sim does not list FOO\/BAR/);
    await expect(sim.orderRules("FOO/USDT")).rejects.toThrow(/sim does not list FOO\/USDT/);
    await expect(sim.fetchTicker("FOO/BAR")).rejects.toBeInstanceOf(SymbolNotListedError);
  });

  it("stops listing a coin at its delisting time: it leaves the listing and every call for it throws what ccxt's BadSymbol becomes", async () => {
    let now = NOW;
    const sim = new SimExchange({ seed: 1, startTime: NOW, wallClock: () => now, delistedFrom: { "ETH/USDT": NOW + M15 } });
    await expect(sim.fetchCandles("ETH/USDT", "15m", undefined, 2)).resolves.toHaveLength(2);
    await expect(sim.unknownSymbols(["BTC/USDT", "ETH/USDT"])).resolves.toEqual([]);
    await expect(sim.topSymbols(3, "USDT")).resolves.toEqual(["BTC/USDT", "ETH/USDT", "SOL/USDT"]);

    now += M15;
    sim.advance();
    const delisted = sim.fetchCandles("ETH/USDT", "1h", undefined, 2);
    await expect(delisted).rejects.toBeInstanceOf(SymbolNotListedError);
    await expect(delisted).rejects.toMatchObject({ exchange: "sim", operation: "fetchOHLCV", symbol: "ETH/USDT", transient: false });
    await expect(delisted).rejects.toThrow(/^sim fetchOHLCV ETH\/USDT failed: sim no longer lists ETH\/USDT \(delisted at 2026-11-18T13:52:21\.500Z\)$/);
    await expect(sim.fetchTicker("ETH/USDT")).rejects.toBeInstanceOf(SymbolNotListedError);
    await expect(sim.orderRules("ETH/USDT")).rejects.toBeInstanceOf(SymbolNotListedError);
    await expect(sim.unknownSymbols(["BTC/USDT", "ETH/USDT"])).resolves.toEqual(["ETH/USDT"]);
    await expect(sim.topSymbols(3, "USDT")).resolves.toEqual(["BTC/USDT", "SOL/USDT", "BNB/USDT"]);
    await expect(sim.fetchCandles("BTC/USDT", "15m", undefined, 2)).resolves.toHaveLength(2);
  });

  it("serves 500 coins × 4 timeframes × 300 candles with a bounded cache", async () => {
    const sim = simAt(NOW);
    const symbols = await sim.topSymbols(500, "USDT");
    for (const symbol of symbols) {
      for (const timeframe of TIMEFRAMES) {
        const candles = await sim.fetchCandles(symbol, timeframe, undefined, 300);
        expect(candles.length).toBe(300);
      }
    }
    // Two days per coin (today, yesterday) plus 256 days of history, ~3 KB each.
    expect(sim.cachedDays).toBeLessThanOrEqual(2 * 500 + 256);
    const latest = await Promise.all(symbols.map((symbol) => sim.fetchCandles(symbol, "15m", undefined, 2)));
    expect(latest.every((candles) => candles.length === 2 && candles[1]?.isClosed === false)).toBe(true);
  });

  it("serves the same candles when its days are evicted and regenerated into recycled buffers", async () => {
    const symbols = ["BTC/USDT", "ETH/USDT", "S120/USDT"];
    const fetchAll = (sim: SimExchange) => Promise.all(symbols.flatMap((symbol) => TIMEFRAMES.map((timeframe) => sim.fetchCandles(symbol, timeframe, undefined, 120))));
    const roomy = simAt(NOW);
    // No history room: every older day is evicted at once and its buffer overwritten by another coin's day.
    const tight = new SimExchange({ seed: 1, startTime: NOW, wallClock: () => NOW, historyCacheDays: 0 });
    const expected = await fetchAll(roomy);
    expect(await fetchAll(tight)).toEqual(expected);
    expect(tight.cachedDays).toBeLessThanOrEqual(2 * symbols.length);
    // Again: the same days regenerated into buffers that held other days.
    expect(await fetchAll(tight)).toEqual(expected);
  });

  it("serves a coin's last day right after other coins' days took its buffer", async () => {
    const tight = new SimExchange({ seed: 1, startTime: NOW, wallClock: () => NOW, historyCacheDays: 0 });
    await tight.fetchCandles("BTC/USDT", "1h", undefined, 3);
    // Twenty more days for two other coins: BTC's day is evicted and its buffer overwritten.
    await tight.fetchCandles("ETH/USDT", "1d", undefined, 10);
    await tight.fetchCandles("S120/USDT", "1d", undefined, 10);
    expect(await tight.fetchCandles("BTC/USDT", "1h", undefined, 3)).toEqual(await simAt(NOW).fetchCandles("BTC/USDT", "1h", undefined, 3));
  });

  it("prices coins on their own scales", async () => {
    const sim = simAt(NOW);
    const last = async (symbol: string) => (await sim.fetchTicker(symbol)).last;
    expect(await last("BTC/USDT")).toBeGreaterThan(10_000);
    expect(await last("ETH/USDT")).toBeGreaterThan(300);
    expect(await last("ETH/USDT")).toBeLessThan(30_000);
    expect(await last("DOGE/USDT")).toBeLessThan(1);
    const synthetic = await Promise.all((await sim.topSymbols(120, "USDT")).slice(20).map(last));
    expect(Math.max(...synthetic) / Math.min(...synthetic)).toBeGreaterThan(1000);
  });

  it("quotes a ticker around the current price, with more volume for bigger coins", async () => {
    const sim = simAt(NOW);
    const ticker = await sim.fetchTicker("BTC/USDT");
    const [forming] = await sim.fetchCandles("BTC/USDT", "15m", undefined, 1);
    expect(ticker.last).toBe(forming?.close);
    expect(ticker.timestamp).toBe(NOW);
    expect(ticker.bid).toBeLessThan(ticker.ask ?? 0);
    expect(ticker.bid).toBeLessThanOrEqual(ticker.last);
    expect(ticker.ask).toBeGreaterThanOrEqual(ticker.last);
    const volume = async (symbol: string) => (await sim.fetchTicker(symbol)).quoteVolume ?? 0;
    expect(ticker.quoteVolume).toBeGreaterThan(await volume("DOGE/USDT"));
    expect(await volume("DOGE/USDT")).toBeGreaterThan(await volume("S400/USDT"));
  });
});

describe("SimExchange price behaviour", () => {
  it("has daily moves of a few percent and both rallies and sell-offs within hours", async () => {
    const candles = await simAt(NOW).fetchCandles("BTC/USDT", "15m", NOW - 60 * DAY, 60 * 96);
    const closes = candles.map((c) => c.close);
    const sixHourMoves = closes.slice(24).map((close, i) => close / (closes[i] ?? close) - 1);
    expect(Math.max(...sixHourMoves)).toBeGreaterThan(0.03);
    expect(Math.min(...sixHourMoves)).toBeLessThan(-0.03);
    const days = await simAt(NOW).fetchCandles("BTC/USDT", "1d", undefined, 365);
    const dailyReturns = days.slice(1).map((d, i) => Math.log(d.close / (days[i]?.close ?? d.close)));
    const dailyVolatility = Math.sqrt(dailyReturns.reduce((sum, r) => sum + r * r, 0) / dailyReturns.length);
    expect(dailyVolatility).toBeGreaterThan(0.01);
    expect(dailyVolatility).toBeLessThan(0.06);
  });

  it("lets an EMA-cross strategy with ATR take-profit and stop-loss enter and exit within tens of 15m candles", async () => {
    const candles = (await simAt(NOW).fetchCandles("ETH/USDT", "15m", undefined, 2000)).filter((c) => c.isClosed);
    const ema = (period: number) => {
      const k = 2 / (period + 1);
      let value = candles[0]?.close ?? 0;
      return candles.map((c) => (value = c.close * k + value * (1 - k)));
    };
    const fast = ema(9);
    const slow = ema(21);
    let atr = 0;
    const atrs = candles.map((c, i) => (atr = i === 0 ? c.high - c.low : (atr * 13 + Math.max(c.high - c.low, Math.abs(c.high - (candles[i - 1]?.close ?? 0)), Math.abs(c.low - (candles[i - 1]?.close ?? 0)))) / 14));
    const exits = { takeProfit: 0, stopLoss: 0, signal: 0 };
    const holds: number[] = [];
    let entry: { at: number; takeProfit: number; stopLoss: number } | undefined;
    for (let i = 30; i < candles.length; i += 1) {
      const close = candles[i]?.close ?? 0;
      const upTrend = (fast[i] ?? 0) > (slow[i] ?? 0);
      if (!entry) {
        const crossedUp = upTrend && (fast[i - 1] ?? 0) <= (slow[i - 1] ?? 0);
        if (crossedUp) entry = { at: i, takeProfit: close + 2.5 * (atrs[i] ?? 0), stopLoss: close - 1.5 * (atrs[i] ?? 0) };
        continue;
      }
      const exit = close >= entry.takeProfit ? "takeProfit" : close <= entry.stopLoss ? "stopLoss" : !upTrend ? "signal" : undefined;
      if (exit) {
        exits[exit] += 1;
        holds.push(i - entry.at);
        entry = undefined;
      }
    }
    expect(holds.length).toBeGreaterThanOrEqual(20);
    expect(exits.takeProfit).toBeGreaterThan(0);
    expect(exits.stopLoss + exits.signal).toBeGreaterThan(0);
    const medianHold = [...holds].sort((a, b) => a - b)[Math.floor(holds.length / 2)] ?? Infinity;
    expect(medianHold).toBeLessThanOrEqual(40);
  });
});

describe("SimExchange fault injection", () => {
  it("fails every call for chosen symbols while the others keep working, until healed", async () => {
    const sim = simAt(NOW);
    sim.failSymbols(["ETH/USDT"]);
    await expect(sim.fetchCandles("ETH/USDT", "15m", undefined, 2)).rejects.toBeInstanceOf(SimulatedExchangeError);
    await expect(sim.fetchTicker("ETH/USDT")).rejects.toThrow(/simulated exchange failure for ETH\/USDT/);
    await expect(sim.fetchCandles("BTC/USDT", "15m", undefined, 2)).resolves.toHaveLength(2);
    sim.failSymbols([]);
    await expect(sim.fetchCandles("ETH/USDT", "15m", undefined, 2)).resolves.toHaveLength(2);
  });

  it("accepts failing symbols at construction", async () => {
    const sim = new SimExchange({ seed: 1, startTime: NOW, wallClock: () => NOW, failingSymbols: ["SOL/USDT"] });
    await expect(sim.fetchTicker("SOL/USDT")).rejects.toBeInstanceOf(SimulatedExchangeError);
  });
});

describe("the sim's order rules", () => {
  it("round amounts down to 10⁻⁸ of a coin, exactly for amounts already on that grid", async () => {
    const { roundAmount, minAmount, minCost } = await new SimExchange({ seed: 1, startTime: Date.UTC(2026, 0, 1) }).orderRules("DOGE/USDT");
    expect(roundAmount(20530.27514788)).toBe(20530.27514788);
    expect(roundAmount(0.123456789)).toBe(0.12345678);
    expect(roundAmount(0.000000009)).toBe(0);
    expect([minAmount, minCost]).toEqual([1e-8, 10]);
  });
});
