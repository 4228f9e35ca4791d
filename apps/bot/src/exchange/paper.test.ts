import { DEFAULT_PAPER_FEE_RATE, PaperBroker, PaperOrderRejectedError } from "./paper";
import { SimExchange } from "./sim";
import type { MarketData, Ticker } from "./types";

const NOW = Date.UTC(2026, 10, 18, 13, 37);

/** Market data with fixed quotes; counts ticker requests. */
function fixedMarket(quotes: Record<string, Omit<Ticker, "symbol" | "timestamp" | "quoteVolume">>) {
  const requests: string[] = [];
  const market: MarketData = {
    id: "fixed",
    now: () => NOW,
    topSymbols: async () => Object.keys(quotes),
    unknownSymbols: async (symbols) => symbols.filter((s) => !(s in quotes)),
    fetchCandles: async () => [],
    fetchTicker: async (symbol) => {
      requests.push(symbol);
      const quote = quotes[symbol];
      if (!quote) throw new Error(`no quote for ${symbol}`);
      return { symbol, ...quote, quoteVolume: undefined, timestamp: NOW };
    },
    close: async () => undefined,
  };
  return { market, requests };
}

const BTC = { last: 50_000, bid: 49_990, ask: 50_010 };

function broker(startingBalance = 10_000, feeRate?: number) {
  const { market, requests } = fixedMarket({ "BTC/USDT": BTC, "XRP/USDT": { last: 0.5, bid: undefined, ask: undefined } });
  return { paper: new PaperBroker({ market, quoteCurrency: "USDT", startingBalance, feeRate }), requests };
}

async function cash(paper: PaperBroker) {
  return (await paper.balances()).find((b) => b.currency === "USDT");
}

