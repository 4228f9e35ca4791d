import { DEFAULT_PAPER_FEE_RATE, PaperBroker, PaperOrderRejectedError } from "./paper";
import { SimExchange } from "./sim";
import { OrderRefusedError, type MarketData, type OrderQuery, type OrderRequest, type Ticker } from "./types";

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
    orderRules: async () => ({ roundAmount: (amount) => amount, minAmount: undefined, minCost: undefined }),
    close: async () => undefined,
  };
  return { market, requests };
}

const BTC = { last: 50_000, bid: 49_990, ask: 50_010 };

function broker(startingBalance = 10_000, feeRate?: number) {
  const { market, requests } = fixedMarket({ "BTC/USDT": BTC, "XRP/USDT": { last: 0.5, bid: undefined, ask: undefined } });
  return { paper: new PaperBroker({ market, quoteCurrency: "USDT", startingBalance, feeRate }), requests };
}

/** A BTC/USDT order sized at the last price. */
function btc(side: OrderRequest["side"], amount: number, clientOrderId: string, extra: Partial<OrderRequest> = {}): OrderRequest {
  return { symbol: "BTC/USDT", side, amount, clientOrderId, price: BTC.last, ...extra };
}

function query(request: OrderRequest): OrderQuery {
  return { symbol: request.symbol, side: request.side, clientOrderId: request.clientOrderId, exchangeOrderId: null, amount: request.amount, sentSince: NOW };
}

async function cash(paper: PaperBroker) {
  return (await paper.balances()).find((b) => b.currency === "USDT");
}

