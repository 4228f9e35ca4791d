import {
  applyEntryProgress,
  applyExitProgress,
  carryOverPositions,
  countExitOrders,
  countUnsettledOrders,
  listOrders,
  listUnsettledOrders,
  markOrder,
  paperLedgerTotals,
  recordOrderIntent,
  type OrderIntent,
  type OrderProgress,
} from "./orders";
import { listOpenPositions, savePosition } from "./positions";
import { listTrades } from "./trades";
import { useTestDatabase, type SuiteDatabase } from "./test-database-hooks";
import { captureLogger, DATABASE_KINDS } from "./testing";

const T0 = new Date(Date.UTC(2026, 11, 1, 10, 0, 0));
const T1 = new Date(Date.UTC(2026, 11, 1, 11, 0, 0));
const LEVELS = { decision: "test" };

function intent(overrides: Partial<OrderIntent> = {}): OrderIntent {
  return {
    exchange: "sim",
    mode: "paper",
    symbol: "BTC/USDT",
    side: "buy",
    purpose: "entry",
    clientOrderId: "ck0123456789abcdef",
    positionKey: "ck0123456789abcdef",
    exitReason: null,
    requestedAmount: 0.5,
    requestedCost: null,
    referencePrice: 100,
    takeProfit: 120,
    stopLoss: 90,
    createdAt: T0,
    ...overrides,
  };
}

function progress(overrides: Partial<OrderProgress> = {}): OrderProgress {
  return {
    status: "filled",
    exchangeOrderId: "X1",
    filledAmount: 0.5,
    averagePrice: 100,
    filledCost: 50,
    feeQuote: 0.05,
    feeBase: 0,
    fees: [{ currency: "USDT", cost: 0.05, quoteValue: 0.05 }],
    error: null,
    time: T0,
    ...overrides,
  };
}

