import { TIMEFRAMES, isTimeframe, type Timeframe } from "@candlekeep/core";
import ccxt from "ccxt";
import { CcxtMarketData } from "../exchange/ccxt";
import { recorded, stubbedBinance } from "../exchange/fixtures/binance";
import { SimExchange } from "../exchange/sim";
import type { TestBot } from "../testing/bot";
import { useServerTestBot } from "../testing/server-bot";
import { simCandleMismatches } from "../testing/sim-truth";

/**
 * Reliability, fault 5: exchange faults at the bot level. The bot runs over a
 * real ccxt binance exchange whose HTTP layer answers from recorded payloads
 * (markets, tickers) and serves candles in binance's raw kline format, made
 * from a simulated exchange (so the truth is known). Faults are injected per
 * coin through ccxt's own error classes and malformed responses.
 */

const SEED = 7;
const STEP = 15 * 60_000;
const SYMBOLS = ["BTC/USDT", "ETH/USDT", "LTC/USDT"];

type KlineFault = (request: { symbol: string; timeframe: Timeframe }, rows: unknown[][]) => unknown[][];

/** binance's raw kline row for a candle, numbers as decimal strings as the API sends them. */
function klineRow(c: { openTime: number; open: number; high: number; low: number; close: number; volume: number }, timeframe: Timeframe): unknown[] {
  const close = c.openTime + ({ "15m": 15, "1h": 60, "4h": 240, "1d": 1440 }[timeframe] * 60_000) - 1;
  return [c.openTime, String(c.open), String(c.high), String(c.low), String(c.close), String(c.volume), close, String(c.volume * c.close), 100, "0", "0", "0"];
}

describe("exchange faults at the bot level (ccxt binance over recorded payloads, PostgreSQL server)", () => {
  const testBot = useServerTestBot();

  it("retries timeouts and rate limits, survives empty, short, out-of-order and repeated responses, isolates a failing coin, and it catches up without gaps once healed", async () => {
    const sim = new SimExchange({ seed: SEED, startTime: Date.now() - 200 * STEP });
    const faults = new Map<string, KlineFault>();
    const calls = new Map<string, number>();
    const stub = stubbedBinance();
    const recordedFetch = stub.exchange.fetch.bind(stub.exchange);
    stub.exchange.fetch = async (url: string, method?: string, headers?: unknown, body?: string) => {
      const parsed = new URL(url);
      const id = parsed.searchParams.get("symbol") ?? "";
      const symbol = `${id.replace(/USDT$/, "")}/USDT`;
      if (parsed.pathname === "/api/v3/ticker/24hr" && id !== "") {
        // The recorded ticker with the simulated coin's prices (paper fills use them).
        const ticker = await sim.fetchTicker(symbol);
        return { ...recorded.fetchTicker.httpResponse, symbol: id, lastPrice: String(ticker.last), bidPrice: String(ticker.bid), askPrice: String(ticker.ask), closeTime: String(sim.now()) };
      }
      if (parsed.pathname !== "/api/v3/klines") return recordedFetch(url, method, headers, body);
      const timeframe = parsed.searchParams.get("interval") ?? "";
      if (!isTimeframe(timeframe)) throw new Error(`unexpected kline interval ${timeframe}`);
      calls.set(symbol, (calls.get(symbol) ?? 0) + 1);
      const start = parsed.searchParams.get("startTime");
      const limit = Number(parsed.searchParams.get("limit") ?? 500);
      const candles = await sim.fetchCandles(symbol, timeframe, start === null ? undefined : Number(start), limit);
      const rows = candles.map((c) => klineRow(c, timeframe));
      const fault = faults.get(symbol);
      return fault ? fault({ symbol, timeframe }, rows) : rows;
    };
    // The market's warnings go to the bot's log (it exists once the bot has started).
    let botLogger: TestBot["logger"] | undefined;
    const market = new CcxtMarketData(stub.exchange, {
      logger: { error: () => undefined, info: () => undefined, debug: () => undefined, warn: (message, meta) => botLogger?.warn(message, meta) },
      retryDelaysMs: [1, 1, 1],
      now: () => sim.now(),
    });

    const started = await testBot.start({ EXCHANGE: "binance", SYMBOLS: SYMBOLS.join(",") }, { market });
    botLogger = started.logger;
    const tick = async () => {
      sim.advance();
      const [report] = await started.ticks(1);
      if (!report) throw new Error("no tick report");
      return report;
    };

    // ETH: every request times out or is rate limited twice, then answers (retried with backoff).
    let ethAttempt = 0;
    faults.set("ETH/USDT", (_request, rows) => {
      ethAttempt += 1;
      if (ethAttempt % 3 === 1) throw new ccxt.RequestTimeout("binance GET https://api.binance.com/api/v3/klines request timed out (10000 ms)");
      if (ethAttempt % 3 === 2) throw new ccxt.RateLimitExceeded("binance 429 Too Many Requests");
      return rows;
    });
    // LTC: the exchange is not available for it at all.
    faults.set("LTC/USDT", () => {
      throw new ccxt.ExchangeNotAvailable("binance GET https://api.binance.com/api/v3/klines 503 Service Unavailable");
    });
    // BTC: rows out of order and repeated; then an empty response; then a short one (only the oldest row).
    faults.set("BTC/USDT", (_request, rows) => [...rows].reverse().flatMap((row) => [row, row]));
    const first = await tick();
    faults.set("BTC/USDT", (request, rows) => (request.timeframe === "1h" ? [] : rows));
    const second = await tick();
    faults.set("BTC/USDT", (request, rows) => (request.timeframe === "15m" ? rows.slice(0, 1) : rows));
    const third = await tick();

    for (const report of [first, second, third]) {
      // Only LTC failed, with one line naming the exchange, call, coin, attempts and ccxt's error class.
      expect(report.failed).toEqual([{ symbol: "LTC/USDT", error: expect.stringMatching(/^binance fetchOHLCV LTC\/USDT 15m failed after 4 attempts: ExchangeNotAvailable: /) }]);
      expect(report.flushError).toBeUndefined();
    }
    const retries = started.logger.lines.filter((l) => l.message === "exchange call failed; retrying");
    expect(retries.some((l) => l.meta?.symbol === "ETH/USDT" && l.meta.attempt === 2)).toBe(true);
    // ETH, only ever failing transiently, is complete and exact.
    const db = await started.database.get();
    expect(await simCandleMismatches(db, { seed: SEED, exchangeTime: sim.now(), symbols: ["ETH/USDT"], timeframes: TIMEFRAMES, exchange: "binance" })).toEqual([]);
    expect(calls.get("LTC/USDT")).toBeGreaterThan(0);

    // Healed: every coin catches up, without gaps, to exactly what the exchange has.
    faults.clear();
    const healed = [await tick(), await tick()];
    for (const report of healed) expect(report.failed).toEqual([]);
    expect(await simCandleMismatches(db, { seed: SEED, exchangeTime: sim.now(), symbols: SYMBOLS, timeframes: TIMEFRAMES, exchange: "binance" })).toEqual([]);
  });
});
