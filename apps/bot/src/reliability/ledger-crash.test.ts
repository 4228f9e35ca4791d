import { randomInt } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { FINAL_ORDER_STATUSES, type Database, type SqlRunner } from "@candlekeep/db";
import { seededRandom, until } from "@candlekeep/db/testing";
import { latestTick, useBotProcessesOnServer } from "../testing/process";

/**
 * Reliability, fault 2b: the bot process is killed with SIGKILL at random
 * moments (wherever one lands: in a tick, between an order's intent and its
 * fill, in a write) and started again, over and over. Whatever the moment, once
 * a restarted bot has ticked the money adds up: every order is settled,
 * positions and trades are exactly what the filled orders add up to, and the
 * paper cash the bot holds is the starting balance plus what the ledger's fills
 * changed.
 *
 * The kill moments come from a seeded generator; the seed is in the test name.
 * LEDGER_CRASH_SEED=<seed> replays a failing run's delays.
 */

const SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT", "XRP/USDT", "DOGE/USDT"];
const EXCHANGE = "sim";
const CURRENCY = "USDT";
/** Random kills at least; then more until the database holds trades and open positions. */
const KILLS = 8;
const MAX_KILLS = 16;
/** A kill comes this long (uniformly random) after the restarted bot's checks. */
const MAX_KILL_DELAY_MS = 2_000;
const TOLERANCE = "1e-6";
const FINAL = FINAL_ORDER_STATUSES.map((status) => `'${status}'`).join(", ");

const SEED = process.env.LEDGER_CRASH_SEED === undefined ? randomInt(2 ** 31) : Number(process.env.LEDGER_CRASH_SEED);

async function count(db: Pick<Database, "sql">, sql: string): Promise<number> {
  const result = await db.sql.query<{ n: string }>(sql);
  return Number(result.rows[0]?.n ?? 0);
}

async function rows(connection: SqlRunner, sql: string, params: unknown[] = []): Promise<Record<string, unknown>[]> {
  return (await connection.query<Record<string, unknown>>(sql, params)).rows;
}

/** Where the database stood when a bot was started: rows with higher ids were written by it. */
interface Mark {
  orderId: number;
  snapshotId: number;
}

async function mark(db: Pick<Database, "sql">): Promise<Mark> {
  return {
    orderId: await count(db, "SELECT coalesce(max(id), 0) AS n FROM orders"),
    snapshotId: await count(db, "SELECT coalesce(max(id), 0) AS n FROM account_state"),
  };
}

/** What is wrong with the ledger, one list per invariant (all empty when it adds up). */
interface LedgerProblems {
  unsettled: Record<string, unknown>[];
  unbackedPositions: Record<string, unknown>[];
  positionsPerCoin: Record<string, unknown>[];
  entriesNotSoldWhole: Record<string, unknown>[];
  exitsWithoutOneTrade: Record<string, unknown>[];
  tradesWithoutExit: Record<string, unknown>[];
  clientIdsTwice: Record<string, unknown>[];
  entriesPerCandle: Record<string, unknown>[];
  cash: Record<string, unknown>[];
}

const NO_PROBLEMS: LedgerProblems = {
  unsettled: [],
  unbackedPositions: [],
  positionsPerCoin: [],
  entriesNotSoldWhole: [],
  exitsWithoutOneTrade: [],
  tradesWithoutExit: [],
  clientIdsTwice: [],
  entriesPerCandle: [],
  cash: [],
};

/**
 * The paper cash identities, in numeric. Cash is the opening balance plus what
 * the filled orders moved:
 *
 *   cash = start + Σ sells (filled_cost − fee_quote) − Σ buys (filled_cost + fee_quote)          (4)
 *
 * Per position (entry E bought q0 = filled − fee_base at price p, fee F; paper fills a buy's
 * filled_cost = q0·p). Each exit i sells s_i ≤ q (the quantity left) at x_i for fee g_i;
 * APPLY_EXIT writes its trade with fees share_i + g_i, share_i = entry_fee·s_i/q (all of
 * entry_fee when it sells the rest), and realized_pnl_i = s_i·(x_i − p) − share_i − g_i, and
 * leaves quantity q − s_i and entry_fee − share_i. So the exit's cash, s_i·x_i − g_i, is
 * realized_pnl_i + s_i·p + share_i, and the position's cash change adds up to
 *
 *   −q0·p − F + Σ_i (realized_pnl_i + s_i·p + share_i) = Σ_i realized_pnl_i − p·quantity − entry_fee
 *
 * with the position's current quantity and entry_fee (both 0 once it is sold whole; a position
 * closed with a dust remainder would lose that remainder's cost and fee share from both tables,
 * hence the entriesNotSoldWhole check). Summed over every position:
 *
 *   cash = start + Σ trades.realized_pnl − Σ open (entry_fee + quantity·entry_price)              (5)
 *
 * The bot's own cash is the newest account snapshot its restarted process wrote. A snapshot is
 * written at the end of a tick, after every order of that tick, at the tick's exchange time,
 * which is also the created_at of the tick's orders, and the sim's clock moves on every tick: the
 * snapshot accounts for every filled order when none was created after its time. `last_fill`
 * says whether that is so; the caller waits for a tick that makes it so.
 */
