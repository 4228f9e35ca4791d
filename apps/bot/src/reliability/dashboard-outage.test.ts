import { setTimeout as sleep } from "node:timers/promises";
import { createServerTestDatabase, type TestDatabase } from "@candlekeep/db/testing";
import type { SystemResponse } from "dashboard";
import { numberField, spawnBot, type BotProcess } from "../testing/process";
import { TcpProxy } from "../testing/tcp-proxy";

/**
 * Reliability: the bot's dashboard while its database is away (every
 * connection through a TCP proxy reset, new ones refused), and after.
 */

const TOKEN = "outage-dashboard-token-0123456789";
const DATA_ROUTES = ["/api/coverage", "/api/coins/BTC-USDT/candles", "/api/coins/BTC-USDT/events", "/api/positions", "/api/trades", "/api/orders", "/api/equity"];

describe("the bot's dashboard during a database outage (real bot process, PostgreSQL through a TCP proxy)", () => {
  let testDb: TestDatabase;
  let proxy: TcpProxy;
  let bot: BotProcess | undefined;

  beforeEach(async () => {
    testDb = await createServerTestDatabase();
    const target = new URL(testDb.url ?? "");
    proxy = new TcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
    await proxy.start();
  });
  afterEach(async () => {
    await bot?.kill();
    await proxy.stop();
    await testDb.drop();
    bot = undefined;
  });

  it("keeps answering: /api/system says since when the database is down, the other routes 503, no body names the database's host or port; all back after", async () => {
    const viaProxy = new URL(testDb.url ?? "");
    viaProxy.port = String(proxy.port);
    bot = spawnBot({ DATABASE_URL: viaProxy.toString(), CANDLEKEEP_DATA_DIR: testDb.dataDir, SYMBOLS: "BTC/USDT,ETH/USDT", DASHBOARD_ENABLED: "true", DASHBOARD_TOKEN: TOKEN, TICK_INTERVAL_MS: "200" });
    const running = await bot.waitFor("bot running", (l) => l.message === "bot running");
    const base = `http://127.0.0.1:${numberField(running, "port") ?? 0}`;
    await bot.waitForTick(2);
    const get = async (url: string) => {
      const response = await fetch(`${base}${url}`, { headers: { authorization: `Bearer ${TOKEN}` } });
      return { status: response.status, text: await response.text() };
    };
    const system = async () => JSON.parse((await get("/api/system")).text) as SystemResponse;
    /** Polls /api/system (every 200 ms, up to 20 s) until `done` says so. */
    const systemUntil = async (what: string, done: (s: SystemResponse) => boolean) => {
      for (let i = 0; i < 100; i += 1) {
        const s = await system();
        if (done(s)) return s;
        await sleep(200);
      }
      throw new Error(`timed out waiting for /api/system: ${what}`);
    };
    expect((await system()).database).toEqual({ kind: "server", downSince: null });

    const cutAt = bot.lines.length;
    proxy.cut();
    const down = await systemUntil("the database down", (s) => s.database.downSince !== null);
    expect(down).toMatchObject({ mode: "bot", bot: { ticks: expect.any(Number) }, orders: null, migrations: null, errors: null });
    const bodies: string[] = [JSON.stringify(down)];
    for (const url of DATA_ROUTES) {
      const { status, text } = await get(url);
      expect({ url, status }).toEqual({ url, status: 503 });
      expect(JSON.parse(text)).toEqual({ error: expect.stringMatching(/^database unreachable since \d{4}-.*Z; the dashboard retries on the next request$/) });
      bodies.push(text);
    }
    // The page itself still loads.
    const page = await get("/");
    expect(page.status).toBe(200);
    for (const body of bodies) {
      expect(body).not.toContain(String(proxy.port));
      expect(body).not.toContain(new URL(testDb.url ?? "").host);
      expect(body).not.toMatch(/127\.0\.0\.1|ECONN|terminated/i);
    }
    expect(bot.running).toBe(true);

    proxy.restore();
    const back = await systemUntil("the database back", (s) => s.database.downSince === null);
    expect(back.migrations?.upToDate).toBe(true);
    for (const url of DATA_ROUTES) expect({ url, status: (await get(url)).status }).toEqual({ url, status: 200 });
    // One line when the dashboard found the database gone, one when it came back.
    const lines = bot.lines.slice(cutAt).map((l) => l.message);
    expect(lines.filter((m) => m?.startsWith("dashboard: the database is unreachable"))).toHaveLength(1);
    expect(lines.filter((m) => m === "dashboard: the database is back")).toHaveLength(1);
  }, 90_000);
});
