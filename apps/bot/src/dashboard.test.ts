import { createServerTestDatabase, entryIntent, type TestDatabase } from "@candlekeep/db/testing";
import type { CoverageResponse, SystemResponse } from "dashboard";
import { recordOrderIntent } from "@candlekeep/db";
import type { FastifyInstance } from "fastify";
import { loadConfig } from "./config";
import { startServer } from "./server";
import { startTestBot, type TestBot } from "./testing/bot";

const TOKEN = "bot-dashboard-token-0123456789";

describe("the dashboard served by the bot (DASHBOARD_ENABLED=true)", () => {
  let testDb: TestDatabase;
  let bot: TestBot;
  let server: FastifyInstance;
  let base: string;
  const get = async <T>(url: string, token: string | null = TOKEN) => {
    const response = await fetch(`${base}${url}`, { headers: token === null ? {} : { authorization: `Bearer ${token}` } });
    const body = (await response.json()) as T;
    return { status: response.status, body };
  };

  beforeAll(async () => {
    testDb = await createServerTestDatabase();
    bot = await startTestBot({
      DATABASE_URL: testDb.url,
      CANDLEKEEP_DATA_DIR: testDb.dataDir,
      SYMBOLS: "BTC/USDT,ETH/USDT,SOL/USDT",
      HOST: "127.0.0.1",
      DASHBOARD_ENABLED: "true",
      DASHBOARD_TOKEN: TOKEN,
      DATABASE_STORAGE_BUDGET: "1TB",
    });
    await bot.ticks(3);
    // The server options the bot's settings gave, as main.ts passes them.
    server = await startServer(bot.runtime, bot.runtime.config.server);
    const address = server.server.address();
    base = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
  });
  afterAll(async () => {
    await server?.close();
    await bot?.stop();
    await testDb?.drop();
  });

  it("shows the sim run's coins as fresh, on the same port as /healthz", async () => {
    const { status, body } = await get<CoverageResponse>("/api/coverage");
    expect(status).toBe(200);
    expect(body.coins.map((c) => c.symbol)).toEqual(["BTC/USDT", "ETH/USDT", "SOL/USDT"]);
    expect(body.totals).toEqual({ fresh: 12, late: 0, stale: 0, missing: 0 });
  });

  it("passes the bot's live status to the system panel", async () => {
    const { body } = await get<SystemResponse>("/api/system");
    expect(body.mode).toBe("bot");
    // Which kind of database, never where it is.
    expect(body.database).toEqual({ kind: "server", downSince: null });
    expect(body.bot).toMatchObject({ ticks: 3, pendingCandles: 0 });
    expect(body.bot?.lastTickAt).not.toBeNull();
    expect(body.bot?.lastFlushAt).not.toBeNull();
  });

  it("shows on the system panel the days of growth left in DATABASE_STORAGE_BUDGET, as the standalone dashboard does", async () => {
    const { body } = await get<SystemResponse>("/api/system");
    const storage = body.storage;
    const budgetBytes = 1024 ** 4;
    expect(storage?.bytesPerDay).toBeGreaterThan(0);
    const leftBytes = budgetBytes - (storage?.databaseBytes ?? 0);
    expect(storage?.budget).toEqual({ bytes: budgetBytes, leftBytes, daysLeft: expect.closeTo(leftBytes / (storage?.bytesPerDay ?? 1), 6), state: "ok", lowDays: 30 });
  });

  it("lists on /healthz the orders whose outcome is not settled yet", async () => {
    const db = await bot.database.get();
    const createdAt = new Date(bot.runtime.market.now());
    const { order } = await recordOrderIntent(db, entryIntent("ETH/USDT", "ck00000000000000aa", { requestedAmount: 0.5, referencePrice: 2000, createdAt }));
    bot.runtime.positions.restore([], new Map(), [order]);
    const health = (await (await fetch(`${base}/healthz`)).json()) as { unsettledOrders: unknown[] };
    expect(health.unsettledOrders).toEqual([{ symbol: "ETH/USDT", side: "buy", status: "intent", clientOrderId: "ck00000000000000aa", since: createdAt.toISOString() }]);
  });

  it("asks for the token on the dashboard only: /healthz stays open for the platform", async () => {
    expect((await get("/api/coverage", null)).status).toBe(401);
    // Exactly `Bearer <token>`: more words after it are not the token.
    expect((await get("/api/coverage", `${TOKEN} junk`)).status).toBe(401);
    expect((await get("/api/coverage", "x junk")).status).toBe(401);
    expect((await get("/healthz", null)).status).toBe(200);
  });

  it("refuses DASHBOARD_ENABLED on an exposed HOST without DASHBOARD_TOKEN", () => {
    expect(() => loadConfig({ DASHBOARD_ENABLED: "true", HOST: "0.0.0.0" }, [], false)).toThrow(/DASHBOARD_TOKEN/);
    expect(loadConfig({ DASHBOARD_ENABLED: "true", HOST: "127.0.0.1" }, [], false).server.dashboard).toEqual({ enabled: true, token: undefined });
    expect(loadConfig({}, [], false).server.dashboard.enabled).toBe(false);
  });
});