const CASH = `
WITH account AS (SELECT (payload->>'startingBalance')::numeric AS start FROM system_events WHERE event_key = $1),
ledger AS (
  SELECT coalesce(sum(CASE side WHEN 'sell' THEN filled_cost - fee_quote ELSE -(filled_cost + fee_quote) END), 0) AS change, max(created_at) AS last_fill
  FROM orders WHERE exchange = $2 AND mode = 'paper' AND filled_amount > 0
),
closed AS (SELECT coalesce(sum(realized_pnl), 0) AS pnl FROM trades WHERE exchange = $2),
held AS (SELECT coalesce(sum(entry_fee + quantity * entry_price), 0) AS cost FROM positions WHERE exchange = $2),
snapshot AS (SELECT id, time, free, total FROM account_state WHERE exchange = $2 AND currency = $3 AND id > $4 ORDER BY id DESC LIMIT 1)
SELECT snapshot.id AS snapshot_id, snapshot.time AS snapshot_time, ledger.last_fill,
  snapshot.time >= coalesce(ledger.last_fill, '-infinity') AS covers_every_fill,
  snapshot.free::text AS free, snapshot.total::text AS total,
  (account.start + ledger.change)::text AS ledger_cash,
  (account.start + closed.pnl - held.cost)::text AS trades_cash,
  abs(account.start + ledger.change - snapshot.free) <= $5::numeric AND abs(account.start + ledger.change - snapshot.total) <= $5::numeric AS ledger_matches,
  abs(account.start + closed.pnl - held.cost - snapshot.total) <= $5::numeric AS trades_match
FROM account, ledger, closed, held, snapshot`;

/**
 * Checks every invariant in one REPEATABLE READ transaction: the bot keeps trading meanwhile,
 * and all the queries must see the same moment. `since` is where the database stood when the
 * bot under test started: orders up to it were left by killed bots and must be settled now,
 * snapshots after it are this bot's. Returns undefined while no snapshot of this bot accounts
 * for every fill yet (its next tick will write one).
 */
async function ledgerProblems(db: Database, since: Mark, options: { allSettled: boolean }): Promise<LedgerProblems | undefined> {
  return db.session(async (connection) => {
    await connection.exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    try {
      const [cash] = await rows(connection, CASH, [`paper-account:${EXCHANGE}`, EXCHANGE, CURRENCY, since.snapshotId, TOLERANCE]);
      if (cash?.covers_every_fill !== true) return undefined;
      return {
        // (1) Orders left by a killed bot are settled at start (a paper order this process has no fill of is canceled).
        unsettled: await rows(
          connection,
          `SELECT id, symbol, side, client_order_id, status FROM orders WHERE status NOT IN (${FINAL}) AND ($1 OR id <= $2) ORDER BY id`,
          [options.allSettled, since.orderId],
        ),
        // (2) Each open position is its entry's fill less what its settled exits sold, to the last digit.
        unbackedPositions: await rows(
          connection,
          `SELECT p.symbol, p.entry_order_id, p.quantity::text, (e.filled_amount - e.fee_base - coalesce(x.sold, 0))::text AS backed
           FROM positions p
           LEFT JOIN orders e ON e.exchange = p.exchange AND e.client_order_id = p.entry_order_id AND e.symbol = p.symbol AND e.purpose = 'entry' AND e.filled_amount > 0
           LEFT JOIN LATERAL (
             SELECT sum(filled_amount) AS sold FROM orders x
             WHERE x.exchange = p.exchange AND x.position_key = p.entry_order_id AND x.purpose = 'exit' AND x.status IN (${FINAL}) AND x.filled_amount > 0
           ) x ON true
           WHERE e.id IS NULL OR p.quantity <> e.filled_amount - e.fee_base - coalesce(x.sold, 0)`,
        ),
        positionsPerCoin: await rows(connection, "SELECT exchange, symbol, count(*)::int AS positions FROM positions GROUP BY exchange, symbol HAVING count(*) > 1"),
        // A filled entry with no open position was sold whole by its exits (what identity (5) rests on).
        entriesNotSoldWhole: await rows(
          connection,
          `SELECT e.symbol, e.client_order_id, (e.filled_amount - e.fee_base)::text AS bought, coalesce(sum(x.filled_amount), 0)::text AS sold
           FROM orders e
           LEFT JOIN orders x ON x.exchange = e.exchange AND x.position_key = e.client_order_id AND x.purpose = 'exit' AND x.filled_amount > 0
           WHERE e.purpose = 'entry' AND e.filled_amount > 0
             AND NOT EXISTS (SELECT 1 FROM positions p WHERE p.exchange = e.exchange AND p.entry_order_id = e.client_order_id)
           GROUP BY e.id
           HAVING e.filled_amount - e.fee_base <> coalesce(sum(x.filled_amount), 0)`,
        ),
        // (3) One trade per settled exit with a fill, of exactly what it sold, for the position it closed.
        exitsWithoutOneTrade: await rows(
          connection,
          `SELECT o.symbol, o.client_order_id, o.status, o.filled_amount::text, count(t.id)::int AS trades, array_agg(t.quantity::text) AS quantities
           FROM orders o LEFT JOIN trades t ON t.exchange = o.exchange AND t.exit_order_id = o.client_order_id
           WHERE o.purpose = 'exit' AND o.filled_amount > 0
           GROUP BY o.id
           HAVING count(t.id) <> CASE WHEN o.status IN (${FINAL}) THEN 1 ELSE 0 END
               OR bool_or(t.quantity <> o.filled_amount OR t.entry_order_id <> o.position_key OR t.symbol <> o.symbol)`,
        ),
        tradesWithoutExit: await rows(
          connection,
          `SELECT t.symbol, t.exit_order_id, t.quantity::text FROM trades t
           WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.exchange = t.exchange AND o.client_order_id = t.exit_order_id AND o.purpose = 'exit' AND o.filled_amount > 0)`,
        ),
        clientIdsTwice: await rows(connection, "SELECT exchange, client_order_id, count(*)::int AS orders FROM orders GROUP BY exchange, client_order_id HAVING count(*) > 1"),
        // An entry decides on the last closed strategy (15m) candle: the one before the candle its exchange time falls in.
        entriesPerCandle: await rows(
          connection,
          `SELECT symbol, date_bin('15 minutes', created_at, 'epoch') - interval '15 minutes' AS decision_candle, array_agg(client_order_id) AS orders
           FROM orders WHERE purpose = 'entry' GROUP BY symbol, decision_candle HAVING count(*) > 1`,
        ),
        // (4) and (5).
        cash: cash.ledger_matches === true && cash.trades_match === true ? [] : [cash],
      };
    } finally {
      await connection.exec("ROLLBACK");
    }
  });
}

