import { TIMEFRAMES } from "@candlekeep/core";
import type { Database, SqlRunner } from "@candlekeep/db";
import { until } from "@candlekeep/db/testing";
import { latestTick, numberField, useBotProcessesOnServer } from "../testing/process";
import { simCandleMismatches } from "../testing/sim-truth";

/**
 * Reliability, fault 2: the bot process is killed with SIGKILL in the middle
 * of a tick (no shutdown, no final flush) and started again. What it had
 * written must be restored, the replayed ticks must not write anything twice,
 * and no coin may hold two positions at once.
 */

const SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT", "XRP/USDT", "DOGE/USDT"];

async function count(db: Pick<Database, "sql">, sql: string, params: unknown[] = []): Promise<number> {
  const result = await db.sql.query<{ n: string }>(sql, params);
  return Number(result.rows[0]?.n ?? 0);
}

describe("crash mid-tick and restart (real bot process, PostgreSQL server)", () => {
  const bed = useBotProcessesOnServer({ SYMBOLS: SYMBOLS.join(","), TICK_INTERVAL_MS: "20", SIM_REPLAY_CANDLES: "10000" });
  const start = () => bed.start();

  /** Waits until the server has released the killed bot's connections (and with them its bot lock). */
  const lockReleased = (admin: Database) =>
    until("the killed bot's lock to be released", async () => ((await count(admin, "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())")) === 0 ? true : undefined), 15_000);

  it("after kill -9 mid-tick, restores open positions and writes no candle, trade, event or position twice", async () => {
    const first = start();
    await first.waitFor("bot running", (l) => l.message === "bot running");
    const admin = await bed.open();
    // Run until the bot has closed a trade and holds an open position.
    await until(
      "a trade and an open position",
      async () => ((await count(admin, "SELECT count(*) AS n FROM trades")) > 0 && (await count(admin, "SELECT count(*) AS n FROM positions")) > 0 ? true : undefined),
      90_000,
    );

    // Crash 1, deterministic: the tick is held inside its account snapshot write (after the coins
    // were processed, orders placed and positions saved; its events are written alongside), then killed.
    let releaseSnapshot: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (releaseSnapshot = resolve));
    const locking = admin.session(async (connection: SqlRunner) => {
      await connection.exec("BEGIN");
      await connection.exec("LOCK TABLE account_state IN EXCLUSIVE MODE");
      await held;
      await connection.exec("ROLLBACK");
    });
    await until(
      "the tick to wait on the account snapshot",
      async () =>
        (await count(admin, "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query ILIKE '%account_state%'")) > 0
          ? true
          : undefined,
      15_000,
    );
    await first.kill();
    expect(first.lines.some((l) => l.message === "stopping after the current tick")).toBe(false);
    releaseSnapshot();
    await locking;
    await lockReleased(admin);
    const openAtCrash = await admin.sql.query<{ symbol: string; entry_order_id: string }>("SELECT symbol, entry_order_id FROM positions ORDER BY symbol");

    const second = start();
    const restored = await second.waitFor("state restored", (l) => l.message === "bot state restored");
    expect(numberField(restored, "openPositions")).toBe(openAtCrash.rows.length);
    // Crash 2, at an arbitrary point: right as a tick is logged, the next one is under way.
    await second.waitForTick(40, { timeoutMs: 60_000 });
    await second.kill();
    await lockReleased(admin);
    const openAtSecondCrash = await count(admin, "SELECT count(*) AS n FROM positions");

    const third = start();
    const restoredAgain = await third.waitFor("state restored", (l) => l.message === "bot state restored");
    expect(numberField(restoredAgain, "openPositions")).toBe(openAtSecondCrash);
    await third.waitForTick(20, { timeoutMs: 60_000 });
    third.child.kill("SIGTERM");
    expect(await third.exited).toBe(0);

    // Positions open at the first crash were restored, not opened again: each is still open or closed by exactly one trade.
    for (const { symbol, entry_order_id: entry } of openAtCrash.rows) {
      const closed = await count(admin, "SELECT count(*) AS n FROM trades WHERE symbol = $1 AND entry_order_id = $2", [symbol, entry]);
      const open = await count(admin, "SELECT count(*) AS n FROM positions WHERE symbol = $1 AND entry_order_id = $2", [symbol, entry]);
      expect({ symbol, closed, open, total: closed + open }).toEqual({ symbol, closed, open, total: 1 });
    }

    // No position is closed twice, and no coin ever held two positions at once.
    expect(await count(admin, "SELECT count(*) - count(DISTINCT entry_order_id) AS n FROM trades")).toBe(0);
    expect(await count(admin, "SELECT count(*) - count(DISTINCT exit_order_id) AS n FROM trades")).toBe(0);
    const overlaps = await admin.sql.query<{ symbol: string }>(
      `WITH spans AS (
         SELECT symbol, entry_time AS opened, exit_time AS closed FROM trades
         UNION ALL SELECT symbol, opened_at, 'infinity'::timestamptz FROM positions)
       SELECT a.symbol FROM spans a JOIN spans b ON a.symbol = b.symbol AND a.opened < b.opened AND b.opened < a.closed`,
    );
    expect(overlaps.rows).toEqual([]);

    // Events: one decision trace per coin and tick, one open/close event per order, and every recorded
    // opening belongs to a stored position or trade.
    expect(await count(admin, "SELECT count(*) AS n FROM decision_traces")).toBeGreaterThan(0);
    expect(await count(admin, "SELECT count(*) AS n FROM system_events WHERE type = 'DECISION_TRACE'")).toBe(0);
    expect(await count(admin, "SELECT count(*) - count(DISTINCT payload->>'orderId') AS n FROM system_events WHERE type = 'POSITION_OPENED'")).toBe(0);
    expect(await count(admin, "SELECT count(*) - count(DISTINCT event_key) AS n FROM system_events WHERE type = 'POSITION_CLOSED'")).toBe(0);
    expect(
      await count(
        admin,
        `SELECT count(*) AS n FROM system_events e WHERE type = 'POSITION_OPENED'
           AND NOT EXISTS (SELECT 1 FROM trades t WHERE t.entry_order_id = e.payload->>'orderId')
           AND NOT EXISTS (SELECT 1 FROM positions p WHERE p.entry_order_id = e.payload->>'orderId')`,
      ),
    ).toBe(0);
    expect(await count(admin, "SELECT count(*) AS n FROM system_events WHERE type = 'STARTUP'")).toBe(3);

    // Candles: every candle the exchange produced is stored once with its values, across both crashes.
    const lastTick = third.lines.filter((l) => l.message === "tick").at(-1);
    expect(latestTick(third)).toBeGreaterThanOrEqual(20);
    const exchangeTime = Date.parse(String(lastTick?.fields.exchangeTime));
    expect(await simCandleMismatches(admin, { seed: 1, exchangeTime, symbols: SYMBOLS, timeframes: TIMEFRAMES, replayed: true })).toEqual([]);
  }, 240_000);
});
