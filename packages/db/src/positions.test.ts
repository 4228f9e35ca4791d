import { closePositionWithTrade, deletePosition, listOpenPositions, savePosition, type PositionInput } from "./positions";
import { latestTradeEntries, listTrades } from "./trades";
import { useTestDatabase, type SuiteDatabase } from "./test-database-hooks";
import { captureLogger, DATABASE_KINDS } from "./testing";
import type { Database } from "./connect";

const OPENED = new Date(Date.UTC(2026, 2, 1, 10, 0, 0, 123));
const CLOSED = new Date(Date.UTC(2026, 2, 2, 16, 30, 0, 456));

function position(overrides: Partial<PositionInput> = {}): PositionInput {
  return {
    exchange: "binance",
    symbol: "BTC/USDT",
    side: "LONG",
    quantity: 0.5,
    entryPrice: 100,
    takeProfit: 120,
    stopLoss: 95,
    entryOrderId: "entry-1",
    openedAt: OPENED,
    ...overrides,
  };
}

async function count(db: Pick<Database, "sql">, table: "positions" | "trades"): Promise<number> {
  const result = await db.sql.query<{ n: string | number }>(`SELECT count(*) AS n FROM ${table}`);
  return Number(result.rows[0]?.n);
}

/** The stored numeric values as PostgreSQL prints them: no JS number conversion on the way. */
async function storedPositionText(db: Pick<Database, "sql">, symbol: string) {
  const result = await db.sql.query<{ quantity: string; entry_price: string; take_profit: string | null; stop_loss: string | null }>(
    `SELECT quantity::text AS quantity, entry_price::text AS entry_price, take_profit::text AS take_profit, stop_loss::text AS stop_loss FROM positions WHERE symbol = $1`,
    [symbol],
  );
  return result.rows;
}