describe("PaperBroker", () => {
  it("buys at the ask, charges the default 0.1% fee and holds the coins", async () => {
    const { paper } = broker();
    const report = await paper.placeOrder(btc("buy", 0.1, "a"));
    expect(DEFAULT_PAPER_FEE_RATE).toBe(0.001);
    expect(report).toMatchObject({ status: "filled", filledAmount: 0.1, averagePrice: BTC.ask, feeBase: 0, error: null });
    expect(report.exchangeOrderId).toMatch(/^paper-[0-9a-f]{8}-1$/);
    expect(report.time.getTime()).toBe(NOW);
    expect(report.filledCost).toBeCloseTo(5001, 9);
    expect(report.feeQuote).toBeCloseTo(5.001, 9);
    expect(report.fees).toEqual([{ currency: "USDT", cost: report.feeQuote, quoteValue: report.feeQuote }]);
    expect(await cash(paper)).toEqual({ currency: "USDT", free: 10_000 - 5001 - 5.001, used: 0, total: 10_000 - 5001 - 5.001 });
    expect((await paper.balances()).find((b) => b.currency === "BTC")).toEqual({ currency: "BTC", free: 0.1, used: 0, total: 0.1 });
  });

  it("sells at the bid and credits the proceeds less the fee", async () => {
    const { paper } = broker();
    await paper.placeOrder(btc("buy", 0.1, "buy"));
    const before = (await cash(paper))?.free ?? 0;
    const report = await paper.placeOrder(btc("sell", 0.1, "sell"));
    expect(report.averagePrice).toBe(BTC.bid);
    expect(report.feeQuote).toBeCloseTo(4.999, 9);
    expect((await cash(paper))?.free).toBeCloseTo(before + 4999 - 4.999, 9);
    expect((await paper.balances()).map((b) => b.currency)).toEqual(["USDT"]);
  });

  it("fills a sell at its trigger price instead of the bid", async () => {
    const { paper } = broker();
    await paper.placeOrder(btc("buy", 0.1, "buy"));
    const before = (await cash(paper))?.free ?? 0;
    const report = await paper.placeOrder(btc("sell", 0.1, "stop", { triggerPrice: 48_000 }));
    expect(report.averagePrice).toBe(48_000);
    expect(report.filledCost).toBeCloseTo(4800, 9);
    expect(report.feeQuote).toBeCloseTo(4.8, 9);
    expect((await cash(paper))?.free).toBeCloseTo(before + 4800 - 4.8, 9);
  });

  it("numbers its orders so no two fills share an exchange order id", async () => {
    const { paper } = broker();
    const first = await paper.placeOrder(btc("buy", 0.01, "one"));
    const second = await paper.placeOrder(btc("buy", 0.01, "two"));
    expect(second.exchangeOrderId).not.toBe(first.exchangeOrderId);
    expect(second.exchangeOrderId).toMatch(/-2$/);
  });

  it("uses the last price when the market has no bid or ask, and the configured fee rate", async () => {
    const { paper } = broker(1000, 0.002);
    const report = await paper.placeOrder({ symbol: "XRP/USDT", side: "buy", amount: 100, clientOrderId: "x", price: 0.5 });
    expect(report.averagePrice).toBe(0.5);
    expect(report.feeQuote).toBeCloseTo(0.1, 12);
  });

  it("refuses a buy larger than the free cash, saying how much it needs, and changes nothing", async () => {
    const { paper } = broker(1000);
    const attempt = paper.placeOrder(btc("buy", 0.1, "big"));
    await expect(attempt).rejects.toBeInstanceOf(PaperOrderRejectedError);
    await expect(attempt).rejects.toBeInstanceOf(OrderRefusedError);
    await expect(attempt).rejects.toThrow("paper buy of 0.1 BTC/USDT at 50010 costs 5006.001 USDT with fees, but only 1000 USDT is free");
    expect(await paper.balances()).toEqual([{ currency: "USDT", free: 1000, used: 0, total: 1000 }]);
  });

  it("refuses to sell more than is held", async () => {
    const { paper } = broker();
    await paper.placeOrder(btc("buy", 0.05, "buy"));
    await expect(paper.placeOrder(btc("sell", 0.06, "sell"))).rejects.toThrow("paper sell of 0.06 BTC/USDT: only 0.05 BTC is held");
  });

  it("refuses markets outside the account currency and non-positive amounts", async () => {
    const { paper } = broker();
    await expect(paper.placeOrder({ symbol: "ETH/BTC", side: "buy", amount: 1, clientOrderId: "q", price: 0.05 })).rejects.toThrow(/only BASE\/USDT markets/);
    await expect(paper.placeOrder(btc("buy", 0, "z"))).rejects.toThrow(/amount must be a positive number/);
  });

  it("returns the original fill for a repeated clientOrderId, even when sent concurrently", async () => {
    const { paper, requests } = broker();
    const request = btc("buy", 0.1, "same");
    const [first, concurrent] = await Promise.all([paper.placeOrder(request), paper.placeOrder(request)]);
    const later = await paper.placeOrder(request);
    expect(concurrent).toEqual(first);
    expect(later).toEqual(first);
    expect(requests).toHaveLength(1);
    expect((await paper.balances()).find((b) => b.currency === "BTC")?.total).toBe(0.1);
  });

  it("rejects a clientOrderId reused for a different order", async () => {
    const { paper } = broker();
    await paper.placeOrder(btc("buy", 0.1, "id-1"));
    await expect(paper.placeOrder(btc("sell", 0.1, "id-1"))).rejects.toThrow(/already used for a buy of BTC\/USDT/);
  });

  it("looks up a fill of this process without trading or asking the market again", async () => {
    const { paper, requests } = broker();
    const request = btc("buy", 0.1, "filled-here");
    const placed = await paper.placeOrder(request);
    await expect(paper.lookupOrder(query(request))).resolves.toEqual(placed);
    expect(requests).toHaveLength(1);
    expect((await paper.balances()).find((b) => b.currency === "BTC")?.total).toBe(0.1);
  });

  it("looks up an order it never filled as never received, changing nothing", async () => {
    const { paper, requests } = broker();
    await expect(paper.lookupOrder(query(btc("buy", 0.1, "never-sent")))).resolves.toBeUndefined();
    // A refused order left nothing behind either.
    await expect(paper.placeOrder(btc("buy", 1, "refused"))).rejects.toBeInstanceOf(PaperOrderRejectedError);
    await expect(paper.lookupOrder(query(btc("buy", 1, "refused")))).resolves.toBeUndefined();
    expect(requests).toEqual(["BTC/USDT"]);
    expect(await paper.balances()).toEqual([{ currency: "USDT", free: 10_000, used: 0, total: 10_000 }]);
  });

  it("cannot overspend with concurrent buys", async () => {
    const { paper } = broker(8000);
    const results = await Promise.allSettled([paper.placeOrder(btc("buy", 0.1, "one")), paper.placeOrder(btc("buy", 0.1, "two"))]);
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
    await paper.placeOrder(btc("sell", 0.2, "exit"));
    expect((await cash(paper))?.free).toBeCloseTo(2500 + 0.2 * BTC.bid * (1 - DEFAULT_PAPER_FEE_RATE), 9);
  });

  it("fills at the simulated exchange's current quote", async () => {
    const sim = new SimExchange({ seed: 3, startTime: NOW, wallClock: () => NOW });
    const paper = new PaperBroker({ market: sim, quoteCurrency: "USDT", startingBalance: 100_000 });
    const ticker = await sim.fetchTicker("ETH/USDT");
    const report = await paper.placeOrder({ symbol: "ETH/USDT", side: "buy", amount: 1, clientOrderId: "sim", price: ticker.last });
    expect(report.averagePrice).toBe((await sim.fetchTicker("ETH/USDT")).ask);
    expect(report.time.getTime()).toBe(NOW);
  });
});
