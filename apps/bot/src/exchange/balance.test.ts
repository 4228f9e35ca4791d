import { balanceOf } from "./balance";
import { PaperBroker } from "./paper";
import { SimExchange } from "./sim";

const NOW = Date.UTC(2026, 3, 1, 12);

describe("balanceOf", () => {
  it("is the account's balance of the currency, or all zero for a currency it does not hold", async () => {
    const sim = new SimExchange({ seed: 3, startTime: NOW, wallClock: () => NOW });
    const paper = new PaperBroker({ market: sim, quoteCurrency: "USDT", startingBalance: 1000 });
    const { last } = await sim.fetchTicker("ETH/USDT");
    await paper.placeOrder({ symbol: "ETH/USDT", side: "buy", amount: 0.1, clientOrderId: "entry", price: last });
    expect(await balanceOf(paper, "ETH")).toEqual({ currency: "ETH", free: 0.1, used: 0, total: 0.1 });
    expect(await balanceOf(paper, "BTC")).toEqual({ currency: "BTC", free: 0, used: 0, total: 0 });
  });
});
