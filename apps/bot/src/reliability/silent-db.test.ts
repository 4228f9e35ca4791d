import { setTimeout as sleep } from "node:timers/promises";
import { TIMEFRAMES } from "@candlekeep/core";
import { type Database } from "@candlekeep/db";
import { createServerTestDatabase, openOnTestDatabase, type TestDatabase } from "@candlekeep/db/testing";
import { historyAudited, latestTick, numberField, spawnBot, type BotProcess, type LogLine } from "../testing/process";
import { simCandleMismatches } from "../testing/sim-truth";
import { TcpProxy } from "../testing/tcp-proxy";

/**
 * Reliability: database connections that stop carrying bytes without a reset
 * (a vanished NAT entry, a failed-over managed database, a host that is gone).
 * No error ever arrives on them: the bot must notice by itself (a 30 s bound on
 * an unanswered statement, the bot lock's heartbeat), and the server must free
 * the lock of a bot that vanished (idle_session_timeout, a minute).
 */

const SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"];
const ALREADY_RUNNING = 'Another bot is already running for "candlekeep:sim" on this database';

interface Health {
  at: number;
  status: number;
  body: { status?: string; databaseDownSince?: string | null };
}

/** Asks /healthz every 250 ms until stopped; the answers, in order. */
function pollHealth(port: number): { answers: Health[]; stop: () => Promise<void> } {
  const answers: Health[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        const response = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2000) });
        answers.push({ at: Date.now(), status: response.status, body: (await response.json()) as Health["body"] });
      } catch {
        // The bot is stopping: nothing to record.
      }
      await sleep(250);
    }
  })();
  return {
    answers,
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

function portOf(line: LogLine): number {
  const port = numberField(line, "port");
  if (port === undefined) throw new Error("no port in the 'bot running' line");
  return port;
}

describe("database connections that go silent (real bot processes, PostgreSQL through a TCP proxy)", () => {
  let testDb: TestDatabase;
  let proxy: TcpProxy;
  const bots: BotProcess[] = [];
  let db: Database | undefined;

  beforeEach(async () => {
    testDb = await createServerTestDatabase();
    const target = new URL(testDb.url ?? "");
    proxy = new TcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
    await proxy.start();
  });
  afterEach(async () => {
    await Promise.all(bots.splice(0).map((bot) => bot.kill()));
    await db?.close();
    db = undefined;
    await proxy.stop();
    await testDb.drop();
  });

  function viaProxy(): string {
    const url = new URL(testDb.url ?? "");
    url.port = String(proxy.port);
    return url.toString();
  }

  function start(env: Record<string, string>): BotProcess {
    const bot = spawnBot({ CANDLEKEEP_DATA_DIR: testDb.dataDir, SYMBOLS: SYMBOLS.join(","), TICK_INTERVAL_MS: "200", SIM_REPLAY_CANDLES: "10000", ...env });
    bots.push(bot);
    return bot;
  }

  // The candle write in flight when the path goes silent waits CANDLE_WRITE_TIMEOUT_MS + 5 s for its answer; 10 s keeps these tests short.
  const WRITE_TIMEOUT = { CANDLE_WRITE_TIMEOUT_MS: "10000" };

  it("resumes ticking within a minute when every open connection goes silent (new ones work), /healthz 503 while stalled, trading resumes, every candle written once", async () => {
    const bot = start({ DATABASE_URL: viaProxy(), ...WRITE_TIMEOUT });
    const port = portOf(await bot.waitFor("bot running", (l) => l.message === "bot running"));
    await bot.waitForTick(5);
    await historyAudited(bot);
    const health = pollHealth(port);

    const silencedAt = bot.lines.length;
    const silenced = Date.now();
    const tickBefore = latestTick(bot);
    proxy.blackhole();
    // The tick waiting on a silent connection gets its answer at last: none, after 30 s.
    const resumed = await bot.waitForTick(tickBefore + 2, { from: silencedAt, timeoutMs: 60_000 });
    expect((resumed.timestamp ?? 0) - silenced).toBeLessThan(60_000);
    await bot.waitFor("trading resumes", (l) => l.message === "bot lock taken again; trading resumes", { from: silencedAt, timeoutMs: 60_000 });
    await bot.waitFor("candles written again", (l) => l.message === "database is back; pending candles written", { from: silencedAt, timeoutMs: 60_000 });
    await bot.waitForTick(latestTick(bot) + 3);
    await health.stop();

    // What the bot said meanwhile: the lock's connection lost (heartbeat), the silent connections closed, its own stale lock session ended.
    const said = bot.lines.slice(silencedAt).map((l) => l.message);
    expect(said).toContain("bot lock connection lost");
    expect(said.some((m) => m?.startsWith("a database connection went silent") === true)).toBe(true);
    expect(said).toContain("the bot lock was still held by this bot's own lost connection; that session was ended");
    // /healthz: 503 "stalled" once more than two 200 ms intervals + 10 s (10.4 s) pass without a finished tick, with the outage reported; 200 once ticking again.
    const stalled = health.answers.filter((a) => a.status === 503);
    expect(stalled.length).toBeGreaterThan(0);
    expect(stalled[0]?.body.status).toBe("stalled");
    expect((stalled[0]?.at ?? 0) - silenced).toBeGreaterThanOrEqual(10_000);
    expect(health.answers.some((a) => a.status === 503 && typeof a.body.databaseDownSince === "string")).toBe(true);
    expect(health.answers.at(-1)).toMatchObject({ status: 200, body: { status: "ok", databaseDownSince: null } });

    const stopping = Date.now();
    bot.child.kill("SIGTERM");
    expect(await bot.exited).toBe(0);
    expect(Date.now() - stopping).toBeLessThan(15_000);
    db = await openOnTestDatabase(testDb, { autoMigrate: false });
    expect(await simCandleMismatches(db, { seed: 1, exchangeTime: lastExchangeTime(bot.lines), symbols: SYMBOLS, timeframes: TIMEFRAMES, replayed: true })).toEqual([]);
  }, 150_000);

  it("obeys SIGTERM while its connections are silent: exit 0 well within the 120 s grace period", async () => {
    const bot = start({ DATABASE_URL: viaProxy(), ...WRITE_TIMEOUT });
    await bot.waitForTick(5);
    proxy.blackhole();
    await sleep(2000);
    const stopping = Date.now();
    bot.child.kill("SIGTERM");
    expect(await bot.exited).toBe(0);
    expect(Date.now() - stopping).toBeLessThan(60_000);
    expect(bot.lines.some((l) => l.message === "stopping after the current tick")).toBe(true);
  }, 120_000);

  it("frees the lock of a bot whose host vanished within about a minute: a second bot takes over; the first, back, exits 1 with one line", async () => {
    const first = start({ DATABASE_URL: viaProxy(), ...WRITE_TIMEOUT });
    await first.waitForTick(5);
    // Everything the first bot sends is lost, on open connections and new ones alike; nothing is closed.
    proxy.blackhole({ newConnections: "silent" });
    const vanished = Date.now();
    const second = start({ DATABASE_URL: testDb.url ?? "", BOT_LOCK_WAIT_MS: "90000" });
    await second.waitFor("waiting for the lock", (l) => l.message === "another bot holds the bot lock; waiting for it to stop");
    await second.waitFor("lock taken", (l) => l.message === "bot lock taken; the other bot has stopped", { timeoutMs: 80_000 });
    // The server ends the first bot's lock session after a minute without a word from it (idle_session_timeout).
    expect(Date.now() - vanished).toBeLessThan(70_000);
    await second.waitForTick(3);

    // The network heals: the first bot finds the lock taken and stops, never trading beside the second.
    proxy.restore();
    expect(await first.exited).toBe(1);
    const errors = first.lines.filter((l) => l.level === "error").map((l) => l.message);
    expect(errors.at(-1)).toBe(`${ALREADY_RUNNING}. Stop it first, or give this one another EXCHANGE or database.`);
    expect(second.running).toBe(true);
    second.child.kill("SIGTERM");
    expect(await second.exited).toBe(0);
  }, 180_000);
});

/** Exchange time of the bot's last tick. */
function lastExchangeTime(lines: readonly LogLine[]): number {
  const last = lines.filter((l) => l.message === "tick").at(-1);
  const time = last?.fields.exchangeTime;
  if (typeof time !== "string") throw new Error("no tick logged");
  return Date.parse(time);
}
