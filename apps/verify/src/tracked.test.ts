import { SIM_DEFAULT_SYMBOLS } from "@candlekeep/core";
import { saveCandles } from "@candlekeep/db";
import { DATABASE_KINDS, openTestDatabase } from "@candlekeep/db/testing";
import { configFor, freshCandles } from "./test-helpers";
import { resolveTrackedCoins } from "./tracked";

const NOW = Date.UTC(2026, 10, 25, 12, 7);

describe.each(DATABASE_KINDS)("the tracked coins on the %s engine", (kind) => {
  let db: Awaited<ReturnType<typeof openTestDatabase>>;
  beforeAll(async () => {
    db = await openTestDatabase(kind);
    await saveCandles(
      db,
      [
        ...freshCandles({ exchange: "binance", symbols: ["BTC/USDT", "ETH/USDT"], timeframes: ["15m", "1h"], nowMs: NOW, count: 2 }),
        ...freshCandles({ exchange: "binance", symbols: ["DROPPED/USDT"], timeframes: ["15m"], nowMs: NOW, count: 2, candlesAgo: 500 }),
        ...freshCandles({ exchange: "kraken", symbols: ["XRP/USDT"], timeframes: ["15m"], nowMs: NOW, count: 2 }),
      ],
      NOW,
    );
  });
  afterAll(async () => {
    await db.close();
  });

  it("uses --symbols, then a SYMBOLS list, as given", async () => {
    expect(await resolveTrackedCoins(db, configFor(db.testDb, { SYMBOLS: "ADA/USDT" }, ["--symbols", "SOL/USDT"]))).toEqual({ symbols: ["SOL/USDT"], source: "--symbols" });
    expect(await resolveTrackedCoins(db, configFor(db.testDb, { EXCHANGE: "binance", SYMBOLS: "ADA/USDT,DOT/USDT" }))).toEqual({ symbols: ["ADA/USDT", "DOT/USDT"], source: "SYMBOLS" });
  });

  it("uses the simulated exchange's default coins when SYMBOLS is unset", async () => {
    expect((await resolveTrackedCoins(db, configFor(db.testDb, { EXCHANGE: "sim" }))).symbols).toEqual(SIM_DEFAULT_SYMBOLS);
  });

  it("for top:N takes the N coins of that exchange whose candles were written most recently", async () => {
    const top2 = await resolveTrackedCoins(db, configFor(db.testDb, { EXCHANGE: "binance", SYMBOLS: "top:2" }));
    expect(top2).toEqual({ symbols: ["BTC/USDT", "ETH/USDT"], source: "top:2 on binance: the 2 coins with the newest stored candles (3 coins have candles)" });
    // Unset SYMBOLS on a real exchange is the bot's top 20.
    expect((await resolveTrackedCoins(db, configFor(db.testDb, { EXCHANGE: "binance" }))).symbols).toEqual(["BTC/USDT", "ETH/USDT", "DROPPED/USDT"]);
    expect(await resolveTrackedCoins(db, configFor(db.testDb, { EXCHANGE: "okx" }))).toEqual({
      symbols: [],
      source: "SYMBOLS is top:20 (picked by the bot from live volumes) and no candles are stored for okx",
    });
  });
});
