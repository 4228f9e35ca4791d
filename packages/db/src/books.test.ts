import { newestFilledOrder, positionBacking } from "./books";
import { paperAccountEventKey, paperAccountStart, PAPER_ACCOUNT_EVENT } from "./paper-account";
import { recordEvent } from "./events";
import { applyEntryProgress, applyExitProgress, recordOrderIntent, type OrderIntent, type OrderProgress } from "./orders";
import { savePosition } from "./positions";
import { useTestDatabase, type SuiteDatabase } from "./test-database-hooks";
import { captureLogger, DATABASE_KINDS, entryIntent } from "./testing";

const T0 = new Date(Date.UTC(2026, 11, 1, 10, 0, 0));
const T1 = new Date(Date.UTC(2026, 11, 1, 11, 0, 0));
const LEVELS = {};

const entry = (symbol: string, clientOrderId: string, overrides: Partial<OrderIntent> = {}): OrderIntent => entryIntent(symbol, clientOrderId, { createdAt: T0, ...overrides });

const exit = (symbol: string, positionKey: string, clientOrderId: string): OrderIntent => ({
  ...entry(symbol, clientOrderId),
  side: "sell",
  purpose: "exit",
  positionKey,
  exitReason: "SIGNAL",
  createdAt: T1,
});

const fill = (overrides: Partial<OrderProgress> = {}): OrderProgress => ({
  status: "filled",
  exchangeOrderId: null,
  filledAmount: 1,
  averagePrice: 100,
  filledCost: 100,
  feeQuote: 0.1,
  feeBase: 0,
  fees: [],
  error: null,
  time: T0,
  ...overrides,
});

describe.each(DATABASE_KINDS)("the books' reads on the %s engine", (kind) => {
  const logger = captureLogger();
  let db: SuiteDatabase;
  useTestDatabase(kind, { logger, tables: "orders, positions, trades, system_events", opened: (opened) => (db = opened) });

  it("backs a position by its entry less the coin fee and its final exits, exactly, and leaves an exit still filling out", async () => {
    const { order: buy } = await recordOrderIntent(db, entry("BTC/USDT", "ckbtc1"));
    await applyEntryProgress(db, buy, fill({ filledAmount: 0.3, feeBase: 0.0003, filledCost: 30 }), LEVELS);
    const { order: sold } = await recordOrderIntent(db, exit("BTC/USDT", "ckbtc1", "ckbtc1x1"));
    await applyExitProgress(db, sold, fill({ filledAmount: 0.1, filledCost: 10, time: T1 }), { dust: 0 });
    const { order: selling } = await recordOrderIntent(db, exit("BTC/USDT", "ckbtc1", "ckbtc1x2"));
    await applyExitProgress(db, selling, fill({ status: "partially_filled", filledAmount: 0.05, filledCost: 5, time: T1 }), { dust: 0 });

    expect(await positionBacking(db, "sim")).toEqual([
      {
        symbol: "BTC/USDT",
        entryOrderId: "ckbtc1",
        quantity: "0.1997",
        entry: { symbol: "BTC/USDT", purpose: "entry", status: "filled", mode: "paper", filledAmount: "0.3", feeBase: "0.0003" },
        exitedAmount: "0.1",
        exitOrders: 1,
        pendingExitAmount: "0.05",
        expectedQuantity: "0.1997",
        difference: "0",
        matches: true,
      },
    ]);
  });

  it("finds a quantity off by the 18th decimal, and a position whose entry order is not in the ledger", async () => {
    const { order: buy } = await recordOrderIntent(db, entry("ETH/USDT", "cketh1"));
    await applyEntryProgress(db, buy, fill({ filledAmount: 2 }), LEVELS);
    await db.sql.query(`UPDATE positions SET quantity = quantity + 0.000000000000000001 WHERE symbol = 'ETH/USDT'`);
    await savePosition(db, { exchange: "sim", symbol: "SOL/USDT", side: "LONG", quantity: 5, entryPrice: 20, takeProfit: null, stopLoss: null, entryOrderId: "before-the-ledger", openedAt: T0 });
    // Another exchange's position is not this one's.
    await savePosition(db, { exchange: "binance", symbol: "ETH/USDT", side: "LONG", quantity: 1, entryPrice: 20, takeProfit: null, stopLoss: null, entryOrderId: "x", openedAt: T0 });

    const [eth, sol, ...rest] = await positionBacking(db, "sim");
    expect(rest).toEqual([]);
    expect(eth).toMatchObject({ symbol: "ETH/USDT", quantity: "2.000000000000000001", expectedQuantity: "2", difference: "0.000000000000000001", matches: false });
    expect(sol).toMatchObject({ symbol: "SOL/USDT", entryOrderId: "before-the-ledger", quantity: "5", entry: undefined, expectedQuantity: undefined, difference: undefined, matches: false });
  });

  it("reads where a paper account started from its PAPER_ACCOUNT event, and names a malformed one", async () => {
    expect(await paperAccountStart(db, "sim")).toBeUndefined();
    await recordEvent(db, { type: PAPER_ACCOUNT_EVENT, time: T0, eventKey: paperAccountEventKey("sim"), payload: { currency: "USDT", startingBalance: 10_000 } });
    await recordEvent(db, { type: PAPER_ACCOUNT_EVENT, time: T0, eventKey: paperAccountEventKey("kraken"), payload: { currency: "USDT" } });
    expect(await paperAccountStart(db, "sim")).toEqual({ currency: "USDT", startingBalance: 10_000, recordedAt: T0 });
    await expect(paperAccountStart(db, "kraken")).rejects.toThrow('the PAPER_ACCOUNT event "paper-account:kraken" needs a payload like {"currency":"USDT","startingBalance":10000}, got {"currency":"USDT"}');
  });

  it("finds the newest order that filled anything, by its creation time, of the exchange and mode asked", async () => {
    expect(await newestFilledOrder(db, { exchange: "sim", mode: "paper" })).toBeUndefined();
    const { order: buy } = await recordOrderIntent(db, entry("BTC/USDT", "ckbtc1"));
    await applyEntryProgress(db, buy, fill(), LEVELS);
    // Newer, but nothing filled; and a live order.
    await recordOrderIntent(db, entry("ETH/USDT", "cketh1", { createdAt: T1 }));
    const { order: live } = await recordOrderIntent(db, entry("SOL/USDT", "cksol1", { mode: "live", createdAt: T1 }));
    await applyEntryProgress(db, live, fill(), LEVELS);
    expect(await newestFilledOrder(db, { exchange: "sim", mode: "paper" })).toEqual({ clientOrderId: "ckbtc1", symbol: "BTC/USDT", createdAt: T0 });
  });
});