describe("PaperBroker", () => {
  it("buys at the ask, charges the default 0.1% fee and holds the coins", async () => {
    const { paper } = broker();
    const fill = await paper.marketOrder({ symbol: "BTC/USDT", side: "buy", amount: 0.1, clientOrderId: "a" });
    expect(DEFAULT_PAPER_FEE_RATE).toBe(0.001);
    expect(fill).toMatchObject({ symbol: "BTC/USDT", side: "buy", amount: 0.1, price: BTC.ask, timestamp: NOW });
    expect(fill.fee).toBeCloseTo(5.001, 9);
    expect(await cash(paper)).toEqual({ currency: "USDT", free: 10_000 - 5001 - 5.001, used: 0, total: 10_000 - 5001 - 5.001 });
    expect((await paper.balances()).find((b) => b.currency === "BTC")).toEqual({ currency: "BTC", free: 0.1, used: 0, total: 0.1 });
  });

  it("sells at the bid and credits the proceeds less the fee", async () => {
    const { paper } = broker();
    await paper.marketOrder({ symbol: "BTC/USDT", side: "buy", amount: 0.1, clientOrderId: "buy" });
    const before = (await cash(paper))?.free ?? 0;
    const fill = await paper.marketOrder({ symbol: "BTC/USDT", side: "sell", amount: 0.1, clientOrderId: "sell" });
    expect(fill.price).toBe(BTC.bid);
    expect(fill.fee).toBeCloseTo(4.999, 9);
    expect((await cash(paper))?.free).toBeCloseTo(before + 4999 - 4.999, 9);
    expect((await paper.balances()).map((b) => b.currency)).toEqual(["USDT"]);
  });

  it("uses the last price when the market has no bid or ask, and the configured fee rate", async () => {
    const { paper } = broker(1000, 0.002);
    const fill = await paper.marketOrder({ symbol: "XRP/USDT", side: "buy", amount: 100, clientOrderId: "x" });
    expect(fill.price).toBe(0.5);
    expect(fill.fee).toBeCloseTo(0.1, 12);
  });

  it("refuses a buy larger than the free cash, saying how much it needs, and changes nothing", async () => {
    const { paper } = broker(1000);
    const attempt = paper.marketOrder({ symbol: "BTC/USDT", side: "buy", amount: 0.1, clientOrderId: "big" });
    await expect(attempt).rejects.toBeInstanceOf(PaperOrderRejectedError);
    await expect(attempt).rejects.toThrow("paper buy of 0.1 BTC/USDT at 50010 costs 5006.001 USDT with fees, but only 1000 USDT is free");
    expect(await paper.balances()).toEqual([{ currency: "USDT", free: 1000, used: 0, total: 1000 }]);
  });

  it("refuses to sell more than is held", async () => {
    const { paper } = broker();
    await paper.marketOrder({ symbol: "BTC/USDT", side: "buy", amount: 0.05, clientOrderId: "buy" });
    await expect(paper.marketOrder({ symbol: "BTC/USDT", side: "sell", amount: 0.06, clientOrderId: "sell" })).rejects.toThrow(
      "paper sell of 0.06 BTC/USDT: only 0.05 BTC is held",
    );
  });

  it("refuses markets outside the account currency and non-positive amounts", async () => {
    const { paper } = broker();
    await expect(paper.marketOrder({ symbol: "ETH/BTC", side: "buy", amount: 1, clientOrderId: "q" })).rejects.toThrow(/only BASE\/USDT markets/);
    await expect(paper.marketOrder({ symbol: "BTC/USDT", side: "buy", amount: 0, clientOrderId: "z" })).rejects.toThrow(/amount must be a positive number/);
  });

  it("returns the original fill for a repeated clientOrderId, even when sent concurrently", async () => {
    const { paper, requests } = broker();
    const request = { symbol: "BTC/USDT", side: "buy" as const, amount: 0.1, clientOrderId: "same" };
    const [first, concurrent] = await Promise.all([paper.marketOrder(request), paper.marketOrder(request)]);
    const later = await paper.marketOrder(request);
    expect(concurrent).toEqual(first);
    expect(later).toEqual(first);
    expect(requests).toHaveLength(1);
    expect((await paper.balances()).find((b) => b.currency === "BTC")?.total).toBe(0.1);
  });

  it("rejects a clientOrderId reused for a different order", async () => {
    const { paper } = broker();
    await paper.marketOrder({ symbol: "BTC/USDT", side: "buy", amount: 0.1, clientOrderId: "id-1" });
    await expect(paper.marketOrder({ symbol: "BTC/USDT", side: "sell", amount: 0.1, clientOrderId: "id-1" })).rejects.toThrow(/already used for a buy of BTC\/USDT/);
  });

  it("cannot overspend with concurrent buys", async () => {
    const { paper } = broker(8000);
    const results = await Promise.allSettled([
      paper.marketOrder({ symbol: "BTC/USDT", side: "buy", amount: 0.1, clientOrderId: "one" }),
      paper.marketOrder({ symbol: "BTC/USDT", side: "buy", amount: 0.1, clientOrderId: "two" }),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual(["fulfilled", "rejected"]);
    expect((await cash(paper))?.free).toBeGreaterThanOrEqual(0);
  });

  it("restores cash and holdings from persisted state and trades on from there", async () => {
    const { paper } = broker();
    paper.restore({ quote: { free: 2500, total: 2600 }, holdings: { "BTC/USDT": 0.2 } });
    expect(await paper.balances()).toEqual([
      { currency: "USDT", free: 2500, used: 100, total: 2600 },
      { currency: "BTC", free: 0.2, used: 0, total: 0.2 },
    ]);
    await paper.marketOrder({ symbol: "BTC/USDT", side: "sell", amount: 0.2, clientOrderId: "exit" });
    expect((await cash(paper))?.free).toBeCloseTo(2500 + 0.2 * BTC.bid * (1 - DEFAULT_PAPER_FEE_RATE), 9);
  });

  it("fills at the simulated exchange's current quote", async () => {
    const sim = new SimExchange({ seed: 3, startTime: NOW, wallClock: () => NOW });
    const paper = new PaperBroker({ market: sim, quoteCurrency: "USDT", startingBalance: 100_000 });
    const fill = await paper.marketOrder({ symbol: "ETH/USDT", side: "buy", amount: 1, clientOrderId: "sim" });
    expect(fill.price).toBe((await sim.fetchTicker("ETH/USDT")).ask);
    expect(fill.timestamp).toBe(NOW);
  });
});