describe.each(DATABASE_KINDS)("the order ledger on the %s engine", (kind) => {
  const logger = captureLogger();
  let db: SuiteDatabase;
  useTestDatabase(kind, { logger, tables: "orders, positions, trades", opened: (opened) => (db = opened) });

  it("saves an intent once: the same client order id returns the stored order instead of a second one", async () => {
    const first = await recordOrderIntent(db, intent());
    expect(first.created).toBe(true);
    expect(first.order).toMatchObject({ status: "intent", filledAmount: 0, requestedAmount: 0.5, referencePrice: 100, exchangeOrderId: null });
    const again = await recordOrderIntent(db, intent({ requestedAmount: 9 }));
    expect(again).toEqual({ order: first.order, created: false });
    expect(await listOrders(db)).toHaveLength(1);
  });

  it("turns a filled entry into its position, net of a fee taken in the coin, and never applies a final report twice", async () => {
    const { order } = await recordOrderIntent(db, intent());
    const applied = await applyEntryProgress(db, order, progress({ feeBase: 0.001, feeQuote: 0.1, fees: [{ currency: "BTC", cost: 0.001, quoteValue: 0.1 }] }), LEVELS);
    expect(applied.order).toMatchObject({ status: "filled", filledAmount: 0.5, feeBase: 0.001, exchangeOrderId: "X1" });
    expect(applied.position).toMatchObject({ symbol: "BTC/USDT", quantity: 0.499, entryPrice: 100, entryFee: 0.1, entryOrderId: order.clientOrderId, takeProfit: 120, stopLoss: 90, openedAt: T0 });
    const replay = await applyEntryProgress(db, order, progress({ filledAmount: 5 }), LEVELS);
    expect(replay).toEqual({ order: undefined, position: undefined });
    expect((await listOpenPositions(db)).map((p) => p.quantity)).toEqual([0.499]);
    expect(await listUnsettledOrders(db, { exchange: "sim", mode: "paper" })).toEqual([]);
  });

  it("grows a partly filled entry's position as more of it fills", async () => {
    const { order } = await recordOrderIntent(db, intent());
    const part = await applyEntryProgress(db, order, progress({ status: "partially_filled", filledAmount: 0.2, filledCost: 20 }), LEVELS);
    expect(part.position?.quantity).toBe(0.2);
    expect((await listUnsettledOrders(db, { exchange: "sim", mode: "paper" })).map((o) => o.status)).toEqual(["partially_filled"]);
    const rest = await applyEntryProgress(db, order, progress({ status: "filled", filledAmount: 0.5, averagePrice: 101, filledCost: 50.5 }), LEVELS);
    expect(rest.position).toMatchObject({ quantity: 0.5, entryPrice: 101 });
  });

  it("opens no position for an entry that filled nothing", async () => {
    const { order } = await recordOrderIntent(db, intent());
    const applied = await applyEntryProgress(db, order, progress({ status: "expired", filledAmount: 0, averagePrice: null, filledCost: 0, feeQuote: 0, fees: [] }), LEVELS);
    expect(applied.order?.status).toBe("expired");
    expect(applied.position).toBeUndefined();
    expect(await listOpenPositions(db)).toEqual([]);
  });

  it("closes part of a position on a partly filled exit: a trade for what was sold with its share of the entry fee, the rest kept for the next exit", async () => {
    const { order: entry } = await recordOrderIntent(db, intent());
    await applyEntryProgress(db, entry, progress({ feeQuote: 0.2 }), LEVELS);
    const { order: exit } = await recordOrderIntent(db, intent({ side: "sell", purpose: "exit", clientOrderId: "ckexit0000000001", exitReason: "STOP_LOSS", createdAt: T1 }));
    const sold = await applyExitProgress(db, exit, progress({ status: "expired", exchangeOrderId: "X2", filledAmount: 0.125, averagePrice: 90, filledCost: 11.25, feeQuote: 0.01, time: T1 }), { dust: 0 });
    expect(sold.closed).toBe(false);
    expect(sold.trade).toMatchObject({ quantity: 0.125, entryPrice: 100, exitPrice: 90, fees: 0.06, realizedPnl: -1.31, exitReason: "STOP_LOSS", exitOrderId: "ckexit0000000001", entryOrderId: entry.clientOrderId });
    expect(sold.position).toMatchObject({ quantity: 0.375, entryFee: 0.15, metadata: { decision: "test", pendingExit: "STOP_LOSS" } });
    expect(await countExitOrders(db, { exchange: "sim", positionKey: entry.clientOrderId })).toBe(1);

    const { order: rest } = await recordOrderIntent(db, intent({ side: "sell", purpose: "exit", clientOrderId: "ckexit0000000002", exitReason: "STOP_LOSS", createdAt: T1 }));
    const closed = await applyExitProgress(db, rest, progress({ filledAmount: 0.375, averagePrice: 80, filledCost: 30, feeQuote: 0.03, time: T1 }), { dust: 0 });
    expect(closed.closed).toBe(true);
    expect(closed.trade).toMatchObject({ quantity: 0.375, fees: 0.18, realizedPnl: -7.68 });
    expect(await listOpenPositions(db)).toEqual([]);
    expect((await listTrades(db)).map((t) => t.quantity).sort()).toEqual([0.125, 0.375]);
    // Replaying the final report books nothing more.
    expect((await applyExitProgress(db, rest, progress({ filledAmount: 0.375, averagePrice: 80 }), { dust: 0 })).order).toBeUndefined();
    expect(await listTrades(db)).toHaveLength(2);
  });

  it("books no trade while an exit is still filling, and removes a remainder at or below dust", async () => {
    const { order: entry } = await recordOrderIntent(db, intent());
    await applyEntryProgress(db, entry, progress(), LEVELS);
    const { order: exit } = await recordOrderIntent(db, intent({ side: "sell", purpose: "exit", clientOrderId: "ckexit0000000001", exitReason: "SIGNAL" }));
    const filling = await applyExitProgress(db, exit, progress({ status: "partially_filled", filledAmount: 0.2 }), { dust: 0.001 });
    expect(filling.trade).toBeUndefined();
    expect((await listOpenPositions(db))[0]?.quantity).toBe(0.5);
    const done = await applyExitProgress(db, exit, progress({ filledAmount: 0.4995, averagePrice: 110, filledCost: 54.945 }), { dust: 0.001 });
    expect(done.closed).toBe(true);
    expect(done.trade?.quantity).toBe(0.4995);
  });

  it("marks an order sent, unknown or rejected without a fill, and a final one never changes", async () => {
    const { order } = await recordOrderIntent(db, intent());
    expect((await markOrder(db, order, { status: "unknown", error: "cannot ask" }))?.status).toBe("unknown");
    expect((await markOrder(db, order, { status: "rejected", error: "insufficient balance", exchangeOrderId: "R1" }))?.status).toBe("rejected");
    expect(await markOrder(db, order, { status: "sent", error: null })).toBeUndefined();
    expect(await applyEntryProgress(db, order, progress(), LEVELS)).toEqual({ order: undefined, position: undefined });
  });

  it("counts an exchange's unknown orders apart from the others not final yet, in either mode", async () => {
    expect(await countUnsettledOrders(db, { exchange: "sim" })).toEqual({ unknown: 0, unsettled: 0 });
    const { order: lost } = await recordOrderIntent(db, intent({ clientOrderId: "cklost" }));
    await markOrder(db, lost, { status: "unknown", error: "exchange down" });
    await recordOrderIntent(db, intent({ clientOrderId: "ckintent", mode: "live" }));
    const { order: sent } = await recordOrderIntent(db, intent({ clientOrderId: "cksent" }));
    await markOrder(db, sent, { status: "sent", error: null });
    const { order: done } = await recordOrderIntent(db, intent({ clientOrderId: "ckdone" }));
    await applyEntryProgress(db, done, progress(), LEVELS);
    await recordOrderIntent(db, intent({ exchange: "binance", clientOrderId: "ckother" }));
    expect(await countUnsettledOrders(db, { exchange: "sim" })).toEqual({ unknown: 1, unsettled: 2 });
  });

  it("adds a paper account's fills up exactly: cash change, holdings and fees", async () => {
    const { order: buy } = await recordOrderIntent(db, intent());
    await applyEntryProgress(db, buy, progress({ filledAmount: 0.3, filledCost: 30.03, averagePrice: 100.1, feeQuote: 0.03003 }), LEVELS);
    const { order: sell } = await recordOrderIntent(db, intent({ side: "sell", purpose: "exit", clientOrderId: "ckexit0000000001", exitReason: "TAKE_PROFIT" }));
    await applyExitProgress(db, sell, progress({ filledAmount: 0.1, filledCost: 11.1, averagePrice: 111, feeQuote: 0.0111 }), { dust: 0 });
    // Another exchange's and a live order are not this paper account's.
    const { order: other } = await recordOrderIntent(db, intent({ exchange: "binance" }));
    await applyEntryProgress(db, other, progress(), LEVELS);
    const totals = await paperLedgerTotals(db, { exchange: "sim" });
    // The exact decimal sum (binary floats would give -18.971130000000002).
    expect(totals.cashChange).toBe(-18.97113);
    expect(totals.fees).toBe(0.04113);
    expect([...totals.holdings]).toEqual([["BTC/USDT", 0.2]]);
  });
});

