import fs from "node:fs";
import { HTTP_TIMEOUTS } from "dashboard";
import { createServerTestDatabase, type TestDatabase } from "@candlekeep/db/testing";
import { idleSockets, rawGet, slowHeaders, stillOpen } from "../testing/http-clients";
import { latestTick, numberField, spawnBot, type BotProcess } from "../testing/process";

/**
 * Reliability: hostile HTTP clients against a real bot process serving its
 * dashboard without a token on 127.0.0.1, run under `ulimit -n 1024`.
 */

const OPEN_FILES = 1024;
const IDLE_SOCKETS = 1100;

describe("hostile HTTP clients (real bot process, dashboard on 127.0.0.1 without a token, 1,024 open files)", () => {
  let testDb: TestDatabase;
  let bot: BotProcess;
  let port: number;
  let base: string;

  beforeAll(async () => {
    testDb = await createServerTestDatabase();
    bot = spawnBot({ DATABASE_URL: testDb.url ?? "", CANDLEKEEP_DATA_DIR: testDb.dataDir, SYMBOLS: "BTC/USDT,ETH/USDT", DASHBOARD_ENABLED: "true", TICK_INTERVAL_MS: "200" }, [], { maxOpenFiles: OPEN_FILES });
    const running = await bot.waitFor("bot running", (l) => l.message === "bot running");
    port = numberField(running, "port") ?? 0;
    base = `http://127.0.0.1:${port}`;
    await bot.waitForTick(2);
  });
  afterAll(async () => {
    await bot?.kill();
    await testDb?.drop();
  });

  it("keeps /healthz, the dashboard and the bot's database writes going with 1,100 idle sockets open", async () => {
    const pid = bot.child.pid ?? 0;
    expect(fs.readFileSync(`/proc/${pid}/limits`, "utf8")).toMatch(new RegExp(`Max open files\\s+${OPEN_FILES}\\s+${OPEN_FILES}\\s`));
    const from = bot.lines.length;
    const sockets = await idleSockets(port, IDLE_SOCKETS);
    try {
      const started = Date.now();
      const health = await fetch(`${base}/healthz`);
      expect(health.status).toBe(200);
      expect(Date.now() - started).toBeLessThan(2000);
      expect((await fetch(`${base}/`)).status).toBe(200);
      expect((await fetch(`${base}/api/system`)).status).toBe(200);
      // The bot is still ticking and storing candles: three more ticks with no write failing.
      await bot.waitForTick(latestTick(bot) + 3);
      // At most the cap (256) of them held open; the process far from its limit.
      expect(stillOpen(sockets).length).toBeLessThanOrEqual(256);
      expect(fs.readdirSync(`/proc/${pid}/fd`).length).toBeLessThan(OPEN_FILES / 2);
      expect(bot.lines.slice(from).some((l) => l.message === "too many HTTP connections: closing the oldest idle ones")).toBe(true);
      expect(bot.stderr()).not.toMatch(/EMFILE/);
      expect(bot.lines.slice(from).filter((l) => l.level === "error")).toEqual([]);
    } finally {
      for (const socket of sockets) socket.destroy();
    }
  });

  it("cuts a client that never finishes its headers, or says nothing, within the header timeout", async () => {
    const silent = idleSockets(port, 1).then(async ([socket]) => {
      const started = Date.now();
      await new Promise((resolve) => socket?.once("close", resolve));
      return Date.now() - started;
    });
    const loris = await slowHeaders(port, 500);
    // Node checks its timeouts every second: cut between 10 and 11 s (a little slack for a busy machine).
    expect(loris.openMs).toBeGreaterThanOrEqual(HTTP_TIMEOUTS.headersMs - 100);
    expect(loris.openMs).toBeLessThan(HTTP_TIMEOUTS.headersMs + HTTP_TIMEOUTS.checkIntervalMs + 1500);
    expect(loris.received).toMatch(/^HTTP\/1\.1 408 /);
    expect(await silent).toBeLessThan(HTTP_TIMEOUTS.headersMs + HTTP_TIMEOUTS.checkIntervalMs + 1500);
    expect(bot.running).toBe(true);
  }, 30_000);

  it("refuses a foreign Host on the tokenless dashboard (DNS rebinding) and serves 127.0.0.1 and localhost", async () => {
    for (const host of ["attacker.example", `attacker.example:${port}`, `127.0.0.1:${port + 1}`]) {
      for (const path of ["/", "/api/positions"]) expect({ host, path, status: (await rawGet(port, path, { host })).status }).toEqual({ host, path, status: 421 });
    }
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`]) expect((await rawGet(port, "/api/positions", { host })).status).toBe(200);
    // The platform's probe may use any name.
    expect((await rawGet(port, "/healthz", { host: "bot.internal" })).status).toBe(200);
  });

  it("answers 400 to a limit that is not plain decimal digits", async () => {
    for (const limit of ["0x10", "1e3", "-1"]) {
      for (const path of [`/api/trades?limit=${limit}`, `/api/coins/BTC-USDT/candles?limit=${limit}`]) {
        const response = await fetch(`${base}${path}`);
        expect({ path, status: response.status }).toEqual({ path, status: 400 });
        expect(await response.json()).toEqual({ error: expect.stringMatching(/^limit must be a whole number from 1 to \d+, in decimal digits/) });
      }
    }
  });
});