describe("kill -9 at random moments (real bot process, paper account on the sim, PostgreSQL server)", () => {
  const bed = useBotProcessesOnServer({
    EXCHANGE,
    TRADING_MODE: "paper",
    QUOTE_CURRENCY: CURRENCY,
    SYMBOLS: SYMBOLS.join(","),
    TICK_INTERVAL_MS: "20",
    SIM_REPLAY_CANDLES: "10000",
  });

  /** Waits until the server has released the killed bot's connections (and with them its bot lock). */
  const lockReleased = (admin: Database) =>
    until(
      "the killed bot's lock to be released",
      async () => ((await count(admin, "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())")) === 0 ? true : undefined),
      15_000,
    );

  it(`after each restart the orders, positions, trades and paper cash add up (seed ${SEED}; LEDGER_CRASH_SEED=${SEED} replays the kill delays)`, async () => {
    const random = seededRandom(SEED);
    // The first bot migrates the fresh database; the checks' connection is opened once it has.
    let since: Mark = { orderId: 0, snapshotId: 0 };
    let bot = bed.start();
    await bot.waitForTick(1, { timeoutMs: 60_000 });
    const admin = await bed.open();
    const kills: { run: number; delayMs: number; tick: number }[] = [];
    /** Waits until one of the bot's snapshots accounts for every fill, then checks every invariant. */
    const check = async (run: number, allSettled: boolean) => {
      const problems = await until(`run ${run}: an account snapshot covering every filled order`, () => ledgerProblems(admin, since, { allSettled }), 30_000);
      expect({ seed: SEED, run, kills, problems }).toEqual({ seed: SEED, run, kills, problems: NO_PROBLEMS });
    };
    const tradingHappened = async () => (await count(admin, "SELECT count(*) AS n FROM trades")) > 0 && (await count(admin, "SELECT count(*) AS n FROM positions")) > 0;

    for (let run = 0; kills.length < MAX_KILLS && (kills.length < KILLS || !(await tradingHappened())); run += 1) {
      await check(run, false);
      const delayMs = Math.floor(random() * MAX_KILL_DELAY_MS);
      await sleep(delayMs);
      kills.push({ run, delayMs, tick: latestTick(bot) });
      await bot.kill();
      await lockReleased(admin);
      since = await mark(admin);
      bot = bed.start();
      await bot.waitForTick(1, { timeoutMs: 60_000 });
    }
    await check(kills.length, false);

    // A last clean stop: its shutdown snapshot follows every order, and no order is left unsettled.
    since = await mark(admin);
    bot.child.kill("SIGTERM");
    expect(await bot.exited).toBe(0);
    await check(kills.length + 1, true);
    expect(await tradingHappened()).toBe(true);
    expect(await count(admin, "SELECT count(*) AS n FROM system_events WHERE type = 'STARTUP'")).toBe(kills.length + 1);
  }, 300_000);
});
