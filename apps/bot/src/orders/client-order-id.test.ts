import { clientOrderId, entryOrderId, exitOrderId } from "./client-order-id";

describe("client order ids", () => {
  it("are 18 alphanumerics, within okx's, gate's and kraken's limits", () => {
    for (const id of [entryOrderId("okx", "BTC/USDT", 1733309100000), exitOrderId("gate", "ck0123", 3), clientOrderId(["kraken", "ETH/EUR:EUR"])]) {
      expect(id).toMatch(/^ck[0-9a-f]{16}$/);
    }
  });

  it("name the same order for the same decision, and different orders for anything else", () => {
    const id = entryOrderId("binance", "BTC/USDT", 1733309100000);
    expect(entryOrderId("binance", "BTC/USDT", 1733309100000)).toBe(id);
    const others = [entryOrderId("bybit", "BTC/USDT", 1733309100000), entryOrderId("binance", "ETH/USDT", 1733309100000), entryOrderId("binance", "BTC/USDT", 1733310000000)];
    expect(new Set([id, ...others]).size).toBe(4);
    expect(exitOrderId("binance", id, 0)).not.toBe(exitOrderId("binance", id, 1));
  });
});
