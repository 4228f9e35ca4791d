import { latestEvents } from "@candlekeep/db";
import { latestTick, useBotProcessesOnServer, type BotProcess } from "../testing/process";

/**
 * Reliability, fault 3: two bot processes on the same database and exchange.
 * One bot lock per (database, exchange): the second one waits for it up to
 * BOT_LOCK_WAIT_MS (a deploy starts the new bot before the old one stops), then
 * takes over, or gives up with one clear line and exit code 1.
 */

const ALREADY_RUNNING = 'Another bot is already running for "candlekeep:sim" on this database';

describe("two bot processes on one database and exchange", () => {
  const bed = useBotProcessesOnServer({ SYMBOLS: "BTC/USDT,ETH/USDT" });
  const start = (env: Record<string, string> = {}) => bed.start(env);
  const errorLines = (bot: BotProcess) => bot.lines.filter((l) => l.level === "error");

  it("the second exits at once with one clear line and exit code 1 when BOT_LOCK_WAIT_MS is 0, and the first keeps trading", async () => {
    const first = start();
    await first.waitForTick(2);
    const second = start({ BOT_LOCK_WAIT_MS: "0" });
    expect(await second.exited).toBe(1);
    expect(errorLines(second).map((l) => l.message)).toEqual([`${ALREADY_RUNNING}. Stop it first, or give this one another EXCHANGE or database.`]);
    expect(second.lines.some((l) => l.message === "bot running" || l.message === "tick")).toBe(false);

    const ticked = latestTick(first);
    await first.waitForTick(ticked + 2);
    first.child.kill("SIGTERM");
    expect(await first.exited).toBe(0);
  });

  it("the second waits for the lock, and gives up with one clear line and exit code 1 when the first does not stop in time", async () => {
    const first = start();
    await first.waitForTick(2);
    const second = start({ BOT_LOCK_WAIT_MS: "2000" });
    await second.waitFor("waiting for the lock", (l) => l.message === "another bot holds the bot lock; waiting for it to stop");
    expect(await second.exited).toBe(1);
    expect(errorLines(second).map((l) => l.message)).toEqual([
      'Another bot is still running for "candlekeep:sim" on this database after waiting 2 s for it to stop. Stop it first, or give this one another EXCHANGE or database.',
    ]);
    expect(first.running).toBe(true);
  });

  it("the second waits for the lock and takes over as soon as the first stops, with the first one's positions", async () => {
    const first = start({ SIM_REPLAY_CANDLES: "2000", TICK_INTERVAL_MS: "50" });
    await first.waitForTick(2);
    const second = start({ SIM_REPLAY_CANDLES: "2000", TICK_INTERVAL_MS: "50", BOT_LOCK_WAIT_MS: "60000" });
    await second.waitFor("waiting for the lock", (l) => l.message === "another bot holds the bot lock; waiting for it to stop");
    // While the second waits, only the first one trades.
    const ticked = latestTick(first);
    await first.waitForTick(ticked + 5);
    expect(second.lines.some((l) => l.message === "bot state restored" || l.message === "tick")).toBe(false);

    first.child.kill("SIGTERM");
    expect(await first.exited).toBe(0);
    await second.waitFor("lock taken", (l) => l.message === "bot lock taken; the other bot has stopped");
    const restored = await second.waitFor("state restored", (l) => l.message === "bot state restored");
    await second.waitForTick(3);
    second.child.kill("SIGTERM");
    expect(await second.exited).toBe(0);

    const db = await bed.open();
    const shutdowns = await latestEvents(db, { type: "SHUTDOWN", limit: 10 });
    const startups = await latestEvents(db, { type: "STARTUP", limit: 10 });
    expect(startups).toHaveLength(2);
    expect(shutdowns).toHaveLength(2);
    // The second started only after the first had shut down, and took over its open positions.
    const firstShutdown = shutdowns.at(-1);
    const secondStartup = startups[0];
    expect(secondStartup?.time.getTime()).toBeGreaterThanOrEqual(firstShutdown?.time.getTime() ?? Number.POSITIVE_INFINITY);
    expect(restored.fields.openPositions).toEqual((firstShutdown?.payload as { openPositions: number }).openPositions);
  });
});
