import { spawn } from "node:child_process";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { createDb, type Database } from "@candlekeep/db";
import { NO_RETRY, captureLogger, openTestDatabase } from "@candlekeep/db/testing";
import { silentLogger } from "@candlekeep/core";
import Fastify, { type FastifyInstance } from "fastify";
import { dashboardApi } from "./api";
import type { SystemResponse } from "./api-types";
import { fillDatabase, fixtureSource } from "./testing/fixture";

const NOW = Date.UTC(2026, 10, 25, 12, 7);
const DATA_ROUTES = ["/api/coverage", "/api/coins/BTC-USDT/candles", "/api/coins/BTC-USDT/events", "/api/positions", "/api/trades", "/api/orders", "/api/equity"];

/** A port on 127.0.0.1 nothing listens on: taken, then let go. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return typeof address === "object" && address ? address.port : 0;
}

describe("the dashboard while its database is unreachable", () => {
  let db: Awaited<ReturnType<typeof openTestDatabase>>;
  let port: number;
  let unreachable: ReturnType<typeof createDb>;
  let app: FastifyInstance;
  let base: string;
  let down = true;
  let hang = false;
  const logger = captureLogger();
  const get = async <T>(url: string) => {
    const response = await fetch(`${base}${url}`);
    const text = await response.text();
    return { status: response.status, text, body: JSON.parse(text) as T, retryAfter: response.headers.get("retry-after") };
  };

  beforeAll(async () => {
    db = await openTestDatabase("server");
    await fillDatabase(db, NOW);
    port = await closedPort();
    // What the bot's pool meets when the server is gone: every connection refused.
    unreachable = createDb({ databaseUrl: `postgresql://postgres@127.0.0.1:${port}/candlekeep`, dataDir: os.tmpdir(), autoMigrate: false, retry: NO_RETRY, logger: silentLogger });
    const source = fixtureSource(db, NOW, {
      db: () => (hang ? new Promise<Database>(() => undefined) : down ? unreachable.get() : Promise.resolve(db)),
      live: () => ({ startedAt: new Date(NOW - 60_000), ticks: 7, lastTickAt: new Date(NOW - 1000), lastFlushAt: new Date(NOW - 900), pendingCandles: 12, databaseDownSince: new Date(NOW - 5000) }),
      logger,
      readDeadlineMs: 500,
    });
    app = Fastify();
    await app.register(dashboardApi(source));
    base = await app.listen({ host: "127.0.0.1", port: 0 });
  });
  afterAll(async () => {
    await app.close();
    await unreachable.close();
    await db.close();
  });

  it("answers /api/system with since when the database is down and 503 on the other routes, naming neither host nor port", async () => {
    const system = await get<SystemResponse>("/api/system");
    expect(system.status).toBe(200);
    expect(system.body.database).toEqual({ kind: "server", downSince: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) });
    expect(system.body).toMatchObject({ mode: "bot", bot: { ticks: 7, pendingCandles: 12 }, lastEventAt: null, orders: null, migrations: null, errors: null, storage: null });
    const bodies = [system.text];
    for (const url of DATA_ROUTES) {
      const response = await get<{ error: string }>(url);
      expect({ url, status: response.status }).toEqual({ url, status: 503 });
      expect(response.body.error).toBe(`database unreachable since ${system.body.database.downSince}; the dashboard retries on the next request`);
      expect(response.retryAfter).toBe("5");
      bodies.push(response.text);
    }
    for (const body of bodies) {
      expect(body).not.toContain("127.0.0.1");
      expect(body).not.toContain(String(port));
      expect(body).not.toMatch(/ECONNREFUSED|postgres/i);
    }
    // One line for the outage in the dashboard's log (which may name the server), not one per request.
    expect(logger.lines.filter((l) => l.message.includes("the database is unreachable"))).toHaveLength(1);
  });

  it("counts a read that does not answer within its deadline as the database being down", async () => {
    hang = true;
    const started = Date.now();
    const response = await get<{ error: string }>("/api/positions");
    hang = false;
    expect(response.status).toBe(503);
    expect(Date.now() - started).toBeLessThan(3000);
    expect((await get<SystemResponse>("/api/system")).body.database.downSince).not.toBeNull();
  });

  it("is back to normal on the first read after the database returns", async () => {
    down = false;
    const system = await get<SystemResponse>("/api/system");
    expect(system.body.database).toEqual({ kind: "server", downSince: null });
    expect(system.body.orders).toEqual({ unknown: 1, unsettled: 1 });
    for (const url of DATA_ROUTES) expect({ url, status: (await get(url)).status }).toEqual({ url, status: 200 });
    expect(logger.lines.filter((l) => l.message === "dashboard: the database is back")).toHaveLength(1);
  });

  it("answers 500 with the error's code only when a read fails for another reason", async () => {
    const failing = Object.assign(new Error('relation "candles" does not exist (server 10.1.2.3:5432)'), { code: "42P01" });
    const broken = Fastify();
    await broken.register(dashboardApi(fixtureSource(db, NOW, { db: () => Promise.reject(failing), logger })));
    const url = await broken.listen({ host: "127.0.0.1", port: 0 });
    const response = await fetch(`${url}/api/positions`);
    expect(response.status).toBe(500);
    expect(await response.json()).toEqual({ error: "reading the database failed (42P01); the dashboard's log has the details" });
    expect(logger.lines.at(-1)).toMatchObject({ level: "error", message: "dashboard: a read failed", meta: { url: "/api/positions", error: expect.stringContaining("10.1.2.3:5432") } });
    await broken.close();
  });
});

describe("the standalone dashboard started while its database server is down", () => {
  it("starts, says since when the database is down, and answers 503 without naming it", async () => {
    const port = await closedPort();
    const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
      cwd: path.resolve(__dirname, ".."),
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", DATABASE_URL: `postgresql://postgres@127.0.0.1:${port}/candlekeep`, DASHBOARD_PORT: "0", LOG_FORMAT: "json", SYMBOLS: "BTC/USDT" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const killer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    let log = "";
    const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
    try {
      const base = await new Promise<string>((resolve, reject) => {
        const onData = (chunk: Buffer) => {
          log += chunk.toString();
          const found = /dashboard on (http:\/\/127\.0\.0\.1:\d+)\//.exec(log);
          if (found?.[1] !== undefined) resolve(found[1]);
        };
        child.stdout.on("data", onData);
        child.stderr.on("data", onData);
        void exited.then(() => reject(new Error(`dashboard exited:\n${log}`)));
      });
      expect(log).toContain("The dashboard starts anyway and tries again on each request.");
      const system = await fetch(`${base}/api/system`);
      const systemText = await system.text();
      expect(system.status).toBe(200);
      expect(JSON.parse(systemText)).toMatchObject({ mode: "standalone", database: { kind: "server", downSince: expect.any(String) }, migrations: null });
      const coverage = await fetch(`${base}/api/coverage`);
      const coverageText = await coverage.text();
      expect(coverage.status).toBe(503);
      for (const text of [systemText, coverageText]) expect(text).not.toMatch(new RegExp(`127\\.0\\.0\\.1|${port}`));
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
    } finally {
      clearTimeout(killer);
      child.kill("SIGKILL");
    }
  });
});