describe.each(DATABASE_KINDS)("positions and trades on the %s engine", (kind) => {
  const logger = captureLogger();
  let db: SuiteDatabase;
  useTestDatabase(kind, { logger, tables: "positions, trades", opened: (opened) => (db = opened) });

  it("creates a position, then updates the same exchange+symbol row instead of adding another", async () => {
    const created = await savePosition(db, position());
    expect(created).toMatchObject({ exchange: "binance", symbol: "BTC/USDT", side: "LONG", quantity: 0.5, entryPrice: 100, takeProfit: 120, stopLoss: 95, openedAt: OPENED, metadata: {} });
    const updated = await savePosition(db, position({ quantity: 0.75, stopLoss: 101.5, takeProfit: null, metadata: { trailingHigh: 130.25, reason: "trail" } }));
    expect(updated.id).toBe(created.id);
    expect(updated).toMatchObject({ quantity: 0.75, stopLoss: 101.5, takeProfit: null, metadata: { trailingHigh: 130.25, reason: "trail" } });
    expect(await count(db, "positions")).toBe(1);
    expect(await listOpenPositions(db)).toEqual([updated]);
  });

  it("stores quantities and prices as exact decimals, not as binary floats", async () => {
    await savePosition(db, position({ symbol: "PEPE/USDT", quantity: 0.000012345678901234, entryPrice: 0.1, takeProfit: 1e-7, stopLoss: 67012.12345678 }));
    expect(await storedPositionText(db, "PEPE/USDT")).toEqual([
      { quantity: "0.000012345678901234", entry_price: "0.100000000000000000", take_profit: "0.000000100000000000", stop_loss: "67012.123456780000000000" },
    ]);
    const [read] = await listOpenPositions(db);
    expect(read).toMatchObject({ quantity: 0.000012345678901234, entryPrice: 0.1, takeProfit: 1e-7, stopLoss: 67012.12345678 });
  });

  it("refuses an amount that is not a finite number (numeric would store NaN), keeping the saved position", async () => {
    const saved = await savePosition(db, position());
    for (const [field, value] of [["quantity", Number.NaN], ["entryPrice", Number.POSITIVE_INFINITY], ["takeProfit", Number.NaN], ["stopLoss", Number.NEGATIVE_INFINITY]] as const) {
      await expect(savePosition(db, position({ [field]: value }))).rejects.toThrow(`saving the position of BTC/USDT: ${field} must be a finite number, got ${value}`);
    }
    expect(await listOpenPositions(db)).toEqual([saved]);
    expect(logger.lines.filter((line) => line.message === "savePosition failed")).toHaveLength(4);
  });

  it("lists open positions ordered by exchange and symbol, optionally of one exchange", async () => {
    await savePosition(db, position({ symbol: "SOL/USDT" }));
    await savePosition(db, position({ exchange: "kraken", symbol: "ADA/USDT" }));
    await savePosition(db, position({ symbol: "ETH/USDT", side: "SHORT" }));
    expect((await listOpenPositions(db)).map((p) => `${p.exchange} ${p.symbol} ${p.side}`)).toEqual(["binance ETH/USDT SHORT", "binance SOL/USDT LONG", "kraken ADA/USDT LONG"]);
    expect((await listOpenPositions(db, { exchange: "kraken" })).map((p) => p.symbol)).toEqual(["ADA/USDT"]);
  });

  it("deletes a position and says whether there was one", async () => {
    await savePosition(db, position());
    await savePosition(db, position({ symbol: "ETH/USDT" }));
    expect(await deletePosition(db, { exchange: "binance", symbol: "BTC/USDT" })).toBe(true);
    expect(await deletePosition(db, { exchange: "binance", symbol: "BTC/USDT" })).toBe(false);
    expect((await listOpenPositions(db)).map((p) => p.symbol)).toEqual(["ETH/USDT"]);
  });

  it("closes a LONG position into a trade with exact realised PnL after fees, and deletes the position", async () => {
    await savePosition(db, position({ quantity: 3, entryPrice: 0.1 }));
    const trade = await closePositionWithTrade(db, { exchange: "binance", symbol: "BTC/USDT", exitPrice: 0.3, exitTime: CLOSED, exitReason: "TAKE_PROFIT", exitOrderId: "exit-1", fees: 0.02 });
    // 3 × (0.3 − 0.1) − 0.02; in binary floating point this would be 0.5800000000000001.
    expect(trade).toMatchObject({
      exchange: "binance",
      symbol: "BTC/USDT",
      side: "LONG",
      quantity: 3,
      entryPrice: 0.1,
      exitPrice: 0.3,
      entryTime: OPENED,
      exitTime: CLOSED,
      fees: 0.02,
      realizedPnl: 0.58,
      exitReason: "TAKE_PROFIT",
      entryOrderId: "entry-1",
      exitOrderId: "exit-1",
    });
    const stored = await db.sql.query<{ realized_pnl: string }>("SELECT realized_pnl::text AS realized_pnl FROM trades");
    expect(stored.rows).toEqual([{ realized_pnl: "0.580000000000000000" }]);
    expect(await count(db, "positions")).toBe(0);
    expect(await listTrades(db)).toEqual([trade]);
  });

  it("closes a SHORT position with the PnL sign reversed, for a win and a loss", async () => {
    await savePosition(db, position({ symbol: "WIN/USDT", side: "SHORT", quantity: 2, entryPrice: 100 }));
    await savePosition(db, position({ symbol: "LOSS/USDT", side: "SHORT", quantity: 2, entryPrice: 100, entryOrderId: "entry-2" }));
    const win = await closePositionWithTrade(db, { exchange: "binance", symbol: "WIN/USDT", exitPrice: 90, exitTime: CLOSED, exitReason: "TAKE_PROFIT", exitOrderId: "exit-w", fees: 1.25 });
    const loss = await closePositionWithTrade(db, { exchange: "binance", symbol: "LOSS/USDT", exitPrice: 105, exitTime: CLOSED, exitReason: "STOP_LOSS", exitOrderId: "exit-l", fees: 1.25 });
    expect(win).toMatchObject({ side: "SHORT", realizedPnl: 18.75 });
    expect(loss).toMatchObject({ side: "SHORT", realizedPnl: -11.25, exitReason: "STOP_LOSS" });
    expect(await count(db, "positions")).toBe(0);
  });

  it("returns the same trade and writes no second one when a close is retried with the same exit order id", async () => {
    await savePosition(db, position());
    const close = { exchange: "binance", symbol: "BTC/USDT", exitPrice: 110, exitTime: CLOSED, exitReason: "SIGNAL" as const, exitOrderId: "exit-1", fees: 0.3 };
    const first = await closePositionWithTrade(db, close);
    expect(first.realizedPnl).toBe(4.7);
    // Meanwhile a new position was opened on the same symbol: the retry must not touch it.
    await savePosition(db, position({ entryOrderId: "entry-2", entryPrice: 111 }));
    const again = await closePositionWithTrade(db, close);
    expect(again).toEqual(first);
    expect(await count(db, "trades")).toBe(1);
    expect((await listOpenPositions(db)).map((p) => p.entryOrderId)).toEqual(["entry-2"]);
  });

  it("refuses to close a position that is not open, logging the error and raising it", async () => {
    await expect(
      closePositionWithTrade(db, { exchange: "binance", symbol: "NONE/USDT", exitPrice: 1, exitTime: CLOSED, exitReason: "MANUAL", exitOrderId: "exit-x", fees: 0 }),
    ).rejects.toThrow(/no open position for NONE\/USDT on binance/);
    expect(await count(db, "trades")).toBe(0);
    expect(logger.lines.filter((l) => l.level === "error")).toEqual([
      { level: "error", message: "closePositionWithTrade failed", meta: expect.objectContaining({ symbol: "NONE/USDT", exitOrderId: "exit-x" }) },
    ]);
  });

  it("refuses an exit price or fee that is not a finite number, keeping the position", async () => {
    await savePosition(db, position());
    const close = { exchange: "binance", symbol: "BTC/USDT", exitPrice: 110, exitTime: CLOSED, exitReason: "SIGNAL" as const, exitOrderId: "exit-1", fees: 0 };
    await expect(closePositionWithTrade(db, { ...close, exitPrice: Number.NaN })).rejects.toThrow("closing BTC/USDT: exitPrice must be a finite number, got NaN");
    await expect(closePositionWithTrade(db, { ...close, fees: Number.POSITIVE_INFINITY })).rejects.toThrow("closing BTC/USDT: fees must be a finite number, got Infinity");
    expect(await count(db, "trades")).toBe(0);
    expect(await count(db, "positions")).toBe(1);
  });

  it("keeps the position when writing the trade fails (one statement), and logs and re-raises the error", async () => {
    await savePosition(db, position());
    await db.sql.exec(`
      CREATE FUNCTION refuse_trade() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'trade refused by test trigger'; END $$;
      CREATE TRIGGER refuse_trade BEFORE INSERT ON trades FOR EACH ROW EXECUTE FUNCTION refuse_trade();`);
    try {
      await expect(
        closePositionWithTrade(db, { exchange: "binance", symbol: "BTC/USDT", exitPrice: 90, exitTime: CLOSED, exitReason: "STOP_LOSS", exitOrderId: "exit-1", fees: 0.1 }),
      ).rejects.toThrow(/trade refused by test trigger/);
    } finally {
      await db.sql.exec("DROP TRIGGER refuse_trade ON trades; DROP FUNCTION refuse_trade()");
    }
    expect(await count(db, "trades")).toBe(0);
    expect((await listOpenPositions(db)).map((p) => [p.symbol, p.entryOrderId])).toEqual([["BTC/USDT", "entry-1"]]);
    const errors = logger.lines.filter((l) => l.level === "error");
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ message: "closePositionWithTrade failed", meta: { exchange: "binance", symbol: "BTC/USDT", exitOrderId: "exit-1" } });
    expect(String(errors[0]?.meta?.error)).toMatch(/trade refused by test trigger/);

    // Once the database accepts trades again, the same close goes through.
    const trade = await closePositionWithTrade(db, { exchange: "binance", symbol: "BTC/USDT", exitPrice: 90, exitTime: CLOSED, exitReason: "STOP_LOSS", exitOrderId: "exit-1", fees: 0.1 });
    expect(trade.realizedPnl).toBe(-5.1);
    expect(await count(db, "positions")).toBe(0);
  });

  it("writes no trade when deleting the position fails after the trade was inserted", async () => {
    await savePosition(db, position());
    await db.sql.exec(`
      CREATE FUNCTION keep_position() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'position delete refused by test trigger'; END $$;
      CREATE TRIGGER keep_position BEFORE DELETE ON positions FOR EACH ROW EXECUTE FUNCTION keep_position();`);
    try {
      await expect(
        closePositionWithTrade(db, { exchange: "binance", symbol: "BTC/USDT", exitPrice: 110, exitTime: CLOSED, exitReason: "SIGNAL", exitOrderId: "exit-1", fees: 0 }),
      ).rejects.toThrow(/position delete refused by test trigger/);
    } finally {
      await db.sql.exec("DROP TRIGGER keep_position ON positions; DROP FUNCTION keep_position()");
    }
    expect(await count(db, "trades")).toBe(0);
    expect(await count(db, "positions")).toBe(1);
    expect(logger.lines.filter((l) => l.level === "error").map((l) => l.message)).toEqual(["closePositionWithTrade failed"]);
  });

  it("gives the latest entry time of each coin's closed trades on one exchange, only for the coins asked", async () => {
    const trade = async (exchange: string, symbol: string, openedAt: Date, exitOrderId: string) => {
      await savePosition(db, position({ exchange, symbol, openedAt, entryOrderId: `entry-${exitOrderId}` }));
      await closePositionWithTrade(db, { exchange, symbol, exitPrice: 101, exitTime: CLOSED, exitReason: "SIGNAL", exitOrderId, fees: 0 });
    };
    const later = new Date(OPENED.getTime() + 3_600_000);
    await trade("binance", "BTC/USDT", OPENED, "x1");
    await trade("binance", "BTC/USDT", later, "x2");
    await trade("binance", "ETH/USDT", OPENED, "x3");
    await trade("kraken", "SOL/USDT", later, "x4");
    await trade("binance", "SOL/USDT", OPENED, "x5");

    const entries = await latestTradeEntries(db, { exchange: "binance", symbols: ["BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT"] });
    expect(Object.fromEntries([...entries].map(([symbol, time]) => [symbol, time.toISOString()]))).toEqual({
      "BTC/USDT": later.toISOString(),
      "ETH/USDT": OPENED.toISOString(),
      "SOL/USDT": OPENED.toISOString(),
    });
    expect([...(await latestTradeEntries(db, { exchange: "binance", symbols: ["ETH/USDT"] })).keys()]).toEqual(["ETH/USDT"]);
    expect((await latestTradeEntries(db, { exchange: "binance", symbols: [] })).size).toBe(0);
  });
});
