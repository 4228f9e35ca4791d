import { baseCurrency, compareHoldings } from "./holdings";

describe("comparing open positions with an exchange's balances", () => {
  it("sums the positions per base coin across quote currencies and matches balances within the tolerance", () => {
    const positions = [
      { symbol: "BTC/USDT", quantity: 0.3 },
      { symbol: "BTC/EUR", quantity: 0.2 },
      { symbol: "ETH/USDT", quantity: 2 },
    ];
    expect(compareHoldings(positions, [{ currency: "BTC", total: 0.5000001 }, { currency: "ETH", total: 2 }], 1e-6)).toEqual([
      { currency: "BTC", symbols: ["BTC/USDT", "BTC/EUR"], held: 0.5, onExchange: 0.5000001, difference: expect.closeTo(1e-7, 12), state: "match" },
      { currency: "ETH", symbols: ["ETH/USDT"], held: 2, onExchange: 2, difference: 0, state: "match" },
    ]);
  });

  it("calls a coin short when the exchange has less than the positions hold beyond the tolerance, and counts a missing balance as none", () => {
    const comparisons = compareHoldings(
      [
        { symbol: "BTC/USDT", quantity: 1 },
        { symbol: "SOL/USDT", quantity: 10 },
      ],
      [{ currency: "BTC", total: 0.999998 }],
      1e-6,
    );
    expect(comparisons.map((c) => [c.currency, c.state, c.onExchange])).toEqual([
      ["BTC", "short", 0.999998],
      ["SOL", "short", 0],
    ]);
  });

  it("calls a coin surplus when the exchange has more, and leaves coins without a position and the quote currency out", () => {
    const comparisons = compareHoldings([{ symbol: "ETH/USDT", quantity: 1 }], [{ currency: "eth", total: 1.5 }, { currency: "USDT", total: 900 }, { currency: "BNB", total: 0.1 }], 1e-6);
    expect(comparisons).toEqual([{ currency: "ETH", symbols: ["ETH/USDT"], held: 1, onExchange: 1.5, difference: 0.5, state: "surplus" }]);
  });

  it("adds up a currency the exchange lists twice (e.g. spot and funding accounts)", () => {
    expect(compareHoldings([{ symbol: "ADA/USDT", quantity: 100 }], [{ currency: "ADA", total: 60 }, { currency: "ADA", total: 40 }], 0)[0]?.state).toBe("match");
  });

  it("takes the base coin of spot and of settled-contract symbols", () => {
    expect(baseCurrency("BTC/USDT")).toBe("BTC");
    expect(baseCurrency("BTC/USDT:USDT")).toBe("BTC");
  });
});