describe.each(DATABASE_KINDS)("positions from before the order ledger on the %s engine", (kind) => {
  const logger = captureLogger();
  let db: SuiteDatabase;
  useTestDatabase(kind, { logger, tables: "orders, positions, trades", opened: (opened) => (db = opened) });

  it("get a filled entry order each, once, so the ledger backs them and a later exit closes them", async () => {
    await savePosition(db, { exchange: "sim", symbol: "ETH/USDT", side: "LONG", quantity: 2, entryPrice: 150.5, takeProfit: 170, stopLoss: 140, entryOrderId: "paper-1a2b3c4d-7", openedAt: T0, entryFee: 0.301 });
    const { order: backed } = await recordOrderIntent(db, intent());
    await applyEntryProgress(db, backed, progress(), LEVELS);

    expect(await carryOverPositions(db, { exchange: "sim", mode: "paper" })).toEqual({ positions: 1, paid: 301.301 });
    expect(await carryOverPositions(db, { exchange: "sim", mode: "paper" })).toEqual({ positions: 0, paid: 0 });
    const carried = (await listOrders(db, { symbol: "ETH/USDT" }))[0];
    expect(carried).toMatchObject({ clientOrderId: "paper-1a2b3c4d-7", status: "filled", filledAmount: 2, averagePrice: 150.5, feeQuote: 0.301, takeProfit: 170, stopLoss: 140 });
    expect([...(await paperLedgerTotals(db, { exchange: "sim" })).holdings]).toEqual([["BTC/USDT", 0.5], ["ETH/USDT", 2]]);

    const { order: exit } = await recordOrderIntent(db, intent({ symbol: "ETH/USDT", side: "sell", purpose: "exit", clientOrderId: "ckexit0000000009", positionKey: "paper-1a2b3c4d-7", exitReason: "SIGNAL" }));
    const sold = await applyExitProgress(db, exit, progress({ filledAmount: 2, averagePrice: 160, filledCost: 320, feeQuote: 0.32 }), { dust: 0 });
    expect(sold).toMatchObject({ closed: true, trade: { quantity: 2, fees: 0.621, realizedPnl: 18.379 } });
  });
});
