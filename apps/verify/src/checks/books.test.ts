import { silentLogger } from "@candlekeep/core";
import {
  applyEntryProgress,
  applyExitProgress,
  markOrder,
  recordOrderIntent,
  saveAccountState,
  savePosition,
  type LedgerOrder,
  type OrderProgress,
  type TradingMode,
} from "@candlekeep/db";
import { DATABASE_KINDS, openTestDatabase } from "@candlekeep/db/testing";
import type { BalancesProvider, ExchangeBalance } from "../books/holdings";
import type { CheckContext, CheckOutcome } from "../check";
import { configFor, openPaperAccount } from "../test-helpers";
import { booksCheck } from "./books";

const NOW = Date.now();
const HOUR = 3_600_000;
const T_ENTRY = new Date(NOW - 3 * HOUR);
const T_EXIT = new Date(NOW - 2 * HOUR);

describe.each(DATABASE_KINDS)("the books check on the %s engine", (kind) => {
  let db: Awaited<ReturnType<typeof openTestDatabase>>;
  beforeAll(async () => {
    db = await openTestDatabase(kind);
  });
  afterAll(async () => {
    await db.close();
  });
  beforeEach(async () => {
    await db.sql.exec("TRUNCATE orders, positions, trades, system_events, account_state RESTART IDENTITY");
  });

  function run(env: Record<string, string> = {}, options: { balances?: ExchangeBalance[] | BalancesProvider; argv?: string[] } = {}): Promise<CheckOutcome> {
    const balances = options.balances;
    const ctx: CheckContext = {
      db,
      readDb: db,
      config: configFor(db.testDb, { EXCHANGE: "sim", ...env }, options.argv),
      nowMs: NOW,
      logger: silentLogger,
      trackedCoins: async () => ({ symbols: [], source: "test" }),
      exchangeBalances: balances === undefined || typeof balances === "function" ? balances : async () => balances,
    };
    return booksCheck(ctx);
  }

  const progress = (filledAmount: number, price: number, fee: number, time: Date, overrides: Partial<OrderProgress> = {}): OrderProgress => ({
    status: "filled",
    exchangeOrderId: null,
    filledAmount,
    averagePrice: price,
    filledCost: filledAmount * price,
    feeQuote: fee,
    feeBase: 0,
    fees: [{ currency: "USDT", cost: fee, quoteValue: fee }],
    error: null,
    time,
    ...overrides,
  });

  async function intent(symbol: string, clientOrderId: string, options: { exitOf?: string; mode?: TradingMode; createdAt?: Date } = {}): Promise<LedgerOrder> {
    const exit = options.exitOf !== undefined;
    const { order } = await recordOrderIntent(db, {
      exchange: "sim",
      mode: options.mode ?? "paper",
      symbol,
      side: exit ? "sell" : "buy",
      purpose: exit ? "exit" : "entry",
      clientOrderId,
      positionKey: options.exitOf ?? clientOrderId,
      exitReason: exit ? "TAKE_PROFIT" : null,
      requestedAmount: 1,
      requestedCost: null,
      referencePrice: 100,
      takeProfit: null,
      stopLoss: null,
      createdAt: options.createdAt ?? (exit ? T_EXIT : T_ENTRY),
    });
    return order;
  }

  async function buy(symbol: string, clientOrderId: string, amount: number, price: number, fee: number, overrides: Partial<OrderProgress> = {}, mode: TradingMode = "paper") {
    await applyEntryProgress(db, await intent(symbol, clientOrderId, { mode }), progress(amount, price, fee, T_ENTRY, overrides), {});
  }

  async function sell(symbol: string, positionKey: string, clientOrderId: string, amount: number, price: number, fee: number) {
    await applyExitProgress(db, await intent(symbol, clientOrderId, { exitOf: positionKey }), progress(amount, price, fee, T_EXIT), { dust: 0 });
  }

  /** A paper account of 10,000 USDT: BTC bought and held, ETH bought and half sold. Cash as the bot's doubles add it up. */
  async function tradedPaperAccount(): Promise<number> {
    await openPaperAccount(db, "sim", new Date(NOW - 4 * HOUR));
    await buy("BTC/USDT", "ckbtc1", 0.5, 100.1, 0.05005);
    await buy("ETH/USDT", "cketh1", 2, 50.3, 0.1006);
    await sell("ETH/USDT", "cketh1", "cketh1x1", 1, 55.7, 0.0557);
    return 10_000 - (0.5 * 100.1 + 0.05005) - (2 * 50.3 + 0.1006) + (1 * 55.7 - 0.0557);
  }

  const snapshot = (total: number, time: Date) => saveAccountState(db, [{ time, exchange: "sim", currency: "USDT", free: total, used: 0, total, equity: total }]);

  it("passes a paper account whose cash, positions and orders add up, the cash within 1e-8 of the starting balance of the bot's doubles", async () => {
    const cash = await tradedPaperAccount();
    await snapshot(cash, new Date(NOW - HOUR));
    const outcome = await run();
    expect(outcome.status).toBe("pass");
    expect(outcome.summary).toBe("sim paper: cash 9904.84365 USDT matches the ledger (10000 start −95.15635 from fills); 2 open positions backed by their orders; every order settled");
    expect(outcome.data).toMatchObject({ exchange: "sim", mode: "paper", cash: { startingBalance: 10_000, ledgerCashChange: -95.15635, compared: true }, backing: { positions: [{ symbol: "BTC/USDT", matches: true }, { symbol: "ETH/USDT", quantity: "1", matches: true }] } });
    // The tolerance is 1e-8 × 10,000 = 0.0001 either way.
    await snapshot(cash - 0.00009, new Date(NOW - HOUR + 1000));
    // 9904.843560000001 as a double: written as people read it.
    expect(await run()).toMatchObject({ status: "pass", summary: expect.stringMatching(/^sim paper: cash 9904\.84356 USDT matches/) });
    await snapshot(cash - 0.00011, new Date(NOW - HOUR + 2000));
    expect((await run()).status).toBe("fail");
  });

  it("fails when the snapshot's cash is not the starting balance plus the ledger's fills, with both numbers and where to look", async () => {
    const cash = await tradedPaperAccount();
    await snapshot(cash + 0.5, new Date(NOW - HOUR));
    const outcome = await run();
    expect(outcome.status).toBe("fail");
    expect(outcome.summary).toBe(
      `sim paper: cash: the USDT snapshot of ${new Date(NOW - HOUR).toISOString()} says 9905.34365, the ledger 10000 start −95.15635 from fills = 9904.84365 USDT; off by +0.5 (tolerance 0.0001)`,
    );
    expect(outcome.details).toContainEqual(expect.stringMatching(/^look into the fills: SELECT .* FROM orders WHERE exchange = 'sim' AND mode = 'paper' AND filled_amount > 0 ORDER BY created_at$/));
  });

  it("passes with a note, not comparing, when the latest snapshot predates the newest fill", async () => {
    await tradedPaperAccount();
    await snapshot(10_000, new Date(NOW - 2.5 * HOUR));
    const outcome = await run();
    expect(outcome.status).toBe("pass");
    expect(outcome.summary).toMatch(/^sim paper: cash not compared \(the latest snapshot predates the newest fill\); 2 open positions/);
    expect(outcome.details).toContain(
      `the latest USDT snapshot (${new Date(NOW - 2.5 * HOUR).toISOString()}) predates the newest filled order (ETH/USDT cketh1x1 at ${T_EXIT.toISOString()}): cash not compared; the bot's next snapshot will be`,
    );
  });

  it("warns that the cash cannot be added up without the paper account's record", async () => {
    await buy("BTC/USDT", "ckbtc1", 0.5, 100, 0.05);
    const outcome = await run();
    expect(outcome.status).toBe("warn");
    expect(outcome.summary).toMatch(/^sim paper: no PAPER_ACCOUNT event with event_key paper-account:sim: the paper account's starting balance is unknown/);
  });

  it("fails naming the coin, stored and expected quantity when a position is not what its orders add up to, or has no entry order", async () => {
    const cash = await tradedPaperAccount();
    await snapshot(cash, new Date(NOW - HOUR));
    await db.sql.query(`UPDATE positions SET quantity = 1.25 WHERE symbol = 'ETH/USDT'`);
    await savePosition(db, { exchange: "sim", symbol: "SOL/USDT", side: "LONG", quantity: 3, entryPrice: 20, takeProfit: null, stopLoss: null, entryOrderId: "legacy-1", openedAt: T_ENTRY });
    await savePosition(db, { exchange: "sim", symbol: "XRP/USDT", side: "LONG", quantity: 1, entryPrice: 20, takeProfit: null, stopLoss: null, entryOrderId: "cketh1x1", openedAt: T_ENTRY });
    const outcome = await run();
    expect(outcome.status).toBe("fail");
    expect(outcome.summary).toBe("sim paper: ETH/USDT: the position holds 1.25, its orders add up to 1 (entry cketh1 filled 2 − 1 sold by 1 exit); off by +0.25 (and 2 more below)");
    expect(outcome.details).toContain("SOL/USDT: holds 3, but its entry order legacy-1 is not in the ledger (a position from before the order ledger, or written without its order)");
    expect(outcome.details).toContain("XRP/USDT: its entry_order_id cketh1x1 is the exit order of ETH/USDT, not an entry of XRP/USDT");
    expect(outcome.details).toContainEqual(expect.stringContaining("look into the orders of ETH/USDT, SOL/USDT, XRP/USDT: SELECT"));
  });

  it("fails on an unknown order and warns about one left unsettled for longer than --unsettled-minutes", async () => {
    const cash = await tradedPaperAccount();
    await snapshot(cash, new Date(NOW - HOUR));
    await markOrder(db, await intent("SOL/USDT", "cksol1"), { status: "unknown", error: "exchange timeout" });
    await intent("ADA/USDT", "ckada1");
    await db.sql.query(`UPDATE orders SET updated_at = $1 WHERE client_order_id = 'ckada1'`, [new Date(NOW - 20 * 60_000)]);
    // Just written: not reported.
    await intent("XRP/USDT", "ckxrp1");

    const outcome = await run();
    expect(outcome.status).toBe("fail");
    expect(outcome.summary).toMatch(/^sim paper: 1 unknown order \(the exchange could not be asked about it; the coin trades nothing new until settled\): SOL\/USDT buy entry cksol1 \(unknown since \S+, last error: exchange timeout\) \(and 1 more below\)$/);
    expect(outcome.details).toContain(`1 order not final and unchanged for more than 10 min: ADA/USDT buy entry ckada1 (intent since ${new Date(NOW - 20 * 60_000).toISOString()})`);
    const later = await run({}, { argv: ["--unsettled-minutes", "30"] });
    expect(later.details?.some((line) => line.includes("ckada1"))).toBe(false);
  });

  it("counts a stop-loss resting on the exchange as a standing order, not an unsettled one, however old", async () => {
    const cash = await tradedPaperAccount();
    await snapshot(cash, new Date(NOW - HOUR));
    const { order: stop } = await recordOrderIntent(db, {
      exchange: "sim",
      mode: "paper",
      symbol: "BTC/USDT",
      side: "sell",
      purpose: "exit",
      type: "stop_loss",
      clientOrderId: "ckbtc1stop",
      positionKey: "ckbtc1",
      exitReason: "STOP_LOSS",
      requestedAmount: 0.5,
      requestedCost: null,
      referencePrice: 90,
      takeProfit: null,
      stopLoss: 90,
      createdAt: T_ENTRY,
    });
    await applyExitProgress(db, stop, { ...progress(0, 90, 0, T_ENTRY), status: "open", averagePrice: null, filledCost: 0, fees: [] }, { dust: 0 });
    await db.sql.query(`UPDATE orders SET updated_at = $1 WHERE client_order_id = 'ckbtc1stop'`, [new Date(NOW - 3 * HOUR)]);
    const outcome = await run();
    expect(outcome.status).toBe("pass");
    expect(outcome.details?.join("\n")).toContain("1 stop-loss order resting on the exchange");
  });

  it("live: compares the open positions with the exchange's balances when given them, failing a short coin", async () => {
    await buy("BTC/USDT", "ckbtc1", 0.5, 100, 0.05, { feeBase: 0.0005 }, "live");
    await buy("ETH/USDT", "cketh1", 2, 50, 0.1, {}, "live");
    const live = { TRADING_MODE: "live", EXCHANGE: "sim" };

    const notCompared = await run(live);
    expect(notCompared.status).toBe("pass");
    expect(notCompared.summary).toBe("sim live: exchange balances not compared; 2 open positions backed by their orders; every order settled");

    const matching = await run(live, { balances: [{ currency: "BTC", total: 0.4995 }, { currency: "ETH", total: 2 }, { currency: "USDT", total: 123 }] });
    expect(matching).toMatchObject({ status: "pass", summary: "sim live: 2/2 coins held match the exchange's balances; 2 open positions backed by their orders; every order settled" });

    const short = await run(live, { balances: [{ currency: "BTC", total: 0.2 }, { currency: "ETH", total: 2.5 }] });
    expect(short.status).toBe("fail");
    expect(short.summary).toBe("sim live: BTC: open positions hold 0.4995 (BTC/USDT), the exchange has 0.2: 0.2995 short (and 1 more below)");
    expect(short.details).toContain("ETH: open positions hold 2 (ETH/USDT), the exchange has 2.5: 0.5 more than the positions (bought by hand, or dust of closed positions)");
    expect(short.details).toContainEqual(expect.stringMatching(/^look into sim's trade history of BTC against the orders table: /));
  });

  it("live on a real exchange without keys: warns that comparing the balances needs EXCHANGE_API_KEY and EXCHANGE_API_SECRET", async () => {
    const outcome = await run({ TRADING_MODE: "live", EXCHANGE: "binance", EXCHANGE_API_KEY: "vfy-key-only-6c1d" });
    expect(outcome.status).toBe("warn");
    expect(outcome.summary).toBe("binance live: exchange balances not compared: verify needs EXCHANGE_API_KEY and EXCHANGE_API_SECRET (the bot's keys, or a read-only pair) to compare the open positions with binance's balances");
    expect(JSON.stringify(outcome)).not.toContain("vfy-key-only-6c1d");
  });

  it("live: an account that cannot be read fails that part in one line, and the ledger's parts are still checked", async () => {
    await buy("BTC/USDT", "ckbtc1", 0.5, 100, 0.05, {}, "live");
    const unreadable: BalancesProvider = () => Promise.reject(new Error("binance fetchBalance failed: NetworkError: binance GET https://api.binance.com/api/v3/account fetch failed"));
    const outcome = await run({ TRADING_MODE: "live", EXCHANGE: "sim" }, { balances: unreadable });
    expect(outcome.status).toBe("fail");
    expect(outcome.summary).toBe("sim live: exchange balances not compared: binance fetchBalance failed: NetworkError: binance GET https://api.binance.com/api/v3/account fetch failed");
    expect(outcome.details).toEqual([outcome.summary.replace(/^sim live: /, "")]);
    expect(outcome.data).toMatchObject({ holdings: { compared: false }, backing: { positions: [expect.objectContaining({ symbol: "BTC/USDT" })] } });
  });
});
